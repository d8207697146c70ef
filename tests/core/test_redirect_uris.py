from __future__ import annotations

import pytest

from tessera.core.redirect_uris import (
    form_action_source,
    redirect_matches,
    registration_problem,
    with_params,
)

MATCHES = {
    "same": ("https://a.example/cb", "https://a.example/cb", True),
    "https port": ("https://a.example/cb", "https://a.example:8443/cb", False),
    "v4 port 1": ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb", True),
    "v4 max port": ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", True),
    "v4 port too big": ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb", False),
    "leading zero": ("http://127.0.0.1/cb", "http://127.0.0.1:080/cb", False),
    "empty port": ("http://127.0.0.1/cb", "http://127.0.0.1:/cb", False),
    "registered port ignored": (
        "http://127.0.0.1:5000/cb",
        "http://127.0.0.1:6000/cb",
        True,
    ),
    "query added": ("http://127.0.0.1/cb", "http://127.0.0.1:80/cb?x", False),
    "query kept": ("http://127.0.0.1/cb?a=1", "http://127.0.0.1:9/cb?a=1", True),
    "no path": ("http://127.0.0.1", "http://127.0.0.1:9", True),
    "v6": ("http://[::1]/cb", "http://[::1]:9/cb", True),
    "v6 to v4": ("http://[::1]/cb", "http://127.0.0.1:9/cb", False),
    "localhost": ("http://localhost/cb", "http://localhost:9/cb", False),
    "suffix": ("http://127.0.0.1/cb", "http://127.0.0.1.evil.test:9/cb", False),
}


@pytest.mark.parametrize(
    ("registered", "presented", "matches"),
    [pytest.param(*case, id=name) for name, case in MATCHES.items()],
)
def test_redirect_matches(registered: str, presented: str, matches: bool) -> None:
    assert redirect_matches(registered, presented) is matches


@pytest.mark.parametrize(
    "uri",
    [
        "https://a.example/cb",
        "https://a.example:8443/cb?x=1",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:8080/cb",
        "http://[::1]/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app://cb",
    ],
)
def test_registration_accepts(uri: str) -> None:
    assert registration_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "https://a.example/c b",
        "https://a.example/cb#",
        "https://*.example/cb",
        "HTTPS://a.example/cb",
        "https:///cb",
        "https://u:p@a.example/cb",
        "http://a.example/cb",
        "http://localhost/cb",
        "http://127.0.0.1.nip.io/cb",
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "//a.example/cb",
        "https://a.example/\u00e9",
    ],
)
def test_registration_refuses(uri: str) -> None:
    assert registration_problem(uri) is not None


def test_with_params_keeps_the_query_and_drops_none() -> None:
    assert with_params("https://a.example/cb?x=1", {"code": "a b", "state": None}) == (
        "https://a.example/cb?x=1&code=a+b"
    )


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://a.example/cb", "https://a.example"),
        ("http://127.0.0.1:5000/cb", "http://127.0.0.1:5000"),
        ("http://[::1]:5000/cb", "http://[::1]:5000"),
        ("com.example.app:/cb", "com.example.app:"),
        ("https://a.example;script-src/cb", None),
    ],
)
def test_form_action_source(uri: str, source: str | None) -> None:
    assert form_action_source(uri) == source
