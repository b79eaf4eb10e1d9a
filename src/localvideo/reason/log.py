"""The ``reason_log`` table: every request and response, images by hash, never bytes."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

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
    cur = db.execute(
        "INSERT INTO reason_log(ts, reasoner, model, base_url, task, request, response, "
        "usage, status, error, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (time.time(), reasoner, model, base_url, request.task, json.dumps(payload),
         response.text if response else None,
         json.dumps(response.usage) if response else None, status,
         error.message if error else None, round(duration_ms, 1)))
    return int(cur.lastrowid or 0)


def recent(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    rows = db.query("SELECT * FROM reason_log ORDER BY id DESC LIMIT ?", (limit,))
    out = []
    for r in rows:
        d = dict(r)
        d["request"] = json.loads(d["request"]) if d["request"] else None
        d["usage"] = json.loads(d["usage"]) if d["usage"] else None
        out.append(d)
    return out
