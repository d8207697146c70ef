"""Audit events as JSON lines, written off the request path.

``emit`` only puts the event on a queue; a writer thread encodes and writes
batches of them, so issuing a token never waits on a disk or a pipe, nor
pays for the logging module's record machinery."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from typing import IO, Any

_STOP = object()


class JsonLinesAudit:
    def __init__(self, destination: str) -> None:
        if destination == "-":
            self._stream: IO[str] = sys.stderr
            self._owned = False
        else:
            self._stream = open(destination, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write, name="tessera-audit", daemon=True
        )
        self._writer.start()

    def emit(self, event: str, **fields: Any) -> None:
        self._queue.put((time.time(), event, fields))

    def _write(self) -> None:
        while True:
            items = [self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            lines = []
            stop = False
            for item in items:
                if item is _STOP:
                    stop = True
                    continue
                ts, event, fields = item
                record = {"ts": round(ts, 3), "event": event, **fields}
                lines.append(json.dumps(record, separators=(",", ":"), default=str))
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            if stop:
                return

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(_STOP)
        self._writer.join(timeout=5)
        if self._owned:
            self._stream.close()
