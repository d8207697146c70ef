"""Clients, a person, and a browser for the tests of the browser side."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.server.people.helpers import (
    LOCALHOST,
    LOGGED_OUT,
    NATIVE_V4,
    NATIVE_V6,
    PASSWORD,
    PRIVATE_USE,
    REDIRECT,
    Setup,
)
from tests.support import RunningServer


@pytest.fixture(scope="module")
def clients(server: RunningServer) -> Setup:
    """The clients every test uses, registered once."""
    suffix = secrets.token_hex(4)
    client_id, public_id = f"web-{suffix}", f"native-{suffix}"
    no_grant_id = f"machine-{suffix}"
    server.create_web_client(
        client_id,
        redirect_uris=(REDIRECT, NATIVE_V4, NATIVE_V6, LOCALHOST, PRIVATE_USE),
        post_logout_redirect_uris=(LOGGED_OUT,),
    )
    server.create_web_client(public_id, redirect_uris=(NATIVE_V4,), public=True)
    server.create_web_client(
        no_grant_id,
        redirect_uris=(REDIRECT,),
        grant_types=frozenset({"client_credentials"}),
    )
    return Setup(server, client_id, public_id, no_grant_id, "", "")


@pytest.fixture
def setup(clients: Setup) -> Setup:
    """The clients, and a person of the test's own: consents and sessions
    of one test never meet another's."""
    username = f"ada-{secrets.token_hex(4)}"
    user_id = clients.server.create_user(username, PASSWORD)
    return dataclasses.replace(clients, username=username, user_id=user_id)


@pytest.fixture
def browser(setup: Setup) -> Iterator[httpx.Client]:
    with setup.server.browser() as client:
        yield client
