"""Personas: a release manager (may act), a viewer (may only view) and an anonymous visitor;
what they may do comes from grants, through the one policy."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests import factories as f


@pytest.fixture(autouse=True)
def _fast(fast_passwords: None) -> None:
    """Users of these tests sign in with passwords: hash them cheaply."""


@pytest.fixture
def manager(db: None) -> User:
    """A release manager: may view, trigger, retry and cancel everything."""
    person = f.persona("manager", projects="*")
    assert person is not None
    return person


@pytest.fixture
def viewer(db: None) -> User:
    """May view everything, do nothing."""
    person = f.persona("viewer", projects="*")
    assert person is not None
    return person


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
