"""Screen text and search: the text read from key frames, its FTS5 index, and where the
analysis stands in each chunk (``analysis_progress``), so a restart neither repeats nor skips.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import StoreError
from . import cipher
from .db import Conn

SEARCH_FAILED_HINT = "run `localvideo analyze` again; it rebuilds missing text"


class AnalysisCounts(NamedTuple):
    chunks: int
    chunks_done: int
    frames_read: int              # key frames with text
    ocr_ms_avg: float | None


@dataclass(frozen=True, slots=True)
class PendingChunk:
    """A chunk not analysed to the end, with the sampler state saved at its last key frame."""

    id: int
    path: str
    state: str
    start_ts: float
    last_pts: float | None
    key_ts: float | None
    key_app: str | None
    key_title: str | None
    key_thumb: bytes | None


@dataclass(frozen=True, slots=True)
class DoneChunkKey:
    """The last key frame of an analysed chunk (carried into the chunk that follows it)."""

    end_ts: float | None
    key_ts: float | None
    key_app: str | None
    key_title: str | None
    key_thumb: bytes | None


@dataclass(frozen=True, slots=True)
class KeyFrame:
    """A key frame with its text, where it is and how it was chosen."""

    id: int
    ts: float
    pts: float | None
    app: str | None
    title: str | None
    x: int | None
    y: int | None
    w: int | None
    h: int | None
    chunk_id: int | None
    path: str | None              # its chunk file, relative to the data dir
    text: str
    words: str                    # JSON [{t, x, y, w, h, c}] in window px
    reason: str | None


class FrameText(NamedTuple):
    id: int
    ts: float
    app: str | None
    title: str | None
    text: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    frame_id: int
    ts: float
    app: str | None
    title: str | None
    pts: float | None
    chunk_id: int | None
    chunk_path: str | None
    chunk_start_ts: float | None
    snippet: str | None


# -- writing (inside the caller's transaction: text, index and progress commit together) ----

def save_text(conn: Conn, frame_id: int, *, text: str, words_json: str, ocr_ms: float,
              reason: str) -> None:
    conn.execute("INSERT OR REPLACE INTO frame_text(frame_id, text, words, ocr_ms, reason) "
                 "VALUES (?, ?, ?, ?, ?)", (frame_id, text, words_json, ocr_ms, reason))


def index_text(conn: Conn, frame_id: int, text: str, app: str, title: str) -> None:
    """(Re)place the FTS row of one frame; rowid is the frame id."""
    conn.execute("DELETE FROM frame_fts WHERE rowid = ?", (frame_id,))
    conn.execute("INSERT INTO frame_fts(rowid, text, app, title) VALUES (?, ?, ?, ?)",
                 (frame_id, text, app or "", title or ""))


def is_indexed(conn: Conn, frame_id: int) -> bool:
    return conn.execute("SELECT 1 FROM frame_fts WHERE rowid = ?",
                        (frame_id,)).fetchone() is not None


def save_progress(conn: Conn, chunk_id: int, last_pts: float | None, *, done: bool,
                  frames: int, keyframes: int, key_ts: float | None, key_app: str | None,
                  key_title: str | None, key_thumb: bytes | None) -> None:
    """Where the analysis stands in a chunk; ``frames`` and ``keyframes`` are added."""
    conn.execute(
        "INSERT INTO analysis_progress(chunk_id, last_pts, done, frames, keyframes, key_ts, "
        "key_app, key_title, key_thumb, updated_ts) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(chunk_id) DO UPDATE SET last_pts = excluded.last_pts, "
        "done = excluded.done, frames = frames + excluded.frames, "
        "keyframes = keyframes + excluded.keyframes, key_ts = excluded.key_ts, "
        "key_app = excluded.key_app, key_title = excluded.key_title, "
        "key_thumb = excluded.key_thumb, updated_ts = excluded.updated_ts",
        (chunk_id, last_pts, int(done), frames, keyframes, key_ts, key_app, key_title,
         key_thumb, time.time()))


# -- analysis progress -----------------------------------------------------------------------

_PENDING = ("SELECT c.id, c.path, c.state, c.start_ts, p.last_pts, p.key_ts, p.key_app, "
            "p.key_title, p.key_thumb FROM chunks c LEFT JOIN analysis_progress p "
            "ON p.chunk_id = c.id WHERE p.done IS NULL OR p.done = 0 ORDER BY c.start_ts, c.id")


def pending_chunks(db: Conn) -> list[PendingChunk]:
    """Chunks not analysed to the end yet, oldest first (a recording one included)."""
    return [PendingChunk(*r) for r in db.execute(_PENDING).fetchall()]


def first_pending_chunk(db: Conn) -> PendingChunk | None:
    row = db.execute(_PENDING + " LIMIT 1").fetchone()
    return PendingChunk(*row) if row is not None else None


def previous_done_chunk(db: Conn, chunk_id: int, start_ts: float) -> DoneChunkKey | None:
    """The analysed chunk that started last at or before ``start_ts`` (not ``chunk_id``)."""
    row = db.execute(
        "SELECT c.end_ts, p.key_ts, p.key_app, p.key_title, p.key_thumb FROM chunks c "
        "JOIN analysis_progress p ON p.chunk_id = c.id WHERE p.done = 1 AND c.id != ? "
        "AND c.start_ts <= ? ORDER BY c.start_ts DESC, c.id DESC LIMIT 1",
        (chunk_id, start_ts)).fetchone()
    return DoneChunkKey(*row) if row is not None else None


def analysis_counts(db: Conn) -> AnalysisCounts:
    chunks, done = db.execute(
        "SELECT COUNT(*), SUM(CASE WHEN p.done = 1 THEN 1 ELSE 0 END) "
        "FROM chunks c LEFT JOIN analysis_progress p ON p.chunk_id = c.id").fetchone()
    read, ms = db.execute("SELECT COUNT(*), AVG(ocr_ms) FROM frame_text").fetchone()
    return AnalysisCounts(chunks or 0, done or 0, read or 0, ms)


# -- reading text ----------------------------------------------------------------------------

def keyframes_in(db: Conn, start: float, end: float) -> list[KeyFrame]:
    """Key frames of readable windows seen in [start, end), in time order."""
    rows = db.execute(
        "SELECT f.id, f.ts, f.pts, f.app, f.title, f.x, f.y, f.w, f.h, f.chunk_id, c.path, "
        "t.text, t.words, t.reason FROM frame_text t JOIN frames f ON f.id = t.frame_id "
        "LEFT JOIN chunks c ON c.id = f.chunk_id "
        "WHERE f.ts >= ? AND f.ts < ? AND f.excluded = 0 ORDER BY f.ts", (start, end)).fetchall()
    return [KeyFrame(*r) for r in rows]


def frames_with_text(db: Conn, start: float, end: float) -> list[int]:
    """Ids of readable key frames with some text in [start, end], in time order."""
    return [r[0] for r in db.execute(
        "SELECT f.id FROM frames f JOIN frame_text t ON t.frame_id = f.id "
        "WHERE f.ts >= ? AND f.ts <= ? AND f.excluded = 0 AND t.text != '' ORDER BY f.ts",
        (start, end)).fetchall()]


def frame_texts(db: Conn, frame_ids: Sequence[int]) -> list[FrameText]:
    """These frames with their text ('' when never read), in time order."""
    if not frame_ids:
        return []
    marks = ",".join("?" * len(frame_ids))
    rows = db.execute(
        "SELECT f.id, f.ts, f.app, f.title, COALESCE(t.text, '') FROM frames f "
        f"LEFT JOIN frame_text t ON t.frame_id = f.id WHERE f.id IN ({marks}) ORDER BY f.ts",
        list(frame_ids)).fetchall()
    return [FrameText(*r) for r in rows]


def search(db: Conn, match: str, *, app: str | None = None, since: float | None = None,
           until: float | None = None, limit: int = 50) -> list[SearchHit]:
    """Frames whose text, app or title match the FTS5 expression ``match``, newest first."""
    sql = ["SELECT f.id, f.ts, f.app, f.title, f.pts, f.chunk_id, c.path, c.start_ts,",
           "snippet(frame_fts, -1, '[', ']', '…', 12)",
           "FROM frame_fts JOIN frames f ON f.id = frame_fts.rowid",
           "LEFT JOIN chunks c ON c.id = f.chunk_id",
           "WHERE frame_fts MATCH ?"]
    params: list[Any] = [match]
    if app:
        sql.append("AND f.app LIKE ?")
        params.append(f"%{app}%")
    # Bounds on the FTS rowid (= frame id) let FTS5 skip what is out of range instead of
    # reading every match; they hold however ids and times interleave (min/max over the range).
    if since is not None:
        sql.append("AND f.ts >= ? AND frame_fts.rowid >= "
                   "(SELECT COALESCE(MIN(id), 0) FROM frames WHERE ts >= ?)")
        params += [since, since]
    if until is not None:
        sql.append("AND f.ts <= ? AND frame_fts.rowid <= "
                   "(SELECT COALESCE(MAX(id), 0) FROM frames WHERE ts <= ?)")
        params += [until, until]
    # Newest first, in FTS5's own rowid order: a common word matching most of the index
    # costs the same as a rare one (bm25 over every match took >100 ms at 100k frames).
    sql.append("ORDER BY frame_fts.rowid DESC LIMIT ?")
    params.append(limit)
    try:
        rows = db.execute(" ".join(sql), params).fetchall()
    except cipher.operational_errors() as exc:
        # The caller's expression is valid syntax; this is a damaged index, not user input.
        raise StoreError(f"search failed: {exc}", SEARCH_FAILED_HINT) from exc
    return [SearchHit(*r) for r in rows]
