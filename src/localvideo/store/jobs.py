"""Generation jobs queued through the API, and the hand-offs of suggested tasks (``actions``).

JSON columns come back decoded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from .db import Conn, Database


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    state: str                     # queued | running | done | failed
    progress: Any                  # the last on_progress event
    result: Any                    # what the call returned
    error: dict[str, Any] | None   # {type, message, hint}
    pid: int | None                # the process that owns the queue
    created_ts: float
    started_ts: float | None
    finished_ts: float | None


_JOB = ("id, kind, params, state, progress, result, error, pid, created_ts, started_ts, "
        "finished_ts")


def _job(r: Any) -> Job:
    return Job(r[0], r[1], _loads(r[2]) or {}, r[3], _loads(r[4]), _loads(r[5]), _loads(r[6]),
               r[7], r[8], r[9], r[10])


class QueuedJob(NamedTuple):
    id: int
    pid: int | None


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    ts: float
    observation_id: int
    command: str
    task: str                      # the text handed to the agent
    state: str                     # running | done | failed
    exit_code: int | None
    output_tail: str | None
    finished_ts: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ACTION = "id, ts, observation_id, command, task, state, exit_code, output_tail, finished_ts"


# -- jobs ------------------------------------------------------------------------------------

def add_job(db: Database, kind: str, params: dict[str, Any], pid: int) -> int:
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO jobs(kind, params, state, pid, created_ts) VALUES(?,?,?,?,?)",
            (kind, json.dumps(params), "queued", pid, time.time()))
    return int(cur.lastrowid or 0)


def queued_jobs(db: Conn) -> list[QueuedJob]:
    return [QueuedJob(*r) for r in db.execute(
        "SELECT id, pid FROM jobs WHERE state = 'queued' ORDER BY id").fetchall()]


def claim_job(db: Database, job_id: int, old_pid: int | None, new_pid: int) -> bool:
    """Take over a queued job unless another process claimed it first (same old pid)."""
    with db.tx() as conn:
        cur = conn.execute(
            "UPDATE jobs SET pid = ? WHERE id = ? AND state = 'queued' AND pid IS ?",
            (new_pid, job_id, old_pid))
    return cur.rowcount == 1


def get_job(db: Conn, job_id: int) -> Job | None:
    row = db.execute(f"SELECT {_JOB} FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    return _job(row) if row is not None else None


def list_jobs(db: Conn, limit: int = 50) -> list[Job]:
    """The newest ``limit`` jobs, newest first."""
    rows = db.execute(f"SELECT {_JOB} FROM jobs ORDER BY id DESC LIMIT ?",
                      (int(limit),)).fetchall()
    return [_job(r) for r in rows]


def start_job(db: Conn, job_id: int) -> None:
    db.execute("UPDATE jobs SET state='running', started_ts=? WHERE id=?", (time.time(), job_id))


def set_job_progress(db: Conn, job_id: int, event: dict[str, Any]) -> None:
    db.execute("UPDATE jobs SET progress=? WHERE id=?", (json.dumps(event, default=str), job_id))


def finish_job(db: Conn, job_id: int, state: str, *, result: Any = None,
               error: dict[str, Any] | None = None) -> None:
    db.execute(
        "UPDATE jobs SET state=?, result=?, error=?, finished_ts=? WHERE id=?",
        (state, json.dumps(result, default=str) if result is not None else None,
         json.dumps(error) if error else None, time.time(), job_id))


# -- actions ---------------------------------------------------------------------------------

def add_action(db: Database, observation_id: int, command: str, task: str) -> int:
    """Log a hand-off as it starts (state 'running')."""
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO actions(ts, observation_id, command, task, state) "
            "VALUES(?,?,?,?, 'running')", (time.time(), int(observation_id), command, task))
    return int(cur.lastrowid or 0)


def finish_action(db: Conn, action_id: int, *, state: str, exit_code: int | None,
                  output_tail: str) -> None:
    db.execute(
        "UPDATE actions SET state=?, exit_code=?, output_tail=?, finished_ts=? WHERE id=?",
        (state, exit_code, output_tail, time.time(), action_id))


def set_action_state(db: Conn, action_id: int, state: str, output_tail: str) -> None:
    db.execute("UPDATE actions SET state=?, output_tail=? WHERE id=?",
               (state, output_tail, action_id))


def get_action(db: Conn, action_id: int) -> Action | None:
    row = db.execute(f"SELECT {_ACTION} FROM actions WHERE id = ?",
                     (int(action_id),)).fetchone()
    return Action(*row) if row is not None else None


def list_actions(db: Conn, limit: int = 50) -> list[Action]:
    """The newest ``limit`` hand-offs, newest first."""
    rows = db.execute(f"SELECT {_ACTION} FROM actions ORDER BY id DESC LIMIT ?",
                      (int(limit),)).fetchall()
    return [Action(*r) for r in rows]
