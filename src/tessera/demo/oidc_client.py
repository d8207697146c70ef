"""A relying party's half of OpenID Connect: what the demo dashboard does to
sign a person in, written apart from its web pages so that each check can be
tested alone.

    discover()            the issuer's metadata (OIDC Discovery 1.0 §4)
    Client.begin()        an authorization request with PKCE (RFC 7636),
                          ``state`` and ``nonce``
    Client.exchange()     the code for tokens, the ID token verified
    Client.refresh()      new tokens from the refresh token
    Client.userinfo()     the UserInfo response (OIDC Core §5.3)
    Client.end_session()  where to send the browser to sign out (RP-Initiated
                          Logout 1.0 §2)

Every failure raises an ``OIDCError``; nothing here returns a bool for a
check. Time is read from an injected clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

__all__ = [
    "ID_TOKEN_ALGORITHMS",
    "Client",
    "DiscoveryError",
    "IDTokenError",
    "OIDCError",
    "PendingLogin",
    "ProviderMetadata",
    "TokenError",
    "TokenSet",
    "decode_claims_unverified",
    "discover",
    "pkce_challenge",
]

# What an ID token may be signed with; "none" and the HMAC family never, since
# a public client holds no secret to check an HMAC with.
ID_TOKEN_ALGORITHMS = frozenset({"RS256", "PS256", "ES256", "EdDSA"})
# OIDC Core §3.1.3.7 step 7: RS256 when the issuer does not say.
DEFAULT_ID_TOKEN_ALGORITHMS = ("RS256",)
MAX_ID_TOKEN_BYTES = 16 * 1024
DEFAULT_LEEWAY = 60
# How soon after one JWKS fetch an unknown kid may trigger another, so that a
# stream of forged kids cannot make the client hammer the issuer.
JWKS_REFETCH_INTERVAL = 10.0
# The hash behind at_hash for each algorithm (OIDC Core §3.1.3.6); Ed25519
# signs with SHA-512.
_AT_HASH = {
    "RS256": hashlib.sha256,
    "PS256": hashlib.sha256,
    "ES256": hashlib.sha256,
    "EdDSA": hashlib.sha512,
}

Clock = Callable[[], float]


class OIDCError(Exception):
    """Signing in failed; the message is safe to show the person signing in."""


class DiscoveryError(OIDCError):
    """The issuer's metadata could not be fetched or is unusable."""


class TokenError(OIDCError):
    """The token endpoint refused the request or answered nonsense."""

    def __init__(self, error: str, description: str | None = None) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}" if description else error)


class IDTokenError(OIDCError):
    """The ID token failed a check of OIDC Core §3.1.3.7."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    id_token_algorithms: tuple[str, ...]

    @classmethod
    def parse(cls, document: object, expected_issuer: str) -> ProviderMetadata:
        if not isinstance(document, dict):
            raise DiscoveryError("the discovery document is not a JSON object")
        # OIDC Discovery §4.3: the issuer named inside must be the one asked,
        # or a document served elsewhere could redirect every token request.
        if document.get("issuer") not in (expected_issuer, expected_issuer + "/"):
            raise DiscoveryError(
                f"the discovery document names issuer {document.get('issuer')!r}, "
                f"not {expected_issuer!r}"
            )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise DiscoveryError("the issuer does not support PKCE with S256")
        advertised = document.get("id_token_signing_alg_values_supported")
        if isinstance(advertised, list):
            algorithms = tuple(a for a in advertised if a in ID_TOKEN_ALGORITHMS)
            if not algorithms:
                raise DiscoveryError(
                    "the issuer signs ID tokens with no algorithm this client accepts"
                )
        else:
            algorithms = DEFAULT_ID_TOKEN_ALGORITHMS
        return cls(
            issuer=document["issuer"],
            authorization_endpoint=_endpoint(document, "authorization_endpoint"),
            token_endpoint=_endpoint(document, "token_endpoint"),
            jwks_uri=_endpoint(document, "jwks_uri"),
            userinfo_endpoint=_optional_endpoint(document, "userinfo_endpoint"),
            end_session_endpoint=_optional_endpoint(document, "end_session_endpoint"),
            id_token_algorithms=algorithms,
        )


def _optional_endpoint(document: Mapping[str, Any], name: str) -> str | None:
    return None if document.get(name) is None else _endpoint(document, name)


def _endpoint(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise DiscoveryError(f"the discovery document has no usable {name}")
    return value


async def discover(issuer: str, http: httpx.AsyncClient) -> ProviderMetadata:
    """Fetch and check ``ISSUER/.well-known/openid-configuration``."""
    issuer = issuer.rstrip("/")
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = await http.get(url)
    except httpx.HTTPError as error:
        raise DiscoveryError(f"cannot reach {url} ({type(error).__name__})") from None
    if response.status_code != 200:
        raise DiscoveryError(f"{url} answered {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise DiscoveryError(f"{url} did not answer JSON") from None
    return ProviderMetadata.parse(document, issuer)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a code verifier (RFC 7636 §4.2)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class PendingLogin:
    """What the client keeps, server-side, between the authorization request
    and the callback. None of it may reach the browser except inside ``url``,
    and the code verifier not even there."""

    state: str
    nonce: str
    code_verifier: str
    url: str
    created_at: float


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one token response, the ID token's claims verified."""

    access_token: str
    expires_at: float | None
    refresh_token: str | None
    id_token: str
    id_claims: dict[str, Any]
    scope: str | None


def decode_claims_unverified(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, for display only: nothing here checks the
    signature. None when the token is not a JWT (an opaque access token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


class Client:
    """One registered client of one issuer.

    ``client_secret`` is None for a public client, which sends only its
    ``client_id``; a confidential client authenticates with
    ``client_secret_basic``.
    """

    def __init__(
        self,
        metadata: ProviderMetadata,
        client_id: str,
        redirect_uri: str,
        http: httpx.AsyncClient,
        *,
        client_secret: str | None = None,
        clock: Clock = time.time,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        self.metadata = metadata
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.http = http
        self.client_secret = client_secret
        self.clock = clock
        self.leeway = leeway
        self._keys: KeySet | None = None
        self._keys_fetched_at = float("-inf")

    # Authorization request (OIDC Core §3.1.2.1).

    def begin(self, scope: str) -> PendingLogin:
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        # 43 to 128 characters (RFC 7636 §4.1): 48 random bytes make 64.
        verifier = secrets.token_urlsafe(48)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": scope,
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in self.metadata.authorization_endpoint else "?"
        url = f"{self.metadata.authorization_endpoint}{separator}{query}"
        return PendingLogin(state, nonce, verifier, url, self.clock())

    @staticmethod
    def check_state(pending: PendingLogin, state: str | None) -> None:
        """RFC 6749 §10.12: the callback must carry the state this browser's
        own request sent, or it is a forged login."""
        if not state or not hmac.compare_digest(pending.state, state):
            raise OIDCError("the sign-in answer does not match a request from here")

    # Token endpoint (OIDC Core §3.1.3).

    async def exchange(self, code: str, pending: PendingLogin) -> TokenSet:
        body = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": pending.code_verifier,
            }
        )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise TokenError("invalid_response", "the token response has no id_token")
        claims = await self.verify_id_token(
            id_token, nonce=pending.nonce, access_token=body["access_token"]
        )
        return self._token_set(body, id_token, claims, refresh_token=None)

    async def refresh(self, tokens: TokenSet, nonce: str) -> TokenSet:
        """New tokens for ``tokens``. The issuer may rotate the refresh
        token; the old one is kept only if no new one came back."""
        if tokens.refresh_token is None:
            raise TokenError("invalid_grant", "there is no refresh token")
        body = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            return self._token_set(
                body, tokens.id_token, tokens.id_claims, tokens.refresh_token
            )
        claims = await self.verify_id_token(
            id_token,
            nonce=None,
            access_token=body["access_token"],
        )
        # OIDC Core §12.2: the same person, and a nonce only if the first
        # token's.
        if claims["sub"] != tokens.id_claims["sub"]:
            raise IDTokenError("the refreshed ID token is for someone else")
        if "nonce" in claims and claims["nonce"] != nonce:
            raise IDTokenError("the refreshed ID token has a different nonce")
        return self._token_set(body, id_token, claims, tokens.refresh_token)

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        auth = None
        if self.client_secret is None:
            form = {**form, "client_id": self.client_id}
        else:
            # RFC 6749 §2.3.1: both halves form-urlencoded before Basic.
            auth = httpx.BasicAuth(
                quote(self.client_id, safe=""), quote(self.client_secret, safe="")
            )
        try:
            response = await self.http.post(
                self.metadata.token_endpoint, data=form, auth=auth
            )
        except httpx.HTTPError as error:
            raise TokenError("unreachable", type(error).__name__) from None
        body = _json_object(response)
        if response.status_code != 200:
            error = body.get("error") if body else None
            description = body.get("error_description") if body else None
            raise TokenError(
                error if isinstance(error, str) else f"http_{response.status_code}",
                description if isinstance(description, str) else None,
            )
        if body is None:
            raise TokenError("invalid_response", "the token response is not JSON")
        if not isinstance(body.get("access_token"), str):
            raise TokenError("invalid_response", "the token response has no token")
        if str(body.get("token_type", "")).lower() != "bearer":
            raise TokenError("invalid_response", "the token type is not Bearer")
        return body

    def _token_set(
        self,
        body: dict[str, Any],
        id_token: str,
        claims: dict[str, Any],
        refresh_token: str | None,
    ) -> TokenSet:
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int) and not isinstance(expires_in, bool):
            expires_at = self.clock() + expires_in
        new_refresh = body.get("refresh_token")
        scope = body.get("scope")
        return TokenSet(
            access_token=body["access_token"],
            expires_at=expires_at,
            refresh_token=new_refresh
            if isinstance(new_refresh, str)
            else refresh_token,
            id_token=id_token,
            id_claims=claims,
            scope=scope if isinstance(scope, str) else None,
        )

    # ID token validation (OIDC Core §3.1.3.7).

    async def verify_id_token(
        self, id_token: str, *, nonce: str | None, access_token: str | None
    ) -> dict[str, Any]:
        """The verified claims of ``id_token``, or IDTokenError.

        ``nonce`` is the one sent with the authorization request (None after
        a refresh, where the caller compares it); ``access_token`` is the one
        issued alongside, checked against ``at_hash`` when the token has one.
        """
        if len(id_token) > MAX_ID_TOKEN_BYTES:
            raise IDTokenError("the ID token is too large")
        header = _header(id_token)
        alg = header.get("alg")
        if alg not in self.metadata.id_token_algorithms:
            raise IDTokenError(f"the ID token is signed with {alg!r}")
        # An access token (typ at+jwt, RFC 9068) is signed by the same keys;
        # it must not pass for an ID token.
        typ = header.get("typ")
        if typ is not None and str(typ).lower() not in ("jwt", "application/jwt"):
            raise IDTokenError(f"the token's type is {typ!r}, not an ID token")
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None, alg)
        try:
            verified = jws.deserialize_compact(id_token, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError):
            raise IDTokenError("the ID token's signature does not verify") from None
        try:
            claims = json.loads(verified.payload)
        except ValueError:
            raise IDTokenError("the ID token's payload is not JSON") from None
        if not isinstance(claims, dict):
            raise IDTokenError("the ID token's payload is not a JSON object")

        self._check_issuer(claims)
        self._check_audience(claims)
        self._check_times(claims)
        _check_subject(claims)
        if nonce is not None:
            _check_nonce(claims, nonce)
        if access_token is not None and "at_hash" in claims:
            _check_at_hash(claims, access_token, alg)
        return claims

    def _check_issuer(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.metadata.issuer:
            raise IDTokenError("the ID token is from another issuer")

    def _check_audience(self, claims: dict[str, Any]) -> None:
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self.client_id not in audiences:
            raise IDTokenError("the ID token is not for this client")
        azp = claims.get("azp")
        # Several audiences need an azp naming this client; any azp must.
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise IDTokenError("the ID token was issued to another party")

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _is_number(exp) or not _is_number(iat):
            raise IDTokenError("the ID token lacks exp or iat")
        if now >= exp + self.leeway:
            raise IDTokenError("the ID token has expired")
        if iat > now + self.leeway:
            raise IDTokenError("the ID token was issued in the future")

    async def _key(self, kid: str | None, alg: str) -> Key:
        """The issuer's key for ``kid``; the JWKS is fetched again, at most
        once per interval, when it lacks the kid (the issuer rotated)."""
        keys = self._keys or await self._fetch_keys()
        key = _find_key(keys, kid, alg)
        if (
            key is None
            and self.clock() - self._keys_fetched_at >= JWKS_REFETCH_INTERVAL
        ):
            key = _find_key(await self._fetch_keys(), kid, alg)
        if key is None:
            raise IDTokenError("the ID token's key is not in the issuer's JWKS")
        return key

    async def _fetch_keys(self) -> KeySet:
        self._keys_fetched_at = self.clock()
        try:
            response = await self.http.get(self.metadata.jwks_uri)
        except httpx.HTTPError as error:
            raise IDTokenError(
                f"cannot fetch the issuer's JWKS ({type(error).__name__})"
            ) from None
        document = _json_object(response)
        if response.status_code != 200 or document is None:
            raise IDTokenError("the issuer's JWKS is unavailable")
        signing = [
            key
            for key in document.get("keys", [])
            if isinstance(key, dict) and key.get("use", "sig") == "sig"
        ]
        try:
            self._keys = KeySet.import_key_set({"keys": signing})
        except (JoseError, ValueError, TypeError):
            raise IDTokenError("the issuer's JWKS holds no usable key") from None
        return self._keys

    # UserInfo (OIDC Core §5.3) and logout.

    async def userinfo(self, tokens: TokenSet) -> dict[str, Any]:
        """The UserInfo claims; its ``sub`` must be the ID token's (§5.3.2)."""
        if self.metadata.userinfo_endpoint is None:
            return {}
        try:
            response = await self.http.get(
                self.metadata.userinfo_endpoint,
                headers={"Authorization": f"Bearer {tokens.access_token}"},
            )
        except httpx.HTTPError as error:
            raise OIDCError(
                f"cannot reach the UserInfo endpoint ({type(error).__name__})"
            ) from None
        body = _json_object(response)
        if response.status_code != 200 or body is None:
            raise OIDCError(f"the UserInfo endpoint answered {response.status_code}")
        if body.get("sub") != tokens.id_claims["sub"]:
            raise OIDCError("the UserInfo response is about someone else")
        return body

    def end_session(
        self, id_token: str, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """The issuer's logout URL for this session, or None if it has none."""
        endpoint = self.metadata.end_session_endpoint
        if endpoint is None:
            return None
        query = urlencode(
            {
                "id_token_hint": id_token,
                "client_id": self.client_id,
                "post_logout_redirect_uri": post_logout_redirect_uri,
                "state": state,
            }
        )
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{query}"


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise IDTokenError("the ID token is not a signed JWT")
    try:
        header = json.loads(_b64url_decode(parts[0]))
    except (ValueError, binascii.Error):
        raise IDTokenError("the ID token's header is unreadable") from None
    if not isinstance(header, dict):
        raise IDTokenError("the ID token's header is not a JSON object")
    return header


def _find_key(keys: KeySet, kid: str | None, alg: str) -> Key | None:
    """The key named ``kid`` (or the only key, without a kid), if it may
    verify ``alg``."""
    try:
        key = keys.get_by_kid(kid)
        key.check_alg(alg)
    except JoseError:
        return None
    return key


def _check_subject(claims: dict[str, Any]) -> None:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise IDTokenError("the ID token has no subject")


def _check_nonce(claims: dict[str, Any], nonce: str) -> None:
    # The nonce binds the token to this browser's request (OIDC Core §15.5.2).
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
        raise IDTokenError("the ID token's nonce is not the one sent")


def _check_at_hash(claims: dict[str, Any], access_token: str, alg: str) -> None:
    digest = _AT_HASH[alg](access_token.encode()).digest()
    expected = _b64url(digest[: len(digest) // 2])
    got = claims["at_hash"]
    if not isinstance(got, str) or not hmac.compare_digest(got, expected):
        raise IDTokenError("the ID token's at_hash does not match the access token")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
