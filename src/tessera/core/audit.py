"""Audit events: what operators review. The core emits them through this
narrow interface; the server decides where they go."""

from __future__ import annotations

from typing import Any, Protocol


class Audit(Protocol):
    def emit(self, event: str, **fields: Any) -> None:
        """Record one event. Fields never include a secret or a token."""
        ...
