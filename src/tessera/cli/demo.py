"""``tessera demo-api`` and ``tessera demo`` (filled in below)."""

from __future__ import annotations

import click


@click.command(name="demo-api")
def demo_api() -> None:
    """Run the demo protected API."""
    raise click.ClickException("not yet available")


@click.command()
def demo() -> None:
    """Walk through the client-credentials flow against a real server."""
    raise click.ClickException("not yet available")
