"""The ceiling for the token-endpoint benchmark: a bare ASGI app on the same
uvicorn stack that reads the request body and answers a fixed JSON body of
the same size as a token response, with no routing, parsing or crypto."""

from __future__ import annotations

from typing import Any

_BODY = b'{"access_token":"' + b"x" * 420 + b'","token_type":"Bearer"}'
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"cache-control", b"no-store"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
