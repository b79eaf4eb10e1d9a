"""The request log (``reason_log``): one row per reasoner attempt, images by hash, never bytes.

JSON columns come back decoded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from .db import Conn


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    id: int
    ts: float                         # unix seconds when the attempt ended
    reasoner: str                     # anthropic | openai | gemini | offline
    model: str | None
    base_url: str | None
    task: str | None                  # observe | ask
    request: Any                      # the payload sent; images as {sha256, media_type, bytes}
    response: str | None              # raw answer text
    usage: Any                        # tokens in/out when the endpoint says
    status: str                       # ok | error | error:<http status>
    error: str | None
    duration_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLS = ("id, ts, reasoner, model, base_url, task, request, response, usage, status, error, "
         "duration_ms")


def add_request(db: Conn, *, reasoner: str, model: str | None, base_url: str | None,
                task: str | None, payload: dict[str, Any], response: str | None,
                usage: Any, status: str, error: str | None, duration_ms: float) -> int:
    """Log one attempt; ``usage`` None is stored as no usage (JSON ``null`` otherwise)."""
    cur = db.execute(
        "INSERT INTO reason_log(ts, reasoner, model, base_url, task, request, response, "
        "usage, status, error, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (time.time(), reasoner, model, base_url, task, json.dumps(payload), response,
         json.dumps(usage) if usage is not None else None, status, error,
         round(duration_ms, 1)))
    return int(cur.lastrowid or 0)


def recent(db: Conn, limit: int = 50) -> list[LoggedRequest]:
    """The newest ``limit`` attempts, newest first."""
    rows = db.execute(f"SELECT {_COLS} FROM reason_log ORDER BY id DESC LIMIT ?",
                      (limit,)).fetchall()
    return [LoggedRequest(r[0], r[1], r[2], r[3], r[4], r[5],
                          json.loads(r[6]) if r[6] else None, r[7],
                          json.loads(r[8]) if r[8] else None, r[9], r[10], r[11])
            for r in rows]
