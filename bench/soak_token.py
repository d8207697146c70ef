"""A bounded soak of the token endpoint: mixed good and bad clients, memory
and audit completeness.

Run:  .venv/bin/python bench/soak_token.py [--rounds 3] [--duration 20]

Needs `wrk`. Starts `tessera serve` on a loopback port with a temporary
SQLite store, then runs --rounds rounds of wrk (32 connections) in which one
request in three has a wrong secret and one in seven an unknown client. After
each round it prints the server's resident memory; at the end it checks that
the server logged no error and that every request left one audit event.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_token import free_port, serving

from tessera.cli.context import operator
from tessera.config import Settings

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local auth = "Basic {good}"
  if counter % 3 == 0 then auth = "Basic {wrong}" end
  if counter % 7 == 0 then auth = "Basic {unknown}" end
  return wrk.format("POST", "/oauth2/token",
    {{["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = auth}},
    "grant_type=client_credentials&scope=read")
end
"""


def basic(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found is not None
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir)

        async def setup() -> str:
            async with operator(settings) as op:
                return await op.register(
                    "soak", scopes=frozenset({"read"}), audiences=("https://a",)
                )

        secret = asyncio.run(setup())
        script = data_dir / "mix.lua"
        script.write_text(
            LUA.format(
                good=basic(f"soak:{secret}"),
                wrong=basic("soak:tsec_wrong"),
                unknown=basic("nobody:tsec_wrong"),
            )
        )
        audit = data_dir / "audit.jsonl"
        port = free_port()
        env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_PORT": str(port),
            "TESSERA_AUDIT_LOG": str(audit),
            "TESSERA_LOG_LEVEL": "warning",
            # Throughput is measured here, not the limits' refusals.
            "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
            "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
            # One request in three has a wrong secret for the good client:
            # with the lockout on, it would be locked within a second.
            "TESSERA_AUTH_SLOWDOWN_AFTER": "1000000000",
            "TESSERA_AUTH_LOCKOUT_AFTER": "1000000000",
        }
        sent = 0
        command = [sys.executable, "-m", "tessera", "serve"]
        with serving(command, env, port) as process:
            print(f"resident memory at start: {resident_kib(process.pid)} KiB")
            for round_ in range(1, args.rounds + 1):
                output = subprocess.run(
                    ["wrk", "-t1", "-c32", f"-d{args.duration}s", "-s", str(script),
                     f"http://127.0.0.1:{port}/"],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                found = re.search(r"(\d+) requests in", output)
                assert found is not None
                sent += int(found.group(1))
                rss = resident_kib(process.pid)
                print(f"round {round_}: {found.group(1)} requests, {rss} KiB resident")
        events = collections.Counter(
            (record["event"], record.get("error"))
            for record in map(json.loads, audit.read_text().splitlines())
        )
    token_events = sum(
        n for (event, _), n in events.items() if event.startswith("token.")
    )
    print(f"sent {sent} (+ warm-up), audit token events {token_events}: {dict(events)}")


if __name__ == "__main__":
    main()
