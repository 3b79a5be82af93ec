"""Personas: a release manager (staff, may act), a viewer (signed in, read-only) and an
anonymous visitor."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager(db: None) -> User:
    return User.objects.create_user("rita", password="pw-rita-123", is_staff=True)


@pytest.fixture
def viewer(db: None) -> User:
    return User.objects.create_user("vic", password="pw-vic-123")


@pytest.fixture
def manager_client(manager: User) -> Client:
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


HX = {"HX-Request": "true"}
