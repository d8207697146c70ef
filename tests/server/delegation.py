"""Set-up for the tests of the grants made on a person's behalf: people,
relying parties with redirect URIs, and authorization codes put straight
into a running server's store. The login and consent pages are not driven
here; a code made this way is the one they would have made."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from tessera.cli.context import operator
from tessera.core.clients import Client
from tessera.core.secrets import generate_secret, hash_secret
from tessera.core.users import new_user
from tessera.node import open_node
from tessera.store.codes import AuthorizationCodes, IssuedCode
from tests.server.helpers import basic, jwks, unique
from tests.support import RunningServer

REDIRECT_URI = "https://app.example.test/callback"
AUDIENCE = "https://api.example.test"
SCOPES = "openid profile email offline_access read write"
PERSON_GRANTS = frozenset({"authorization_code", "refresh_token"})
# Never checked: no test here signs in with a password.
UNUSABLE_PASSWORD_HASH = "$argon2id$v=19$m=19456,t=2,p=1$unusable$unusable"


@dataclass(frozen=True)
class RelyingParty:
    """A registered client of the code flow; ``secret`` None for a public
    client, which names itself with its client_id alone."""

    client_id: str
    secret: str | None

    def credentials(self) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and form fields that say who the client is."""
        if self.secret is None:
            return {}, {"client_id": self.client_id}
        return {"Authorization": basic(self.client_id, self.secret)}, {}

    def post(self, http: httpx.Client, path: str, **form: str) -> httpx.Response:
        headers, fields = self.credentials()
        return http.post(path, data={**fields, **form}, headers=headers)


def register(
    server: RunningServer,
    prefix: str = "rp",
    *,
    public: bool = False,
    scopes: str = SCOPES,
    audiences: tuple[str, ...] = (AUDIENCE,),
    grant_types: frozenset[str] = PERSON_GRANTS,
) -> RelyingParty:
    """Register a relying party straight in the server's store and wait
    until the server knows it."""
    client_id = unique(prefix)
    secret = None if public else generate_secret()

    async def go() -> None:
        async with operator(server.settings) as op:
            client = Client.register(
                client_id,
                hash_secret(op.pepper, secret) if secret else secrets.token_bytes(32),
                scopes=frozenset(scopes.split()),
                audiences=audiences,
                grant_types=grant_types,
            )
            await op.clients.create(
                dataclasses.replace(
                    client,
                    auth_method="none" if public else "client_secret",
                    redirect_uris=(REDIRECT_URI,),
                )
            )

    asyncio.run(go())
    if secret is None:
        # A public client cannot prove it is loaded; a node loads every
        # client at once, so one registered after it stands in.
        server.create_client(client_id + ".loaded")
    else:
        server.secrets[client_id] = secret
        server.wait_until_known(client_id, secret, disabled=False)
    return RelyingParty(client_id, secret)


def create_person(
    server: RunningServer,
    *,
    name: str | None = "Ada Lovelace",
    email: str | None = "ada@example.test",
) -> str:
    """A new user, by engineer U's repository; returns the user id."""
    user = new_user(unique("ada"), name=name, email=email)

    async def go() -> None:
        async with operator(server.settings) as op:
            await op.users.create(user, UNUSABLE_PASSWORD_HASH)

    asyncio.run(go())
    return user.user_id


def set_disabled(server: RunningServer, user_id: str, disabled: bool) -> None:
    async def go() -> None:
        async with operator(server.settings) as op:
            user = await op.users.get(user_id)
            assert user is not None
            await op.users.save(dataclasses.replace(user, disabled=disabled))

    asyncio.run(go())


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    """A fresh verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def issue_code(
    server: RunningServer,
    client_id: str,
    user_id: str,
    *,
    scope: str = "openid profile email offline_access read",
    challenge: str | None = None,
    nonce: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    redirect_uri_given: bool = True,
    auth_time: int | None = None,
    expires_in: int = 60,
) -> str:
    """A code as the authorization endpoint would have issued it."""
    now = int(time.time())

    async def go() -> str:
        node = await open_node(server.settings, time.time)
        try:
            return await AuthorizationCodes(node.sessions).issue(
                IssuedCode(
                    client_id=client_id,
                    user_id=user_id,
                    redirect_uri=redirect_uri,
                    redirect_uri_given=redirect_uri_given,
                    scope=scope,
                    code_challenge=challenge,
                    nonce=nonce,
                    auth_time=now - 5 if auth_time is None else auth_time,
                    expires_at=now + expires_in,
                )
            )
        finally:
            await node.close()

    return asyncio.run(go())


def redeem_form(
    code: str, verifier: str | None, redirect_uri: str | None = REDIRECT_URI
) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


def redeem(
    http: httpx.Client,
    rp: RelyingParty,
    code: str,
    verifier: str | None,
    redirect_uri: str | None = REDIRECT_URI,
) -> httpx.Response:
    return rp.post(http, "/oauth2/token", **redeem_form(code, verifier, redirect_uri))


def refresh(
    http: httpx.Client, rp: RelyingParty, refresh_token: str, **form: str
) -> httpx.Response:
    return rp.post(
        http,
        "/oauth2/token",
        grant_type="refresh_token",
        refresh_token=refresh_token,
        **form,
    )


def sign_in(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    user_id: str,
    *,
    scope: str = "openid profile email offline_access read",
    nonce: str | None = None,
) -> dict[str, Any]:
    """A code flow run to its token response, which is returned."""
    proof = pkce()
    code = issue_code(
        server,
        rp.client_id,
        user_id,
        scope=scope,
        challenge=proof.challenge,
        nonce=nonce,
    )
    response = redeem(http, rp, code, proof.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def verify_id_token(
    http: httpx.Client, token: str, audience: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of an ID token whose RS256 signature checks
    out against the published key its ``kid`` names."""
    header = jwt.get_unverified_header(token)
    published = {key["kid"]: key for key in jwks(http)["keys"]}
    key = jwt.PyJWK.from_dict(published[header["kid"]]).key
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=audience,
        issuer=str(http.base_url).rstrip("/"),
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    return header, claims


def introspect(
    http: httpx.Client, server: RunningServer, client_id: str, token: str
) -> dict[str, Any]:
    response = http.post(
        "/oauth2/introspect",
        data={"token": token},
        headers={"Authorization": basic(client_id, server.secrets[client_id])},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
