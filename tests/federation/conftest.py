"""Fixtures for workload identity federation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standin_issuer import StandinIssuer, running_standin


@pytest.fixture
def standin_issuer() -> Iterator[StandinIssuer]:
    """A stand-in external OIDC issuer process of the test's own."""
    yield from running_standin()
