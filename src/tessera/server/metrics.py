"""Prometheus metrics of one node, served at ``/metrics``.

What the audit events already report (tokens issued and denied, keys created
and retired, revocations) is counted from those events: ``MeteredAudit`` sits
in front of the audit sink, so each thing is counted at the one place it is
reported. Request latency comes from the POST endpoints through an observer
(see ``PostEndpoint``), and client lookups from ``ClientSnapshot``.

The token endpoint is the hot path: every labelled child is made once and
kept, so counting a request is a dictionary lookup and an ``inc()``."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from tessera.node import AuditSink
from tessera.server.http import Observer

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Issuing a token takes about a millisecond; the buckets are finest there.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

# The label of every client id the node does not know: ids sent by anyone
# must not each become a series of their own.
UNKNOWN_CLIENT = "unknown"


class _Children:
    """The labelled children of one metric, each made on first use and then
    kept: ``labels()`` checks its arguments and takes a lock on every call."""

    __slots__ = ("_metric", "_made")

    def __init__(self, metric: Counter) -> None:
        self._metric = metric
        self._made: dict[tuple[object, ...], Counter] = {}

    def inc(self, *values: object) -> None:
        child = self._made.get(values)
        if child is None:
            child = self._metric.labels(*(str(value) for value in values))
            self._made[values] = child
        child.inc()


class Metrics:
    def __init__(self) -> None:
        # A registry of its own rather than the process-wide default: several
        # nodes can live in one process (the tests run many), each counting
        # for itself.
        self.registry = CollectorRegistry()
        # Who counts as a known client in ``tokens_denied``; the node sets
        # its ClientSnapshot here once the snapshot exists.
        self.known_clients: Container[str] = frozenset()

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        self._issued = _Children(
            counter(
                "tessera_tokens_issued_total",
                "Access tokens issued.",
                "client_id",
                "grant_type",
            )
        )
        self._denied = _Children(
            counter(
                "tessera_tokens_denied_total",
                "Token requests refused, by RFC 6749 error code. Client ids "
                "the node does not know are counted as 'unknown'.",
                "client_id",
                "error",
            )
        )
        self._revocations = counter("tessera_revocations_total", "Tokens revoked.")
        self._rotations = _Children(
            counter(
                "tessera_key_rotations_total",
                "Signing keys created, by reason: initial, manual or scheduled.",
                "reason",
            )
        )
        self._retired = counter(
            "tessera_keys_retired_total",
            "Signing keys deleted after their last token expired.",
        )
        self._lockouts = counter(
            "tessera_client_lockouts_total",
            "Client ids locked out after repeated failed authentication.",
        )
        self._duration = Histogram(
            "tessera_http_request_duration_seconds",
            "Time to answer a request to an OAuth POST endpoint.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._responses = counter(
            "tessera_http_responses_total",
            "Responses of the OAuth POST endpoints, by status.",
            "endpoint",
            "status",
        )
        lookups = counter(
            "tessera_client_cache_lookups_total",
            "Client lookups in the in-memory snapshot: hit or miss.",
            "result",
        )
        # Bound once: ClientSnapshot.get calls them on every request.
        self.client_hit = lookups.labels("hit")
        self.client_miss = lookups.labels("miss")

        self._by_event: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "token.issued": self._count_issued,
            "token.denied": self._count_denied,
            "token.revoked": lambda fields: self._revocations.inc(),
            "key.created": self._count_key_created,
            "key.retired": lambda fields: self._retired.inc(),
            "client.locked_out": lambda fields: self._lockouts.inc(),
        }

    def metered_audit(self, inner: AuditSink) -> MeteredAudit:
        """``inner``, counting the events that pass through it."""
        return MeteredAudit(inner, self._by_event)

    def observer(self, endpoint: str) -> Observer:
        """What one POST endpoint reports each reply to."""
        duration = self._duration.labels(endpoint)
        responses = _Children(self._responses)

        def observe(status: int, seconds: float) -> None:
            duration.observe(seconds)
            responses.inc(endpoint, status)

        return observe

    def exposition(self) -> bytes:
        """Every metric, in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _count_issued(self, fields: Mapping[str, Any]) -> None:
        self._issued.inc(fields.get("client_id"), fields.get("grant_type"))

    def _count_denied(self, fields: Mapping[str, Any]) -> None:
        client_id = fields.get("client_id")
        if client_id is None or client_id not in self.known_clients:
            client_id = UNKNOWN_CLIENT
        self._denied.inc(client_id, fields.get("error"))

    def _count_key_created(self, fields: Mapping[str, Any]) -> None:
        self._rotations.inc(fields.get("reason"))


class MeteredAudit:
    """An audit sink that counts the events it forwards."""

    __slots__ = ("_inner", "_by_event")

    def __init__(
        self,
        inner: AuditSink,
        by_event: Mapping[str, Callable[[Mapping[str, Any]], None]],
    ) -> None:
        self._inner = inner
        self._by_event = by_event

    def emit(self, event: str, **fields: Any) -> None:
        # Recorded first: the audit record matters more than its count.
        self._inner.emit(event, **fields)
        count = self._by_event.get(event)
        if count is not None:
            count(fields)

    def close(self) -> None:
        self._inner.close()
