"""Entry point: ``tessera serve``, ``tessera clients``, ``tessera keys``, demos.

Errors go to stderr with a non-zero exit status; generated secrets are
printed exactly once, on stdout."""

from __future__ import annotations

import sys

import click

from tessera.cli import clients, demo, keys, token, trust, users
from tessera.cli.common import load_settings, operator_errors, run


@click.group()
@click.version_option(package_name="tessera")
def cli() -> None:
    """Tessera: short-lived signed tokens for machines and the APIs they call."""


@cli.command()
@click.option("--host", help="Address to listen on (TESSERA_HOST).")
@click.option("--port", type=int, help="Port to listen on (TESSERA_PORT).")
@click.option("--issuer", help="Public issuer URL (TESSERA_ISSUER).")
@operator_errors
def serve(host: str | None, port: int | None, issuer: str | None) -> None:
    """Run the token service."""
    import uvicorn

    from tessera.cli.context import operator
    from tessera.server.app import build_app

    settings = load_settings(host=host, port=port, issuer=issuer)

    async def preflight() -> None:
        # Fail here, with one clear line, rather than inside the server's
        # start-up: a wrong master key must stop the node, never make keys.
        async with operator(settings):
            pass

    run(preflight())
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        # Tessera reads X-Forwarded-For itself, from TESSERA_TRUSTED_PROXIES
        # only; uvicorn would otherwise believe it from any loopback peer.
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(1)


cli.add_command(clients.clients)
cli.add_command(keys.keys)
cli.add_command(trust.trust)
cli.add_command(users.users)
cli.add_command(token.token)
cli.add_command(demo.demo_api)
cli.add_command(demo.demo)
cli.add_command(demo.demo_issuer)
cli.add_command(demo.demo_dashboard)
