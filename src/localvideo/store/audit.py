"""Who read the screen history: the audit log, the named API tokens, the lock state.

* ``audit``: one row per read through the REST API, the web UI or the MCP server — which
  client (token name and scope, or MCP session), what (frames, chunks, text, search results,
  answers), when, and how it ended. Append-only from the program's side: nothing here
  updates or deletes a row (deleting a time range of recordings leaves it; it says who
  looked, not what was seen).
* ``api_tokens``: extra named tokens with a scope; only a SHA-256 of each token is kept, so
  the index never holds a usable secret.
* the lock and the idle-lock setting live in ``kv`` (``locked``, ``lock_idle_after``,
  ``last_read_ts``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from .db import Conn, Database, delete_kv, put_kv

LOCK_KEY = "locked"                 # {"since": ts, "reason": "...", "by": "cli"} or absent
IDLE_KEY = "lock_idle_after"        # seconds without a read before locking, or absent
LAST_READ_KEY = "last_read_ts"      # the newest read through API/UI/MCP (throttled)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    ts: float                 # unix seconds
    channel: str              # api | ui | mcp
    client: str               # token name ("owner" for the main token) or "mcp:<session>"
    scope: str                # full | read | search | mcp limits
    action: str               # frame | chunk | text | search | answer | observation | ...
    target: str               # the request: path and query, or the tool and its arguments
    status: int               # HTTP status (MCP: 200 ok, 4xx refused / failed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TokenRow:
    name: str
    scope: str
    created: float
    last_used: float | None


def append(db: Conn, *, channel: str, client: str, scope: str, action: str, target: str,
           status: int, ts: float | None = None) -> int:
    cur = db.execute(
        "INSERT INTO audit(ts, channel, client, scope, action, target, status) "
        "VALUES (?,?,?,?,?,?,?)",
        (time.time() if ts is None else ts, channel, client, scope, action, target[:2000],
         status))
    return int(cur.lastrowid or 0)


def entries(db: Conn, *, since: float | None = None, until: float | None = None,
            client: str | None = None, limit: int = 100) -> list[AuditRow]:
    """Newest first."""
    where: list[str] = []
    args: list[float | str] = []
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts <= ?")
        args.append(until)
    if client:
        where.append("client = ?")
        args.append(client)
    sql = ("SELECT id, ts, channel, client, scope, action, target, status FROM audit"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
    rows = db.execute(sql, (*args, limit)).fetchall()
    return [AuditRow(*tuple(r)) for r in rows]


def count(db: Conn) -> int:
    return int(db.execute("SELECT count(*) FROM audit").fetchone()[0])


# -- named tokens ---------------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(db: Database, name: str, scope: str, token: str) -> None:
    db.execute("INSERT INTO api_tokens(name, scope, hash, created) VALUES (?,?,?,?)",
               (name, scope, token_hash(token), time.time()))


def token_by_hash(db: Conn, digest: str) -> TokenRow | None:
    r = db.execute("SELECT name, scope, created, last_used FROM api_tokens WHERE hash = ?",
                   (digest,)).fetchone()
    return TokenRow(*tuple(r)) if r else None


def token_names(db: Conn) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM api_tokens").fetchall()}


def tokens(db: Conn) -> list[TokenRow]:
    rows = db.execute("SELECT name, scope, created, last_used FROM api_tokens "
                      "ORDER BY created").fetchall()
    return [TokenRow(*tuple(r)) for r in rows]


def touch_token(db: Conn, name: str, ts: float) -> None:
    db.execute("UPDATE api_tokens SET last_used = ? WHERE name = ?", (ts, name))


def remove_token(db: Conn, name: str) -> bool:
    return db.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount > 0


# -- lock state (kv) ------------------------------------------------------------------------
def set_lock(db: Conn, value_json: str) -> None:
    put_kv(db, LOCK_KEY, value_json)


def clear_lock(db: Conn) -> None:
    delete_kv(db, LOCK_KEY)
