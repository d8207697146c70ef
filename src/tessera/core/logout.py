"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–§3).

    read_id_token_hint → check_client → check_post_logout_redirect_uri

Every failure here is shown to the person and never redirected: an
unchecked ``post_logout_redirect_uri`` would make the server an open
redirector (§3: it must exactly match one the client registered).

The ID token hint is checked against the issuer's published keys, and its
expiry is ignored (§2: a relying party logs out with the ID token it holds,
which has usually expired by then)."""

from __future__ import annotations

from dataclasses import dataclass

from joserfc.jwk import KeySet

from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import InvalidRequest
from tessera.core.form import Form
from tessera.core.id_tokens import IdTokenHint, read_id_token_hint


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A checked request: whose session it names, if anyone's, and where to
    send the browser afterwards, if anywhere."""

    hint: IdTokenHint | None
    client_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None


async def validate(
    params: Form, clients: ClientDirectory, *, issuer: str, keys: KeySet
) -> LogoutRequest:
    """The checked request; ``keys`` are the issuer's published keys."""
    token = params.get("id_token_hint")
    hint = None if token is None else read_id_token_hint(token, issuer, keys)
    client = await check_client(params, hint, clients)
    redirect_uri = check_post_logout_redirect_uri(params, client)
    return LogoutRequest(
        hint=hint,
        client_id=None if client is None else client.client_id,
        post_logout_redirect_uri=redirect_uri,
        state=params.get("state"),
    )


async def check_client(
    params: Form, hint: IdTokenHint | None, clients: ClientDirectory
) -> Client | None:
    """The client the request comes from: named by client_id, by the hint,
    or both, and then the same one (§2)."""
    client_id = params.get("client_id")
    if hint is not None:
        if client_id is not None and client_id != hint.client_id:
            raise InvalidRequest("The client_id does not match the id_token_hint.")
        client_id = hint.client_id
    if client_id is None:
        return None
    client = await clients.get(client_id)
    if client is None or client.disabled:
        raise InvalidRequest("The client is unknown or disabled.")
    return client


def check_post_logout_redirect_uri(params: Form, client: Client | None) -> str | None:
    uri = params.get("post_logout_redirect_uri")
    if uri is None:
        return None
    if client is None:
        raise InvalidRequest(
            "A post_logout_redirect_uri needs a client_id or an id_token_hint."
        )
    # Exact comparison only: no loopback port exception on the way out.
    if uri not in client.post_logout_redirect_uris:
        raise InvalidRequest(
            "The post_logout_redirect_uri is not registered for this client."
        )
    return uri
