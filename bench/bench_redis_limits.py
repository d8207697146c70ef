"""Token issuance with the rate limits and lockout counted in Redis, beside
the same node counting them in memory.

Run:  .venv/bin/python bench/bench_redis_limits.py [--rounds 2] [--duration 5]

Needs wrk and Redis at 127.0.0.1:6379. The limits are set high enough never
to refuse: what is measured is the cost of asking. One node each on its own
SQLite store, wrk at concurrency 16, the best round kept; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
from pathlib import Path

from tessera.cli.context import operator
from tessera.config import Settings

sys.path.insert(0, str(Path(__file__).parent))
from bench_token import LUA, free_port, run_wrk, serving  # noqa: E402

NEVER_REFUSE = "1000000"
CONFIGURATIONS = {
    "memory": {},
    "redis": {"TESSERA_REDIS_URL": "redis://127.0.0.1:6379/0"},
}


async def register(data_dir: Path) -> str:
    async with operator(Settings(data_dir=data_dir)) as op:
        return await op.register(
            "bench", scopes=frozenset({"read"}), audiences=("https://api.example.test",)
        )


def measure(extra: dict[str, str], rounds: int, duration: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        secret = asyncio.run(register(data_dir))
        basic = base64.b64encode(f"bench:{secret}".encode()).decode()
        script = data_dir / "token.lua"
        script.write_text(LUA.format(basic=basic))
        port = free_port()
        env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_PORT": str(port),
            "TESSERA_AUDIT_LOG": os.devnull,
            "TESSERA_LOG_LEVEL": "warning",
            "TESSERA_RATE_LIMIT_PER_CLIENT": NEVER_REFUSE,
            "TESSERA_RATE_LIMIT_PER_CLIENT_BURST": NEVER_REFUSE,
            "TESSERA_RATE_LIMIT_PER_SOURCE": NEVER_REFUSE,
            "TESSERA_RATE_LIMIT_PER_SOURCE_BURST": NEVER_REFUSE,
            **extra,
        }
        with serving([sys.executable, "-m", "tessera", "serve"], env, port):
            url = f"http://127.0.0.1:{port}/oauth2/token"
            run_wrk(url, script, 16, 2)  # warm-up
            return max(run_wrk(url, script, 16, duration)["rps"] for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    rps = {
        name: measure(extra, args.rounds, args.duration)
        for name, extra in CONFIGURATIONS.items()
    }
    print(f"{'limits in':>10} {'tokens/s':>9}")
    for name, value in rps.items():
        print(f"{name:>10} {value:>9.0f}")
    print(f"redis / memory: {rps['redis'] / rps['memory']:.0%}")


if __name__ == "__main__":
    main()
