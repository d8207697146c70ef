"""Redirect URIs: which a client may register, and which registered one a
request names.

Matching is exact string comparison (RFC 9700 §2.1, §4.1.3): no case
folding, no normalisation, no prefix or wildcard. The one exception is a
registered loopback IP redirect, which matches the same URI on any port,
because a native app binds whatever port is free (RFC 8252 §7.3).
``localhost`` gets no such exception (RFC 8252 §8.3): it may resolve to
anything, and a registration naming it is refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

# The hosts of a loopback IP redirect, written as a browser sends them.
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
# RFC 3986 §3.1; a private-use scheme is a reversed domain name with at
# least one dot (RFC 8252 §7.1), so "javascript" or "data" never qualify.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# What may stand in a CSP host-source: nothing that ends the directive.
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^http://\[::1\](:[0-9]{1,5})?$"
)


def _loopback_parts(uri: str) -> tuple[str, str] | None:
    """(host, rest) of ``http://HOST[:PORT]REST`` with HOST a loopback IP,
    or None. Read by slicing the string, so nothing is normalised."""
    if not uri.startswith("http://"):
        return None
    after = uri[len("http://") :]
    end = min((i for i in map(after.find, "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    for host in _LOOPBACK_HOSTS:
        if authority == host:
            return host, rest
        if authority.startswith(host + ":"):
            port = authority[len(host) + 1 :]
            if _PORT.match(port) and int(port) <= 65535:
                return host, rest
    return None


def redirect_matches(registered: str, presented: str) -> bool:
    """Whether ``presented`` is the registered URI, exactly, or the same
    loopback IP redirect on another port."""
    if registered == presented:
        return True
    loopback = _loopback_parts(registered)
    return loopback is not None and loopback == _loopback_parts(presented)


def registration_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a redirect URI, or None.

    Allowed: https with a host; http on a loopback IP (RFC 8252 §7.3); a
    private-use scheme such as ``com.example.app:/cb`` (RFC 8252 §7.1).
    Never a fragment (RFC 6749 §3.1.2), user information, or a wildcard."""
    if not uri or any(ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in uri):
        return "must be printable ASCII without spaces"
    if "#" in uri:
        return "must not have a fragment"
    if "*" in uri:
        return "must not contain a wildcard"
    scheme, colon, _ = uri.partition(":")
    if not colon or not _SCHEME.match(scheme):
        return "must be an absolute URI with a lower-case scheme"
    parts = urlsplit(uri)
    if scheme == "https":
        if not parts.hostname or "@" in parts.netloc:
            return "an https URI needs a host and no user information"
        return None
    if scheme == "http":
        if _loopback_parts(uri) is None:
            return "http is allowed only on 127.0.0.1 or [::1] (not localhost)"
        return None
    if "." not in scheme:
        return "use https, loopback http, or a private-use scheme like com.example.app"
    return None


def with_params(uri: str, params: dict[str, str | None]) -> str:
    """``uri`` with the parameters added to its query (RFC 6749 §3.1.2:
    the registered query is kept); parameters set to None are left out."""
    present = {name: value for name, value in params.items() if value is not None}
    separator = "&" if "?" in uri else "?"
    return uri + separator + urlencode(present)


def form_action_source(uri: str) -> str | None:
    """The CSP source that lets a form's response redirect to ``uri``: its
    origin, or its private-use scheme. None when it cannot be written
    safely; then the redirect may be blocked, never widened."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        origin = f"{parts.scheme}://{parts.netloc}"
        return origin if _ORIGIN.match(origin) else None
    if _SCHEME.match(parts.scheme) and "." in parts.scheme:
        return parts.scheme + ":"
    return None
