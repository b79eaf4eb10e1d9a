"""The ``reason_log`` table: every request and response, images by hash, never bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store import requests as requests_db

if TYPE_CHECKING:
    from ..errors import ReasonerError
    from ..store.db import Database
    from .base import ReasonRequest, ReasonResponse


def log_request(db: Database, *, reasoner: str, model: str, base_url: str | None,
                request: ReasonRequest, payload: dict[str, Any],
                response: ReasonResponse | None, error: ReasonerError | None,
                duration_ms: float) -> int:
    if error is None:
        status = "ok"
    else:
        code = getattr(error, "status", None)
        status = f"error:{code}" if code else "error"
    return requests_db.add_request(
        db, reasoner=reasoner, model=model, base_url=base_url, task=request.task,
        payload=payload, response=response.text if response else None,
        usage=response.usage if response else None, status=status,
        error=error.message if error else None, duration_ms=duration_ms)


def recent(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    return [r.to_dict() for r in requests_db.recent(db, limit)]
