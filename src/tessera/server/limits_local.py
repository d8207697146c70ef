"""The Limiter of one process: plain dicts, so each node counts on its own.

Used when no Redis is configured, and by the Redis limiter whenever Redis
cannot answer. A conforming request costs two dict operations per limit
(pop, then store again) and the GCRA arithmetic.

Memory is bounded. An attacker can present a new client id, or (over IPv6)
a new source address, with every request, and each would otherwise stay in
memory for good. So expired entries are swept out once a minute, and each
table holds at most ``max_keys`` entries: past that, the least recently used
are dropped. Every entry is re-inserted when used, so dict order is least
recently used first. A dropped rate entry is almost always expired already,
and a dropped failure count only lets that id start counting again; the
per-source limit still bounds how fast any one address can guess.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TypeVar

from tessera.core.limits import Admission, RateCheck, gcra

MAX_KEYS = 100_000
SWEEP_INTERVAL = 60.0

V = TypeVar("V")


class LocalLimiter:
    def __init__(self, *, max_keys: int = MAX_KEYS) -> None:
        self._max_keys = max_keys
        # Key → theoretical arrival time; client id → (failures, window end);
        # client id → end of its lock.
        self._tats: dict[str, float] = {}
        self._failures: dict[str, tuple[int, float]] = {}
        self._locks: dict[str, float] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        """How many entries are held, across all three tables."""
        return len(self._tats) + len(self._failures) + len(self._locks)

    async def hit(self, key: str, rate: float, burst: int, now: float) -> float:
        tats = self._tats
        tat, wait = gcra(tats.pop(key, None), now, rate, burst)
        tats[key] = tat
        if len(tats) > self._max_keys or now >= self._next_sweep:
            self._sweep(now)
        return wait

    async def record_failure(self, client_id: str, now: float, window: float) -> int:
        failures, window_end = self._failures.pop(client_id, (0, 0.0))
        if window_end <= now:
            failures, window_end = 0, now + window
        failures += 1
        self._failures[client_id] = (failures, window_end)
        if len(self._failures) > self._max_keys or now >= self._next_sweep:
            self._sweep(now)
        return failures

    async def locked_until(self, client_id: str, now: float) -> float | None:
        until = self._locks.get(client_id)
        if until is None:
            return None
        if until <= now:
            del self._locks[client_id]
            return None
        return until

    async def lock(self, client_id: str, until: float, now: float) -> None:
        self._locks.pop(client_id, None)
        self._locks[client_id] = until
        self._failures.pop(client_id, None)
        if len(self._locks) > self._max_keys:
            self._sweep(now)

    async def clear_failures(self, client_id: str) -> None:
        self._failures.pop(client_id, None)

    async def admit(
        self, checks: tuple[RateCheck, ...], client_id: str, now: float
    ) -> Admission:
        for check in checks:
            wait = await self.hit(check.key, check.rate, check.burst, now)
            if wait:
                return Admission(wait, None, False)
        failures = self._failures.get(client_id)
        return Admission(
            0.0,
            await self.locked_until(client_id, now),
            failures is not None and failures[1] > now,
        )

    async def close(self) -> None:
        pass

    def _sweep(self, now: float) -> None:
        """Drop what has expired, then the least recently used beyond the cap
        (down to nine tenths of it, so a flood does not sweep every call)."""
        self._next_sweep = now + SWEEP_INTERVAL
        _drop_expired(self._tats, lambda tat: tat <= now)
        _drop_expired(self._failures, lambda entry: entry[1] <= now)
        _drop_expired(self._locks, lambda until: until <= now)
        for table in (self._tats, self._failures, self._locks):
            if len(table) > self._max_keys:
                _drop_oldest(table, len(table) - self._max_keys * 9 // 10)


def _drop_expired(table: dict[str, V], expired: Callable[[V], bool]) -> None:
    for key in [key for key, value in table.items() if expired(value)]:
        del table[key]


def _drop_oldest(table: dict[str, V], count: int) -> None:
    for key in list(islice(table, count)):
        del table[key]
