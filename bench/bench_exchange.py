"""Token exchange (RFC 8693) against client credentials, in one run.

The jwt-bearer grant (RFC 7523) is measured alongside, for contrast.

Run:  .venv/bin/python bench/bench_exchange.py [--duration 8] [--rounds 3]
      [--connections 16] [--subject-alg RS256] [--quick]

About one and a half minutes with the defaults; --quick is 2 rounds of 5 s,
under one.

Needs `wrk`. Starts on loopback ports the stand-in issuer (`tessera
demo-issuer`, playing GitHub Actions for the repository acme/deploy) and one
`tessera serve` (SQLite in a temporary directory, ES256, rate limits off,
audit events to /dev/null). The store holds a client for client_credentials
and a GitHub trust policy for the stand-in: repository acme/deploy, scope
deploy, one audience, tokens of at most 900 s.

One subject token, valid for an hour and signed with --subject-alg (RS256,
as GitHub signs; ES256 or EdDSA for issuers whose keys are of those), is
minted and sent with every federated request: the server keeps the issuer's
keys after the first exchange, and a warm key cache is what the figure is
about. Measured, each with wrk (one thread, --connections connections):

    client_credentials   client_secret_basic, scope read (as bench_token.py)
    token-exchange       subject_token of type jwt, scope deploy, no client
    jwt-bearer           the same token as assertion, scope deploy, no client

Rounds interleave the three so that a slow spell of the machine hits them
alike; the best round of each is kept. A grant's cost per request is 1/rps,
reported as a multiple of client_credentials'. The stand-in counts the
discovery and JWKS requests it serves: one discovery, and one JWKS fetch per
cache lifetime (the stand-in's max-age) begun, is what a warm cache allows.
More than that, or any answer but 2xx, fails the run. Every process is
stopped at the end, also on error or Ctrl-C. Prints a table and one JSON
line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from bench_token import LUA, free_port, run_wrk, serving

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.exchange import JWT_BEARER, JWT_TYPE, TOKEN_EXCHANGE
from tessera.core.federation import Condition, TrustPolicy, check_policy
from tessera.verify._discovery import cache_lifetime

REPOSITORY = "acme/deploy"
EXTERNAL_AUDIENCE = "https://tessera.bench"
API = "https://api.example.test"
SUBJECT_TOKEN_TTL = 3600
ALG = "ES256"
# What the stand-in signs with, and external_token.py accepts.
SUBJECT_ALGORITHMS = ("RS256", "ES256", "EdDSA")

REFERENCE = "client_credentials"
GRANTS = (REFERENCE, "token-exchange", "jwt-bearer")

FEDERATED_LUA = """
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def prepare_store(settings: Settings, issuer_url: str) -> str:
    """Store the bench client and the trust policy; return the secret."""
    policy = TrustPolicy(
        name="bench",
        issuer=issuer_url,
        audience=EXTERNAL_AUDIENCE,
        conditions=(Condition("repository", "equals", (REPOSITORY,)),),
        scopes=frozenset({"deploy"}),
        audiences=(API,),
        max_ttl=900,
        subject="{sub}",
        profile="github",
    )
    check_policy(policy)

    async def go() -> str:
        async with operator(settings) as op:
            await op.policies.create(policy)
            return await op.register(
                "bench", scopes=frozenset({"read"}), audiences=(API,)
            )

    return asyncio.run(go())


def federated_bodies(subject_token: str) -> dict[str, str]:
    """The form of each federated grant, the same token in both.

    The URNs' colons are escaped, as form encoders in clients escape them;
    the server then takes its unquoting parse, part of what a grant costs."""
    return {
        "token-exchange": urlencode(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": subject_token,
                "subject_token_type": JWT_TYPE,
                "scope": "deploy",
            }
        ),
        "jwt-bearer": urlencode(
            {"grant_type": JWT_BEARER, "assertion": subject_token, "scope": "deploy"}
        ),
    }


def first_request(url: str, grant: str, body: str) -> float:
    """Send one request of the grant and return its time in milliseconds;
    a refusal stops the run here, with the server's own words."""
    started = time.perf_counter()
    answer = httpx.post(
        url,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200 or "access_token" not in answer.json():
        raise RuntimeError(f"{grant} answered {answer.status_code}: {answer.text}")
    return elapsed


def measure(
    url: str, scripts: dict[str, Path], connections: int, duration: int, rounds: int
) -> dict[str, dict[str, float]]:
    """The best round of each grant, the grants taking turns in every round."""
    for grant in GRANTS:  # warm-up
        run_wrk(url, scripts[grant], connections, 2)
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for grant in GRANTS:
            result = run_wrk(url, scripts[grant], connections, duration)
            kept = best.get(grant)
            if kept is None or result["rps"] > kept["rps"]:
                best[grant] = result
    return best


def report(
    best: dict[str, dict[str, float]],
    fetches: dict[str, int],
    allowed: int,
    lifetime: float,
    elapsed: float,
    cold_ms: float,
    args: argparse.Namespace,
) -> None:
    reference = best[REFERENCE]["rps"]
    ratios = {grant: reference / best[grant]["rps"] for grant in GRANTS}
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, alg {ALG}, subject token "
        f"{args.subject_alg}; best of {args.rounds} rounds of {args.duration} s, "
        f"{args.connections} connections"
    )
    print(f"{'grant':<20}{'req/s':>8}{'p50/p99 ms':>15}{'us/req':>8}  cost")
    for grant in GRANTS:
        result = best[grant]
        latency = f"{result['p50_ms']:.2f}/{result['p99_ms']:.2f}"
        cost = f"{ratios[grant]:.2f} x {REFERENCE}"
        if grant == REFERENCE:
            cost = "reference"
        print(
            f"{grant:<20}{result['rps']:>8.0f}{latency:>15}"
            f"{1e6 / result['rps']:>8.0f}  {cost}"
        )
    print(f"first exchange, keys not yet fetched: {cold_ms:.1f} ms")
    print(
        f"issuer requests over {elapsed:.0f} s of exchanges: "
        f"discovery {fetches['discovery']}, JWKS {fetches['jwks']} "
        f"(keys kept {lifetime:.0f} s, so at most {allowed})"
    )
    print(
        json.dumps(
            {
                "bench": "exchange",
                "alg": ALG,
                "subject_alg": args.subject_alg,
                "duration": args.duration,
                "rounds": args.rounds,
                "connections": args.connections,
                "best": {
                    grant: {name: round(value, 2) for name, value in result.items()}
                    for grant, result in best.items()
                },
                "cost_ratio": {grant: round(r, 3) for grant, r in ratios.items()},
                "first_exchange_ms": round(cold_ms, 1),
                "issuer_requests": fetches,
                "jwks_allowed": allowed,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--subject-alg", choices=SUBJECT_ALGORITHMS, default="RS256")
    parser.add_argument("--quick", action="store_true", help="under one minute")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 5, 2
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")
    # A plain `kill` then stops the two servers as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    issuer_port, token_port = free_port(), free_port()
    issuer_url = f"http://127.0.0.1:{issuer_port}"
    issuer_command = [sys.executable, "-m", "tessera", "demo-issuer"]
    issuer_command += ["--port", str(issuer_port), "--repository", REPOSITORY]
    with (
        tempfile.TemporaryDirectory(prefix="tessera-exchange-") as tmp,
        serving(issuer_command, dict(os.environ), issuer_port),
        httpx.Client(base_url=issuer_url, timeout=10) as issuer,
    ):
        work = Path(tmp)
        settings = Settings(
            data_dir=work, default_signing_alg=ALG, audit_log=os.devnull
        )
        secret = prepare_store(settings, issuer_url)

        # How long the server keeps the issuer's keys, by the server's own
        # rule; this look counts as a JWKS request, so the counts are reset
        # after it and before the server asks for anything.
        jwks = issuer.get("/.well-known/jwks").raise_for_status()
        lifetime = cache_lifetime(jwks.headers.get("cache-control"))
        issuer.delete("/requests").raise_for_status()
        minted = issuer.post(
            "/mint",
            json={
                "profile": "github",
                "audience": EXTERNAL_AUDIENCE,
                "claims": {"repository": REPOSITORY},
                "ttl": SUBJECT_TOKEN_TTL,
                "alg": args.subject_alg,
            },
        ).raise_for_status()
        bodies = federated_bodies(minted.json()["token"])

        scripts = {grant: work / f"{grant}.lua" for grant in GRANTS}
        basic = base64.b64encode(f"bench:{secret}".encode()).decode()
        scripts[REFERENCE].write_text(LUA.format(basic=basic))
        for grant, body in bodies.items():
            scripts[grant].write_text(FEDERATED_LUA.format(body=body))

        token_env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(work),
            "TESSERA_PORT": str(token_port),
            "TESSERA_AUDIT_LOG": os.devnull,
            "TESSERA_DEFAULT_SIGNING_ALG": ALG,
            "TESSERA_LOG_LEVEL": "warning",
            # Throughput is measured here, not the limits' refusals.
            "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
            "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
        }
        url = f"http://127.0.0.1:{token_port}/oauth2/token"
        with serving([sys.executable, "-m", "tessera", "serve"], token_env, token_port):
            first_exchange = time.monotonic()
            cold_ms = first_request(url, "token-exchange", bodies["token-exchange"])
            first_request(url, "jwt-bearer", bodies["jwt-bearer"])
            best = measure(url, scripts, args.connections, args.duration, args.rounds)
            elapsed = time.monotonic() - first_exchange
            fetches = issuer.get("/requests").raise_for_status().json()

    # The first exchange fetched the keys; each lifetime begun after it may
    # refetch them once, and nothing else may.
    allowed = 1 + int(elapsed // lifetime)
    report(best, fetches, allowed, lifetime, elapsed, cold_ms, args)
    if fetches["discovery"] != 1 or not 1 <= fetches["jwks"] <= allowed:
        sys.exit(
            f"the issuer's keys were fetched more often than the cache allows: "
            f"{fetches}, at most {allowed} JWKS and 1 discovery"
        )


if __name__ == "__main__":
    main()
