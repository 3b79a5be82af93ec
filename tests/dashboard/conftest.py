"""Personas: a release manager (may act), a viewer (may only view) and an anonymous visitor;
what they may do comes from grants, through the one policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chains.models import Grant


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def manager(db: None) -> User:
    """A release manager: may view, trigger, retry and cancel everything."""
    user = User.objects.create_user("rita", password="pw-rita-123")
    Grant.objects.create(user=user, projects="*", actions=["view", "trigger", "retry", "cancel"])
    return user


@pytest.fixture
def viewer(db: None) -> User:
    """May view everything, do nothing."""
    user = User.objects.create_user("vic", password="pw-vic-123")
    Grant.objects.create(user=user, projects="*", actions=["view"])
    return user


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
