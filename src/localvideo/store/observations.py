"""Observations: one row per time window the reasoner described (or will, or failed to).

JSON columns come back decoded: a caller never sees the storage encoding.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from .db import Conn, Database, delete_kv, put_kv

ENDPOINT_ERROR_KEY = "analyze.last_endpoint_error"


@dataclass(frozen=True, slots=True)
class Observation:
    id: int
    start_ts: float
    end_ts: float
    status: str                       # pending | done | failed
    attempts: int
    next_try_ts: float | None
    reasoner: str | None
    model: str | None
    summary: str | None
    activities: list[str]
    task: dict[str, Any] | None       # {verdict, category, title, description}
    error: str | None
    created_ts: float
    done_ts: float | None
    request_ids: list[int]            # reason_log ids

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Summary(NamedTuple):
    start_ts: float
    end_ts: float
    summary: str | None


_COLS = ("id, start_ts, end_ts, status, attempts, next_try_ts, reasoner, model, summary, "
         "activities, task, error, created_ts, done_ts, request_ids")


def _obs(r: Any) -> Observation:
    return Observation(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                       json.loads(r[9]) if r[9] else [], json.loads(r[10]) if r[10] else None,
                       r[11], r[12], r[13], json.loads(r[14] or "[]"))


# -- reading ---------------------------------------------------------------------------------

def get(db: Conn, obs_id: int) -> Observation | None:
    row = db.execute(f"SELECT {_COLS} FROM observations WHERE id = ?", (int(obs_id),)).fetchone()
    return _obs(row) if row is not None else None


def latest(db: Conn, *, since: float | None = None, status: str | None = None,
           limit: int = 50) -> list[Observation]:
    """The newest ``limit`` observations ending at/after ``since``, oldest first."""
    sql = f"SELECT {_COLS} FROM observations WHERE 1=1"
    params: list[Any] = []
    if since is not None:
        sql += " AND end_ts >= ?"
        params.append(since)
    if status:
        sql += " AND status = ?"
        params.append(status)
    sql += " ORDER BY start_ts DESC LIMIT ?"
    params.append(limit)
    return [_obs(r) for r in reversed(db.execute(sql, params).fetchall())]


def due(db: Conn, *, ignore_backoff: bool, now: float | None = None) -> list[Observation]:
    """Pending observations to send now, oldest first (all of them with ``ignore_backoff``)."""
    sql = f"SELECT {_COLS} FROM observations WHERE status = 'pending'"
    params: list[Any] = []
    if not ignore_backoff:
        sql += " AND (next_try_ts IS NULL OR next_try_ts <= ?)"
        params.append(time.time() if now is None else now)
    return [_obs(r) for r in db.execute(sql + " ORDER BY start_ts", params).fetchall()]


def status_counts(db: Conn) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute(
        "SELECT status, COUNT(*) FROM observations GROUP BY status").fetchall()}


def next_retry_ts(db: Conn) -> float | None:
    value: float | None = db.execute(
        "SELECT MIN(next_try_ts) FROM observations WHERE status = 'pending'").fetchone()[0]
    return value


def last_end_ts(db: Conn) -> float | None:
    value: float | None = db.execute("SELECT MAX(end_ts) FROM observations").fetchone()[0]
    return value


def recent_summaries(db: Conn, since: float, until: float, limit: int = 5) -> list[Summary]:
    """The newest done observations overlapping [since, until], newest first."""
    rows = db.execute("SELECT start_ts, end_ts, summary FROM observations WHERE status = 'done' "
                      "AND end_ts >= ? AND start_ts <= ? ORDER BY start_ts DESC LIMIT ?",
                      (since, until, limit)).fetchall()
    return [Summary(*r) for r in rows]


# -- writing ---------------------------------------------------------------------------------

def add_pending(db: Database, start: float, end: float) -> int | None:
    """A pending observation for [start, end]; None when one starts there already."""
    with db.tx() as conn:
        cur = conn.execute("INSERT OR IGNORE INTO observations(start_ts, end_ts, status, "
                           "created_ts) VALUES (?, ?, 'pending', ?)", (start, end, time.time()))
    return int(cur.lastrowid or 0) if cur.rowcount else None


def mark_retry(db: Database, obs_id: int, *, status: str, attempts: int,
               next_try_ts: float | None, reasoner: str, model: str | None, error: str,
               endpoint_error: dict[str, Any]) -> None:
    """An endpoint failed: record it on the observation and as the last endpoint error."""
    with db.tx() as conn:
        conn.execute("UPDATE observations SET status = ?, attempts = ?, next_try_ts = ?, "
                     "reasoner = ?, model = ?, error = ? WHERE id = ?",
                     (status, attempts, next_try_ts, reasoner, model, error, obs_id))
        put_kv(conn, ENDPOINT_ERROR_KEY, json.dumps(endpoint_error))


def mark_failed(db: Database, obs_id: int, *, reasoner: str, model: str | None,
                error: str) -> None:
    with db.tx() as conn:
        conn.execute("UPDATE observations SET status = 'failed', attempts = attempts + 1, "
                     "reasoner = ?, model = ?, error = ? WHERE id = ?",
                     (reasoner, model, error, obs_id))


def mark_done(db: Database, obs_id: int, *, reasoner: str, model: str | None, summary: str,
              activities: list[Any], task: dict[str, Any], request_ids: list[int]) -> None:
    """Store the answer; a success also clears the last endpoint error."""
    with db.tx() as conn:
        conn.execute(
            "UPDATE observations SET status = 'done', attempts = attempts + 1, next_try_ts = NULL,"
            " reasoner = ?, model = ?, summary = ?, activities = ?, task = ?, error = NULL, "
            "done_ts = ?, request_ids = ? WHERE id = ?",
            (reasoner, model, summary, json.dumps(activities, ensure_ascii=False),
             json.dumps(task, ensure_ascii=False), time.time(), json.dumps(request_ids),
             obs_id))
        delete_kv(conn, ENDPOINT_ERROR_KEY)


def delete_overlapping(conn: Conn, start: float, end: float) -> int:
    """Drop the observations whose window overlaps [start, end]; returns how many."""
    return conn.execute("DELETE FROM observations WHERE start_ts <= ? AND end_ts >= ?",
                        (end, start)).rowcount
