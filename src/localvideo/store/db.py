"""SQLite index: WAL mode, named append-only migrations, one connection per thread.

WAL lets the recorder write while the analyser, the API and the CLI read; a crash leaves
the database consistent (SQLite's own guarantee), so recovery only has to reconcile chunk
files with rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import crypto
from ..errors import DiskFullError, StoreError, UsageError
from . import cipher, layout
from .schema import MIGRATIONS

log = logging.getLogger("localvideo.store")


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        # Every process that writes the store opens it here first: owner-only from now on.
        layout.open_root(path.parent)
        self.migrate()
        self._make_private_once()

    # -- connections ---------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Encryption at rest: SQLCipher with the store's key (asked for, or a
            # LockedError, when this process has not unlocked it yet); else plain SQLite.
            key = crypto.index_key(self.path)
            try:
                if key is not None:
                    conn = cipher.connect(self.path, key)
                else:
                    conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                           check_same_thread=False)
                    conn.row_factory = sqlite3.Row
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open index {self.path}: {exc}") from exc
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a full disk becomes DiskFullError and nothing is half-written."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, cipher.operational_errors()) and "full" in str(exc).lower():
                raise DiskFullError(f"disk full while writing the index: {exc}",
                                    "free some space; recording resumes by itself") from exc
            raise

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except OverflowError as exc:
            raise _too_large(exc) from None

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.execute(sql, params).fetchall()

    def one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.execute(sql, params).fetchone()

    # -- migrations ----------------------------------------------------------------------
    def migrate(self) -> list[str]:
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL)")
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                # executescript would COMMIT implicitly; run statements one by one instead.
                for stmt in _split_sql(sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                conn.execute("COMMIT")
            except cipher.errors() as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"migration {name} failed on {self.path}: {exc}") from exc
            applied.append(name)
        return applied

    def _make_private_once(self) -> None:
        """Repair a store an older version made with the default umask (0755 / 0644): one
        walk, remembered in the index so later starts cost one lookup."""
        if self.get_kv(layout.PRIVATE_KEY) == layout.PRIVATE_VERSION:
            return
        changed = layout.make_private(self.path.parent)
        if changed:
            log.warning("made %d entries under %s owner-only (an older version left them "
                        "readable by other accounts)", changed, self.path.parent)
        self.set_kv(layout.PRIVATE_KEY, layout.PRIVATE_VERSION)

    # -- small key/value state (paused flag, recorder heartbeat, ...) ---------------------
    def get_kv(self, key: str, default: Any = None) -> Any:
        row = self.one("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(row[0]) if row else default

    def set_kv(self, key: str, value: Any) -> None:
        self.execute("INSERT INTO kv(key, value) VALUES(?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, json.dumps(value)))


# What the query modules run statements on: the thread's connection through the Database, or
# the connection a caller's ``with db.tx() as conn`` holds, so several writes share one commit.
Conn = Database | sqlite3.Connection


def put_kv(conn: Conn, key: str, value_json: str) -> None:
    """Set ``key`` to an already-encoded JSON value (inside a caller's transaction)."""
    conn.execute("INSERT INTO kv(key, value) VALUES(?, json(?)) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value_json))


def delete_kv(conn: Conn, key: str) -> None:
    conn.execute("DELETE FROM kv WHERE key = ?", (key,))


def _too_large(exc: OverflowError) -> UsageError:
    # An id or count past SQLite's 64-bit integers (40 digits in a URL or an argument) names
    # nothing that exists: the caller's mistake, not a broken index.
    return UsageError(f"a number is too large for the index ({exc})",
                      f"ids and counts go up to {2**63 - 1}")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping CREATE TRIGGER bodies whole."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        code = line.split("--", 1)[0]
        buf += line
        if code.rstrip().endswith(";") and sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return [s for s in out if s.strip(" ;\n")]


def open_db(data_dir: Path) -> Database:
    return Database(Path(data_dir) / "index.sqlite3")
