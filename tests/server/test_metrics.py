"""What ``/metrics`` reports, read off the wire: the names and labels are a
contract with the dashboards and alerts built on them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.server.app import build_app
from tessera.server.metrics import Metrics
from tessera.server.runtime import Runtime
from tests.server.helpers import basic, issue_token, unique
from tests.support import RunningServer, token_request

GRANT = {"grant_type": "client_credentials"}
DURATION = "tessera_http_request_duration_seconds"


def scrape(http: httpx.Client) -> str:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; 0 when the series does not exist yet."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


def wrong_secret(http: httpx.Client, client_id: str) -> httpx.Response:
    return http.post(
        "/oauth2/token", data=GRANT, headers={"Authorization": basic(client_id, "x")}
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tessera_tokens_issued_total", "counter"),
        ("tessera_tokens_denied_total", "counter"),
        ("tessera_http_request_duration_seconds", "histogram"),
        ("tessera_http_responses_total", "counter"),
        ("tessera_client_cache_lookups_total", "counter"),
        ("tessera_key_rotations_total", "counter"),
        ("tessera_keys_retired_total", "counter"),
        ("tessera_revocations_total", "counter"),
        ("tessera_client_lockouts_total", "counter"),
    ],
)
def test_every_metric_is_published(http: httpx.Client, name: str, kind: str) -> None:
    assert f"# TYPE {name} {kind}" in scrape(http).splitlines()


def test_issued_tokens_are_counted_per_client(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("metrics-issued")
    server.create_client(client_id)

    for _ in range(3):
        assert token_request(server, client_id).status_code == 200

    line = (
        f'tessera_tokens_issued_total{{client_id="{client_id}",'
        'grant_type="client_credentials"} 3.0'
    )
    assert line in scrape(http).splitlines()


def test_a_wrong_secret_is_counted_under_the_client(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("metrics-denied")
    server.create_client(client_id)

    assert wrong_secret(http, client_id).status_code == 401

    text = scrape(http)
    line = (
        f'tessera_tokens_denied_total{{client_id="{client_id}",'
        'error="invalid_client"} 1.0'
    )
    assert line in text.splitlines()
    assert f'tessera_tokens_issued_total{{client_id="{client_id}"' not in text


def test_unknown_client_ids_share_one_label(http: httpx.Client) -> None:
    """Ids anyone can send must not each make a series of their own."""
    name, labels = "tessera_tokens_denied_total", {"error": "invalid_client"}
    before = sample(scrape(http), name, client_id="unknown", **labels)
    ghosts = [f"ghost-{secrets.token_hex(8)}" for _ in range(2)]

    for ghost in ghosts:
        assert wrong_secret(http, ghost).status_code == 401

    text = scrape(http)
    assert sample(text, name, client_id="unknown", **labels) == before + 2
    assert not any(ghost in text for ghost in ghosts)


def test_every_token_request_is_timed_and_counted_by_status(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("metrics-timed")
    server.create_client(client_id)
    token = {"endpoint": "token"}
    before = scrape(http)

    for _ in range(3):
        assert token_request(server, client_id).status_code == 200
    assert wrong_secret(http, client_id).status_code == 401

    after = scrape(http)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew(f"{DURATION}_count", **token) == 4
    assert grew(f"{DURATION}_bucket", le="+Inf", **token) == 4
    assert grew(f"{DURATION}_sum", **token) > 0
    assert grew("tessera_http_responses_total", status="200", **token) == 3
    assert grew("tessera_http_responses_total", status="401", **token) == 1


def test_revocations_are_counted(server: RunningServer, http: httpx.Client) -> None:
    client_id = unique("metrics-revoke")
    secret = server.create_client(client_id)
    token = issue_token(http, client_id, secret)
    before = scrape(http)

    revoked = http.post(
        "/oauth2/revoke",
        data={"token": token},
        headers={"Authorization": basic(client_id, secret)},
    )

    assert revoked.status_code == 200
    after = scrape(http)
    for name, labels in [
        ("tessera_revocations_total", {}),
        (f"{DURATION}_count", {"endpoint": "revoke"}),
        ("tessera_http_responses_total", {"endpoint": "revoke", "status": "200"}),
    ]:
        assert sample(after, name, **labels) == sample(before, name, **labels) + 1


def test_client_lookups_are_counted_as_hits_and_misses(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("metrics-lookup")
    server.create_client(client_id)
    name = "tessera_client_cache_lookups_total"
    before = scrape(http)

    for _ in range(2):
        assert token_request(server, client_id).status_code == 200
    assert wrong_secret(http, unique("ghost")).status_code == 401

    after = scrape(http)
    assert sample(after, name, result="hit") == sample(before, name, result="hit") + 2
    assert sample(after, name, result="miss") == sample(before, name, result="miss") + 1


# In-process: a rotation made by ``tessera keys rotate`` happens in the CLI's
# process, and is counted there, not by the server's metrics.


class Clock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        issuer="http://tessera.test",
        audit_log=str(tmp_path / "audit.jsonl"),
        key_publish_ahead=600,
        max_token_ttl=3600,
        key_rotation_interval=86400,
    )


@contextlib.asynccontextmanager
async def node(
    settings: Settings, clock: Callable[[], float]
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A node in this process, and an HTTP client for it."""
    app = build_app(settings, clock=clock, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        yield app.state.runtime, http


async def test_key_rotations_are_counted_by_reason(settings: Settings) -> None:
    clock = Clock()
    async with node(settings, clock) as (runtime, http):

        async def value(name: str, **labels: str) -> float:
            return sample((await http.get("/metrics")).text, name, **labels)

        rotations = "tessera_key_rotations_total"
        # The default algorithm's key, and the RS256 one ID tokens need.
        assert await value(rotations, reason="initial") == 2
        assert await value("tessera_keys_retired_total") == 0

        first = runtime.minter.keyring.signing_key("ES256", clock()).kid
        await runtime.keys.rotate("ES256")
        assert await value(rotations, reason="manual") == 1

        # The first key stops signing once the new one activates, and is
        # deleted when its last token has expired.
        clock.now += 600 + 3600
        assert await runtime.keys.prune() == [first]
        assert await value("tessera_keys_retired_total") == 1

        clock.now += 86400
        assert len(await runtime.keys.rotate_due()) == 2
        assert await value(rotations, reason="scheduled") == 2

        # Another process's rotation (the operator API the CLI uses) is
        # counted by that process, not by this node.
        async with operator(settings) as op:
            await op.keys.rotate("ES256")
        await runtime.refresh()
        assert await value(rotations, reason="manual") == 1


# The audit wrapper on its own.


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    def close(self) -> None:
        self.closed = True


def test_the_metered_audit_forwards_every_event_unchanged() -> None:
    sink = RecordingSink()
    audit = Metrics().metered_audit(sink)
    events = [
        ("token.issued", {"client_id": "a", "grant_type": "client_credentials"}),
        ("client.locked_out", {"client_id": "a"}),
        ("token.denied", {"client_id": None, "error": "invalid_request"}),
    ]

    for event, fields in events:
        audit.emit(event, **fields)
    audit.close()

    assert sink.events == events
    assert sink.closed


@pytest.mark.parametrize(
    ("presented", "label"),
    [("known", "known"), ("ghost", "unknown"), (None, "unknown")],
    ids=["known", "unknown", "none-presented"],
)
def test_denials_name_only_known_clients(presented: str | None, label: str) -> None:
    metrics = Metrics()
    metrics.known_clients = {"known"}
    audit = metrics.metered_audit(RecordingSink())

    audit.emit("token.denied", client_id=presented, error="invalid_client")

    labels = {"client_id": label, "error": "invalid_client"}
    value = metrics.registry.get_sample_value("tessera_tokens_denied_total", labels)
    assert value == 1


def test_each_node_counts_in_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()

    first.metered_audit(RecordingSink()).emit("token.revoked", client_id="a")

    assert first.registry.get_sample_value("tessera_revocations_total") == 1
    assert second.registry.get_sample_value("tessera_revocations_total") == 0
