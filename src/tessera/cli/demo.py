"""``tessera demo-api`` and ``tessera demo``."""

from __future__ import annotations

import os

import click


@click.command(name="demo-api")
@click.option("--issuer", required=True, help="The token service's issuer URL.")
@click.option("--audience", required=True, help="This API's audience identifier.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8001, show_default=True)
@click.option(
    "--introspection-client-id",
    help="Also ask the issuer whether each token is still active (revocation); "
    "the secret comes from TESSERA_DEMO_API_CLIENT_SECRET.",
)
@click.option(
    "--introspection-cache-seconds",
    type=click.FloatRange(0, 300),
    default=5.0,
    show_default=True,
    help="How long an 'active' answer is trusted before asking again.",
)
def demo_api(
    issuer: str,
    audience: str,
    host: str,
    port: int,
    introspection_client_id: str | None,
    introspection_cache_seconds: float,
) -> None:
    """Run the demo protected API: GET /hello (any valid token) and GET /admin
    (scope demo.admin)."""
    import uvicorn

    from tessera.demo.api import build_demo_api
    from tessera.verify import Introspection, Verifier

    introspection = None
    if introspection_client_id:
        secret = os.environ.get("TESSERA_DEMO_API_CLIENT_SECRET")
        if not secret:
            raise click.ClickException(
                "set TESSERA_DEMO_API_CLIENT_SECRET for --introspection-client-id"
            )
        introspection = Introspection(
            introspection_client_id, secret, cache_seconds=introspection_cache_seconds
        )
    verifier = Verifier(issuer, audience, introspection=introspection)
    uvicorn.run(build_demo_api(verifier), host=host, port=port, log_level="warning")


@click.command()
def demo() -> None:
    """Walk through the client-credentials flow against a real server."""
    from tessera.demo.walkthrough import run

    try:
        run(click.echo)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
