"""Requests to the issuer: bounded in size and time, never redirected.

Only three kinds of URL are ever requested: the metadata document under the
configured issuer, the ``jwks_uri`` and ``introspection_endpoint`` that the
metadata names, and an introspection endpoint the operator configured. No URL
from a token is ever requested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["FetchError", "Reply", "check_url", "fetch", "new_client", "parse_object"]

TIMEOUT_SECONDS = 5.0
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class FetchError(Exception):
    """The issuer could not be read; the message is a private detail."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes


def new_client(timeout: float = TIMEOUT_SECONDS) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


def check_url(url: object, what: str) -> str:
    """Accept ``https`` URLs, and ``http`` only on a loopback host."""
    if not isinstance(url, str):
        raise ValueError(f"{what} is not a string")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError(f"{what} is not a URL") from None

    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and parsed.host in _LOOPBACK_HOSTS:
        return url
    raise ValueError(f"{what} must be https, or http on a loopback host")


async def fetch(
    client: httpx.AsyncClient, method: str, url: str, *, limit: int, **kwargs: Any
) -> Reply:
    """Send one request and read at most ``limit`` bytes of the response."""
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    headers.update(kwargs.pop("headers", {}))
    try:
        async with client.stream(method, url, headers=headers, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError(f"{url}: response larger than {limit} bytes")

            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FetchError(f"{url}: response larger than {limit} bytes")
            return Reply(response.status_code, response.headers, bytes(body))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"{method} {url}: {type(exc).__name__}") from None


def parse_object(reply: Reply, what: str) -> dict[str, Any]:
    """The response body as a JSON object, or ``FetchError``."""
    try:
        value = json.loads(reply.body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise FetchError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise FetchError(f"{what} is not a JSON object")
    return value
