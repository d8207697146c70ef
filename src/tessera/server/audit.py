"""Audit events as JSON lines, written off the request path.

Events go through a queue to a writer thread, so that issuing a token never
waits on a disk or a pipe."""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

LOGGER_NAME = "tessera.audit"


class JsonLinesAudit:
    def __init__(self, destination: str) -> None:
        self._logger = logging.getLogger(LOGGER_NAME)
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        if destination == "-":
            target: logging.Handler = logging.StreamHandler(sys.stderr)
        else:
            target = logging.FileHandler(destination, encoding="utf-8")
        target.setFormatter(logging.Formatter("%(message)s"))
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._handler = logging.handlers.QueueHandler(records)
        self._listener = logging.handlers.QueueListener(records, target)
        self._target = target
        self._logger.addHandler(self._handler)
        self._listener.start()

    def emit(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        self._logger.info(json.dumps(record, separators=(",", ":"), default=str))

    def close(self) -> None:
        self._listener.stop()
        self._logger.removeHandler(self._handler)
        self._target.close()
