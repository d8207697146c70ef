"""``tessera keys``: list and rotate signing keys; change the master key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tessera.cli.common import load_settings, operator_errors, run
from tessera.cli.context import operator
from tessera.keys.signing import ALGORITHMS


@click.group()
def keys() -> None:
    """Inspect and rotate signing keys."""


@keys.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@operator_errors
def list_(as_json: bool) -> None:
    """List signing keys with their state."""
    settings = load_settings()

    async def go() -> list[dict[str, object]]:
        async with operator(settings) as op:
            ring = await op.keys.load()
        now = time.time()
        rows = []
        for entry in ring.entries:
            key = entry.key
            if entry.retires_at <= now:
                state = "retired"
            elif key.activates_at > now:
                state = "pending"
            elif ring.signing_key(key.alg, now).kid == key.kid:
                state = "signing"
            else:
                state = "published"
            retires = None if entry.retires_at == float("inf") else entry.retires_at
            rows.append(
                {
                    "kid": key.kid,
                    "alg": key.alg,
                    "state": state,
                    "activates_at": key.activates_at,
                    "retires_at": retires,
                }
            )
        return rows

    rows = run(go())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['kid']}\t{row['alg']}\t{row['state']}")


@keys.command()
@click.option("--alg", type=click.Choice(ALGORITHMS), help="Only this algorithm.")
@operator_errors
def rotate(alg: str | None) -> None:
    """Publish a new key now; it signs after TESSERA_KEY_PUBLISH_AHEAD seconds."""
    settings = load_settings()

    async def go() -> list[str]:
        async with operator(settings) as op:
            ring = await op.keys.load()
            algs = [alg] if alg else sorted({e.key.alg for e in ring.entries})
            algs = algs or [settings.default_signing_alg]
            return [await op.keys.rotate(a) for a in algs]

    for kid in run(go()):
        click.echo(f"new key {kid} published")


@keys.command(name="generate-master-key")
def generate_master_key() -> None:
    """Print a new random master key, for TESSERA_MASTER_KEY.

    It is printed once and stored nowhere: put it in your secret store. It
    only applies to a new database; an existing one stays sealed under the
    key it was created with."""
    from tessera.keys.master import generate

    click.echo(generate())


@keys.command(name="change-master-key")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the new master key (base64url, 32 bytes).",
)
@operator_errors
def change_master_key(new_key_file: Path) -> None:
    """Reseal every private key under a new master key, in one transaction.

    Opens the store with the current key (TESSERA_MASTER_KEY or
    TESSERA_MASTER_KEY_FILE). Client secrets stay valid. Running nodes stop
    issuing TESSERA_STORE_OUTAGE_GRACE seconds later unless restarted with
    the new key. The key is read from a file, never from the command line,
    where other users could see it."""
    from tessera.keys.master import decode

    settings = load_settings()
    new_key = decode(new_key_file.read_text())

    async def go() -> int:
        async with operator(settings) as op:
            return await op.keys.change_master_key(new_key, op.pepper)

    count = run(go())
    click.echo(
        f"{count} keys resealed under the new master key; restart every node with it"
    )
