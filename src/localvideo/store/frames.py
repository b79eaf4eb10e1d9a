"""Chunks and frames: what the recorder writes, and what playback, status and deletion read.

Functions take a :data:`~localvideo.store.db.Conn`: the Database for a statement of its own,
or the connection of a caller's ``with db.tx() as conn`` when several writes must commit
together (the recorder's flush, deleting a time range).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .db import Conn, Database


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    path: str                 # relative to the data dir
    device_id: str
    start_ts: float
    end_ts: float | None
    codec: str | None         # h264 | hevc
    encoder: str | None
    width: int | None
    height: int | None
    frames: int
    bytes: int
    state: str                # recording | closed | recovered | damaged


_CHUNK = "id, path, device_id, start_ts, end_ts, codec, encoder, width, height, frames, bytes, state"


@dataclass(frozen=True, slots=True)
class Frame:
    id: int
    chunk_id: int | None      # None: the window was excluded, no picture was stored
    ts: float
    pts: float | None
    app: str | None
    title: str | None
    x: int | None
    y: int | None
    w: int | None
    h: int | None
    display: str | None
    changed: int
    excluded: int
    chunk_path: str | None


class AppTitles(NamedTuple):
    """How many frames of one chunk showed one app + title."""

    chunk_id: int
    app: str | None
    title: str | None
    frames: int


class ChunkTotals(NamedTuple):
    chunks: int
    bytes: int
    frames: int               # encoded frames
    first_ts: float | None
    last_ts: float | None


# The recorder's frame row, in the column order of FRAME_COLUMNS; the last one, the screen
# state (None | "blank" | "locked", see schema 0110_frame_state), may be left off.
FrameInsert = (tuple[int | None, float, float | None, str | None, str | None, int | None,
                     int | None, int | None, int | None, str | None, int, int]
               | tuple[int | None, float, float | None, str | None, str | None, int | None,
                       int | None, int | None, int | None, str | None, int, int, str | None])
FRAME_COLUMNS = ("chunk_id", "ts", "pts", "app", "title", "x", "y", "w", "h", "display",
                 "changed", "excluded", "state")
# What the index says instead of a picture (frames.state) and the title its rows carry, so
# the timeline shows the span as such.
SCREEN_TITLES = {"blank": "[screen blank]", "locked": "[screen locked]"}
_INSERT_FRAMES = (f"INSERT INTO frames({', '.join(FRAME_COLUMNS)}) "
                  f"VALUES ({','.join('?' * len(FRAME_COLUMNS))})")


# -- recorder writes -------------------------------------------------------------------------

def chunk_path_taken(db: Conn, path: str) -> bool:
    return db.execute("SELECT 1 FROM chunks WHERE path = ?", (path,)).fetchone() is not None


def open_chunk(db: Database, *, path: str, device_id: str, start_ts: float, codec: str,
               encoder: str, width: int, height: int) -> int:
    """Index a new chunk file being recorded; returns its id."""
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO chunks(path, device_id, start_ts, end_ts, codec, encoder, width, "
            "height, frames, bytes, state) VALUES (?,?,?,?,?,?,?,?,0,0,'recording')",
            (path, device_id, start_ts, start_ts, codec, encoder, width, height))
    assert cur.lastrowid is not None
    return cur.lastrowid


def close_chunk(db: Database, chunk_id: int, *, state: str, end_ts: float, frames: int,
                size: int) -> None:
    with db.tx() as conn:
        conn.execute("UPDATE chunks SET state = ?, end_ts = ?, frames = ?, bytes = ? "
                     "WHERE id = ?", (state, end_ts, frames, size, chunk_id))


def drop_chunk(db: Database, chunk_id: int) -> None:
    """Forget a chunk that holds no picture; the frames seen meanwhile stay, pointing nowhere."""
    with db.tx() as conn:
        conn.execute("UPDATE frames SET chunk_id = NULL, pts = NULL WHERE chunk_id = ?",
                     (chunk_id,))
        conn.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))


def insert_frames(conn: sqlite3.Connection, rows: Iterable[FrameInsert]) -> None:
    n = len(FRAME_COLUMNS)
    conn.executemany(_INSERT_FRAMES, (r if len(r) == n else (*r, None) for r in rows))



def update_chunk_progress(conn: Conn, chunk_id: int, *, end_ts: float, frames: int,
                          size: int) -> None:
    conn.execute("UPDATE chunks SET end_ts = ?, frames = ?, bytes = ? WHERE id = ?",
                 (end_ts, frames, size, chunk_id))


# -- chunks ----------------------------------------------------------------------------------

def get_chunk(db: Conn, chunk_id: int) -> Chunk | None:
    row = db.execute(f"SELECT {_CHUNK} FROM chunks WHERE id = ?", (int(chunk_id),)).fetchone()
    return Chunk(*row) if row is not None else None


def list_chunks(db: Conn, since: float | None = None, until: float | None = None,
                limit: int | None = None) -> list[Chunk]:
    """Chunks overlapping [since, until], oldest first; ``limit`` keeps the newest."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("coalesce(end_ts, start_ts) >= ?")
        params.append(since)
    if until is not None:
        where.append("start_ts <= ?")
        params.append(until)
    sql = f"SELECT {_CHUNK} FROM chunks" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY start_ts DESC, id DESC LIMIT ?"
    params.append(int(limit) if limit is not None else -1)
    return [Chunk(*r) for r in reversed(db.execute(sql, params).fetchall())]


def chunks_overlapping(db: Conn, start: float, end: float) -> list[Chunk]:
    rows = db.execute(f"SELECT {_CHUNK} FROM chunks WHERE start_ts <= ? "
                      "AND coalesce(end_ts, start_ts) >= ?", (end, start)).fetchall()
    return [Chunk(*r) for r in rows]


def apps_per_chunk(db: Conn, chunk_ids: Sequence[int]) -> list[AppTitles]:
    """Frame counts per (chunk, app, title), in the order each pair was first seen."""
    if not chunk_ids:
        return []
    marks = ",".join("?" * len(chunk_ids))
    rows = db.execute(
        f"SELECT chunk_id, app, title, count(*) FROM frames WHERE chunk_id IN ({marks}) "
        "GROUP BY chunk_id, app, title ORDER BY min(ts)", list(chunk_ids)).fetchall()
    return [AppTitles(*r) for r in rows]


def chunk_totals(db: Conn) -> ChunkTotals:
    row = db.execute("SELECT count(*), coalesce(sum(bytes), 0), coalesce(sum(frames), 0), "
                     "min(start_ts), max(end_ts) FROM chunks").fetchone()
    return ChunkTotals(*row)


def main_chunk_path(db: Conn, start: float, end: float) -> str | None:
    """The chunk that holds most frames seen in [start, end)."""
    row = db.execute("SELECT c.path FROM frames f JOIN chunks c ON c.id = f.chunk_id "
                     "WHERE f.ts >= ? AND f.ts < ? GROUP BY c.id ORDER BY COUNT(*) DESC LIMIT 1",
                     (start, end)).fetchone()
    return row[0] if row is not None else None


# -- frames ----------------------------------------------------------------------------------

def frame_at(db: Conn, ts: float) -> Frame | None:
    """The indexed frame nearest at-or-before ``ts``."""
    row = db.execute(
        "SELECT f.id, f.chunk_id, f.ts, f.pts, f.app, f.title, f.x, f.y, f.w, f.h, f.display, "
        "f.changed, f.excluded, c.path FROM frames f LEFT JOIN chunks c ON c.id = f.chunk_id "
        "WHERE f.ts <= ? ORDER BY f.ts DESC, f.id DESC LIMIT 1", (float(ts),)).fetchone()
    return Frame(*row) if row is not None else None


def frame_count(db: Conn) -> int:
    return int(db.execute("SELECT count(*) FROM frames").fetchone()[0])


def first_frame_ts(db: Conn) -> float | None:
    value: float | None = db.execute("SELECT min(ts) FROM frames").fetchone()[0]
    return value


def last_frame_ts(db: Conn, chunk_id: int | None = None,
                  max_pts: float | None = None) -> float | None:
    """The newest frame seen, or the newest of one chunk up to ``max_pts`` into it."""
    if chunk_id is None:
        row = db.execute("SELECT MAX(ts) FROM frames").fetchone()
    else:
        row = db.execute("SELECT MAX(ts) FROM frames WHERE chunk_id = ? AND pts <= ?",
                         (chunk_id, max_pts)).fetchone()
    value: float | None = row[0]
    return value


def first_readable_ts(db: Conn, since: float, until: float) -> float | None:
    """The first frame in [since, until] whose window was not excluded."""
    row = db.execute("SELECT MIN(ts) FROM frames WHERE excluded = 0 AND ts >= ? AND ts <= ?",
                     (since, until)).fetchone()
    value: float | None = row[0]
    return value


def delete_unchunked_frames(conn: Conn, start: float, end: float) -> int:
    """Drop frames seen in [start, end] that belong to no chunk (an excluded window)."""
    return conn.execute("DELETE FROM frames WHERE chunk_id IS NULL AND ts BETWEEN ? AND ?",
                        (start, end)).rowcount


class TitleRow(NamedTuple):
    id: int
    app: str | None
    title: str | None
    excluded: int


# (ts, app, title, excluded): a plain tuple, unpacked by the caller; a day is ~170k rows and
# a NamedTuple per row made the timeline 25% slower than sqlite3.Row (bench in the commit).
WindowRow = tuple[float, str | None, str | None, int]


class EncodedFrame(NamedTuple):
    """A frame row with a picture in its chunk (``pts``), as the analysis loop reads it."""

    id: int
    ts: float
    pts: float
    app: str | None
    title: str | None
    x: int | None
    y: int | None
    w: int | None
    h: int | None
    excluded: int


def frames_after(db: Conn, after_id: int, limit: int) -> list[TitleRow]:
    """The next ``limit`` frames by id after ``after_id`` (a cursor over the whole index)."""
    rows = db.execute("SELECT id, app, title, excluded FROM frames WHERE id > ? "
                      "ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
    return [TitleRow(*r) for r in rows]


def window_rows(db: Conn, since: float | None = None,
                until: float | None = None) -> Iterator[WindowRow]:
    """Every frame's window in [since, until), in time order, streamed (a day is ~170k rows)."""
    sql = "SELECT ts, app, title, excluded FROM frames WHERE 1=1"
    params: list[Any] = []
    if since is not None:
        sql += " AND ts >= ?"
        params.append(since)
    if until is not None:
        sql += " AND ts < ?"
        params.append(until)
    cur = (db.conn if isinstance(db, Database) else db).cursor()
    cur.row_factory = None   # plain tuples: no Row object per frame
    return cur.execute(sql + " ORDER BY ts", params)


def encoded_frames(db: Conn, chunk_id: int, after_pts: float | None) -> list[EncodedFrame]:
    """The frames of a chunk with a picture after ``after_pts`` (all when None), by time."""
    rows = db.execute(
        "SELECT id, ts, pts, app, title, x, y, w, h, excluded FROM frames "
        "WHERE chunk_id = ? AND pts IS NOT NULL AND pts > ? ORDER BY ts, id",
        (chunk_id, -1.0 if after_pts is None else after_pts)).fetchall()
    return [EncodedFrame(*r) for r in rows]


def encoded_after(db: Conn, chunk_id: int, pts: float) -> bool:
    """Whether the index has a frame of this chunk encoded after ``pts``."""
    return db.execute("SELECT 1 FROM frames WHERE chunk_id = ? AND pts > ? LIMIT 1",
                      (chunk_id, pts)).fetchone() is not None


def window_changed_after(db: Conn, chunk_id: int, ts: float, app: str, title: str) -> bool:
    """Whether a frame of this chunk after ``ts`` shows another window (or an excluded one)."""
    return db.execute(
        "SELECT 1 FROM frames WHERE chunk_id = ? AND ts > ? AND (excluded = 1 OR "
        "COALESCE(app, '') != ? OR COALESCE(title, '') != ?) LIMIT 1",
        (chunk_id, ts, app, title)).fetchone() is not None
