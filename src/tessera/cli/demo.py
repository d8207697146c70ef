"""``tessera demo-api``, ``tessera demo``, ``tessera demo-issuer`` and
``tessera demo-dashboard``."""

from __future__ import annotations

import ipaddress
import os
import sys

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


@click.command(name="demo-issuer")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9000, show_default=True)
@click.option("--issuer", help="The iss claim and discovery URL [http://HOST:PORT].")
@click.option(
    "--request-token",
    help="What GET /token requires as 'Authorization: bearer ...' "
    "(ACTIONS_ID_TOKEN_REQUEST_TOKEN) [random, printed].",
)
@click.option("--repository", default="octo-org/octo-repo", show_default=True)
@click.option("--ref", default="refs/heads/main", show_default=True)
@click.option("--environment", help="The job's deployment environment.")
@click.option("--event-name", default="push", show_default=True)
@click.option("--actor", default="octocat", show_default=True)
@click.option("--workflow-ref", help="[REPOSITORY/.github/workflows/ci.yml@REF]")
@click.option(
    "--job-workflow-ref", help="A reusable workflow's ref [the workflow ref]."
)
def demo_issuer(
    host: str,
    port: int,
    issuer: str | None,
    request_token: str | None,
    repository: str,
    ref: str,
    environment: str | None,
    event_name: str,
    actor: str,
    workflow_ref: str | None,
    job_workflow_ref: str | None,
) -> None:
    """Run a stand-in OIDC issuer for demos and tests: it mints GitHub
    Actions, GitLab CI and Kubernetes tokens from in-memory keys.

    Not for production. GET /token answers GitHub's ID-token request for the
    job described by the options; POST /mint, /rotate and /faults let tests
    forge tokens and break the JWKS, with no authentication, so keep --host on
    loopback."""
    import secrets

    import uvicorn

    from tessera.demo.issuer import DemoIssuer, GitHubJob, build_demo_issuer

    if "/" not in repository:
        raise click.BadParameter("expected OWNER/REPO", param_hint="--repository")
    if not _is_loopback(host):
        click.echo(
            f"warning: anyone who can reach {host}:{port} can mint tokens with "
            "this issuer's keys",
            err=True,
        )
    job = GitHubJob(
        repository=repository,
        ref=ref,
        environment=environment,
        event_name=event_name,
        actor=actor,
        workflow_ref=workflow_ref,
        job_workflow_ref=job_workflow_ref,
    )
    request_token = request_token or secrets.token_urlsafe(24)
    issuer = issuer or f"http://{host}:{port}"
    state = DemoIssuer(issuer, request_token, job)

    click.echo(
        f"Demo issuer {state.issuer} listening on http://{host}:{port}; "
        f"request token: {request_token}"
    )
    config = uvicorn.Config(
        build_demo_issuer(state),
        host=host,
        port=port,
        log_level="warning",
        # A request held by the "slow" fault must not hold up the exit.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(1)


@click.command(name="demo-dashboard")
@click.option("--issuer", required=True, help="The OpenID Provider's issuer URL.")
@click.option("--client-id", required=True, help="The dashboard's client id.")
@click.option(
    "--client-secret-env",
    metavar="VAR",
    help="Read a confidential client's secret from this environment variable "
    "[a public client, with no secret].",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8200, show_default=True)
def demo_dashboard(
    issuer: str,
    client_id: str,
    client_secret_env: str | None,
    host: str,
    port: int,
) -> None:
    """Run the demo dashboard, a web application that signs people in with
    OpenID Connect (authorization code with PKCE).

    Register its client with redirect URI http://HOST:PORT/callback and
    post-logout redirect URI http://HOST:PORT/signed-out."""
    import asyncio

    import httpx
    import uvicorn

    from tessera.demo.dashboard import DashboardConfig, build_dashboard
    from tessera.demo.oidc_client import DiscoveryError, ProviderMetadata, discover

    secret = None
    if client_secret_env:
        secret = os.environ.get(client_secret_env)
        if not secret:
            raise click.ClickException(f"the variable {client_secret_env} is not set")

    async def preflight() -> ProviderMetadata:
        async with httpx.AsyncClient(timeout=10) as http:
            return await discover(issuer, http)

    try:
        metadata = asyncio.run(preflight())
    except DiscoveryError as error:
        raise click.ClickException(str(error)) from None
    shown_host = f"[{host}]" if ":" in host else host
    config = DashboardConfig(
        issuer=issuer,
        client_id=client_id,
        base_url=f"http://{shown_host}:{port}",
        client_secret=secret,
    )
    click.echo(
        f"Demo dashboard on {config.base_url}/ (redirect URI "
        f"{config.redirect_uri}, post-logout {config.post_logout_redirect_uri})"
    )
    app = build_dashboard(config, metadata=metadata)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
