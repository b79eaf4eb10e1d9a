"""Embedding vectors in the index file and the hybrid ranking of search hits (sqlite-vec).

Layout (migrations ``0310_vectors``, ``0311_vector_codes``): ``vec_models`` (which model made
the vectors, one active), ``vec_items`` (one int8 vector per distinct text block per model),
``vec_codes`` (its 1-bit code, in a narrow table) and ``vec_frames`` (which key frame shows
which block). A query ranks the bit codes by sqlite-vec's ``vec_distance_hamming`` (the only
full scan, 32 bytes a block at 256 dimensions) and reranks the nearest by
``vec_distance_cosine`` on the int8 vectors, in one statement; a time span narrow enough is
scored exactly instead. Measured at 125k blocks (1M frames) this took ~30 ms, where a
``vec0`` bit[256] table's kNN took 110 ms for k = 256 and 750 ms for k = 2048 (sqlite-vec
0.1.9), so there is no vec0 table.

Deleting frames needs no extension: cascades and a trigger drop the links and the blocks no
frame shows any more, in the deleting transaction (retention, ``delete --since --until``).

Python's ``sqlite3`` is often built without ``enable_load_extension`` (pyenv's and several
distributions' defaults); :func:`load_extension` then loads sqlite-vec through the SQLite
library that ``_sqlite3`` itself is linked with, after checking the handle is this connection's.
"""

from __future__ import annotations

import ctypes
import hashlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DependencyError, StoreError
from . import cipher
from .db import Conn, Database

COARSE_K = 256         # bit-code candidates reranked by cosine per query (more: surer, slower)
EXACT_MAX = 8000       # a time span holding at most this many blocks is scored exactly
RRF_K = 60             # reciprocal-rank fusion constant (Cormack et al. 2009)
KEYWORD_POOL = 400     # newest FTS matches ranked by BM25 for the fusion

LOAD_HINT = ("use a Python whose sqlite3 can load extensions, or reinstall the package: "
             "`pip install --force-reinstall sqlite-vec`")


@dataclass(frozen=True, slots=True)
class VecModel:
    id: int
    name: str
    dim: int
    active: bool

    @property
    def legacy_table(self) -> str:
        """The vec0 table a store written before 0311_vector_codes may still hold."""
        return f"vec_m{self.id}"


@dataclass(frozen=True, slots=True)
class Block:
    """One text block of a key frame to store: its index (-1: window title) and vector."""

    index: int
    text: str
    vector: np.ndarray        # float32, L2-normalised


@dataclass(frozen=True, slots=True)
class Ranked:
    """A frame found by meaning: its best block's cosine similarity and that block's index."""

    frame_id: int
    score: float
    block: int


@dataclass(frozen=True, slots=True)
class HitRow:
    frame_id: int
    ts: float
    app: str | None
    title: str | None
    pts: float | None
    chunk_id: int | None
    chunk_path: str | None
    chunk_start_ts: float | None
    text: str


# -- the extension ---------------------------------------------------------------------------

def _raw(conn: Conn) -> sqlite3.Connection:
    return conn.conn if isinstance(conn, Database) else conn


def has_vec(conn: Conn) -> bool:
    try:
        _raw(conn).execute("SELECT vec_version()").fetchone()
        return True
    except cipher.operational_errors():
        return False


def load_extension(conn: Conn) -> None:
    """Make sqlite-vec's functions and ``vec0`` available on this connection (idempotent)."""
    raw = _raw(conn)
    if has_vec(raw):
        return
    try:
        import sqlite_vec
    except ImportError as exc:
        raise DependencyError("sqlite-vec is not installed",
                              "pip install sqlite-vec (a dependency of localvideo)") from exc
    path = sqlite_vec.loadable_path()
    if hasattr(raw, "enable_load_extension"):
        try:
            raw.enable_load_extension(True)
            raw.load_extension(path)
        except cipher.errors() as exc:
            raise DependencyError(f"cannot load sqlite-vec from {path}: {exc}", LOAD_HINT) from exc
        finally:
            raw.enable_load_extension(False)
    else:
        _load_through_library(raw, path)
    if not has_vec(raw):
        raise DependencyError(f"sqlite-vec loaded from {path} but vec_version() is missing",
                              LOAD_HINT)


def _load_through_library(raw: sqlite3.Connection, path: str) -> None:
    import _sqlite3

    try:
        lib = ctypes.CDLL(_sqlite3.__file__)
        fname = lib.sqlite3_db_filename
        enable = lib.sqlite3_enable_load_extension
        load = lib.sqlite3_load_extension
        changes = lib.sqlite3_total_changes
    except (OSError, AttributeError) as exc:
        raise DependencyError("this Python's sqlite3 cannot load extensions (sqlite-vec)",
                              LOAD_HINT) from exc
    fname.restype, fname.argtypes = ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_char_p]
    changes.restype, changes.argtypes = ctypes.c_int, [ctypes.c_void_p]
    enable.argtypes = [ctypes.c_void_p, ctypes.c_int]
    load.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                     ctypes.POINTER(ctypes.c_char_p)]
    # CPython's connection object keeps its sqlite3* right after the object header (3.8–3.13);
    # check it really is this connection (same file, same change count) before using it.
    handle = ctypes.c_void_p.from_address(id(raw) + object.__basicsize__).value
    main = raw.execute("PRAGMA database_list").fetchone()
    want = (main[2] or "").encode() if main is not None else b""
    if not handle or (fname(handle, b"main") or b"") != want \
            or changes(handle) != raw.total_changes:
        raise DependencyError("this Python's sqlite3 cannot load extensions (sqlite-vec)",
                              LOAD_HINT)
    err = ctypes.c_char_p()
    enable(handle, 1)
    try:
        rc = load(handle, path.encode(), None, ctypes.byref(err))
    finally:
        enable(handle, 0)
    if rc != 0:
        raise DependencyError(f"cannot load sqlite-vec from {path}: "
                              f"{(err.value or b'').decode(errors='replace')}", LOAD_HINT)


# -- models ----------------------------------------------------------------------------------

def _model(row: Any) -> VecModel:
    return VecModel(int(row[0]), str(row[1]), int(row[2]), bool(row[3]))


def models(db: Conn) -> list[VecModel]:
    return [_model(r) for r in db.execute(
        "SELECT id, name, dim, active FROM vec_models ORDER BY id").fetchall()]


def active_model(db: Conn) -> VecModel | None:
    row = db.execute("SELECT id, name, dim, active FROM vec_models WHERE active = 1 "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    return _model(row) if row is not None else None


def ensure_model(db: Database, name: str, dim: int, *, activate: bool) -> VecModel:
    """The model's row, created if new; ``activate`` makes it the one searched."""
    if dim <= 0 or dim % 8:
        raise StoreError(f"embedding width {dim} of {name} is not a positive multiple of 8")
    with db.tx() as conn:
        row = conn.execute("SELECT id, name, dim, active FROM vec_models WHERE name = ?",
                           (name,)).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO vec_models(name, dim, created_ts, active) "
                               "VALUES (?, ?, ?, 0)", (name, dim, time.time()))
            row = (cur.lastrowid, name, dim, 0)
        model = _model(row)
        if model.dim != dim:
            raise StoreError(f"the stored vectors of {name} are {model.dim}-d, the model "
                             f"makes {dim}-d", "re-embed with `localvideo analyze --reindex`")
        # Blocks stored before 0311_vector_codes have no bit code: the int8 signs are it.
        for item, vec in conn.execute(
                "SELECT id, vector FROM vec_items i WHERE model_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM vec_codes c WHERE c.item_id = i.id)", (model.id,)).fetchall():
            conn.execute("INSERT INTO vec_codes(item_id, model_id, bits) VALUES (?, ?, ?)",
                         (item, model.id,
                          np.packbits(np.frombuffer(vec, dtype=np.int8) > 0).tobytes()))
        if activate:
            conn.execute("UPDATE vec_models SET active = (id = ?)", (model.id,))
    return VecModel(model.id, model.name, model.dim, activate or model.active)


def drop_model(db: Database, model: VecModel) -> int:
    """Delete a model's vectors; returns the blocks dropped."""
    with db.tx() as conn:
        n = conn.execute("SELECT COUNT(*) FROM vec_items WHERE model_id = ?",
                         (model.id,)).fetchone()[0]
        conn.execute("DELETE FROM vec_frames WHERE item_id IN "
                     "(SELECT id FROM vec_items WHERE model_id = ?)", (model.id,))
        conn.execute("DELETE FROM vec_done WHERE model_id = ?", (model.id,))
        conn.execute("DELETE FROM vec_models WHERE id = ?", (model.id,))
        conn.execute("DELETE FROM kv WHERE key = ?", (_mark_key(model),))
        legacy = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                              (model.legacy_table,)).fetchone()
        if legacy is not None:
            load_extension(conn)
            conn.execute(f"DROP TABLE {model.legacy_table}")
    return int(n)


# -- writing ---------------------------------------------------------------------------------

def text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big",
                          signed=True)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float vectors → (int8 rows scaled to ±127 per row, packed sign bits)."""
    v = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(v).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(v / scale * 127.0), -127, 127).astype(np.int8)
    return q, np.packbits(v > 0, axis=1)


def pending_frames(db: Conn, model: VecModel, limit: int,
                   after: int = 0) -> list[tuple[int, str, str, str]]:
    """Key frames with text not embedded by ``model`` (id, text, app, title), oldest id first.

    Excluded windows are never read, so they have no text row to find here.
    """
    return [(int(r[0]), r[1] or "", r[2] or "", r[3] or "") for r in db.execute(
        "SELECT t.frame_id, t.text, f.app, f.title FROM frame_text t "
        "JOIN frames f ON f.id = t.frame_id LEFT JOIN vec_done d ON d.frame_id = t.frame_id "
        "WHERE t.frame_id > ? AND f.excluded = 0 AND (d.frame_id IS NULL OR d.model_id != ?) "
        "ORDER BY t.frame_id LIMIT ?", (after, model.id, limit)).fetchall()]


def _mark_key(model: VecModel) -> str:
    return f"embed.through.{model.id}"


def embedded_through(db: Database, model: VecModel) -> int:
    """The frame id up to which every key frame's text is embedded by ``model``."""
    return int(db.get_kv(_mark_key(model), 0))


def mark_embedded_through(db: Database, model: VecModel) -> None:
    """Everything read so far is embedded (call when :func:`pending_frames` found nothing).

    Only the analysis (which holds its lock) writes text, so nothing lower can appear
    behind the mark; a frame whose text is read again keeps its vectors.
    """
    last = db.one("SELECT MAX(frame_id) FROM frame_text")
    db.set_kv(_mark_key(model), int(last[0] or 0) if last else 0)


def count_pending(db: Conn, model: VecModel) -> int:
    return int(db.execute(
        "SELECT COUNT(*) FROM frame_text t JOIN frames f ON f.id = t.frame_id "
        "LEFT JOIN vec_done d ON d.frame_id = t.frame_id "
        "WHERE f.excluded = 0 AND (d.frame_id IS NULL OR d.model_id != ?)",
        (model.id,)).fetchone()[0])


def known_hashes(db: Conn, model: VecModel, hashes: Iterable[int]) -> set[int]:
    hs = list(set(hashes))
    out: set[int] = set()
    for i in range(0, len(hs), 500):
        part = hs[i:i + 500]
        out.update(r[0] for r in db.execute(
            f"SELECT hash FROM vec_items WHERE model_id = ? AND hash IN "
            f"({','.join('?' * len(part))})", [model.id, *part]).fetchall())
    return out


def store_frames(conn: sqlite3.Connection, model: VecModel,
                 frames: Sequence[tuple[int, Sequence[Block]]]) -> int:
    """Store the blocks of these key frames (inside the caller's transaction).

    A block already stored for the model is linked, not stored again. Replaces what the
    frames had from this model. Returns the new vectors written.
    """
    new = 0
    for frame_id, blocks in frames:
        conn.execute("DELETE FROM vec_frames WHERE frame_id = ? AND item_id IN "
                     "(SELECT vf.item_id FROM vec_frames vf JOIN vec_items i ON i.id = vf.item_id"
                     " WHERE vf.frame_id = ? AND i.model_id = ?)",
                     (frame_id, frame_id, model.id))
        if blocks:
            q, bits = quantize(np.stack([b.vector for b in blocks]))
        for i, b in enumerate(blocks):
            h = text_hash(b.text)
            row = conn.execute("SELECT id FROM vec_items WHERE model_id = ? AND hash = ?",
                               (model.id, h)).fetchone()
            if row is None:
                cur = conn.execute("INSERT INTO vec_items(model_id, hash, vector) "
                                   "VALUES (?, ?, ?)", (model.id, h, q[i].tobytes()))
                item = int(cur.lastrowid or 0)
                conn.execute("INSERT INTO vec_codes(item_id, model_id, bits) VALUES (?, ?, ?)",
                             (item, model.id, bits[i].tobytes()))
                new += 1
            else:
                item = int(row[0])
            conn.execute("INSERT OR IGNORE INTO vec_frames(frame_id, item_id, block) "
                         "VALUES (?, ?, ?)", (frame_id, item, b.index))
        conn.execute("INSERT INTO vec_done(frame_id, model_id) VALUES (?, ?) ON CONFLICT"
                     "(frame_id) DO UPDATE SET model_id = excluded.model_id",
                     (frame_id, model.id))
    return new


# -- reading ---------------------------------------------------------------------------------

def stats(db: Conn, model: VecModel | None = None) -> dict[str, Any]:
    """Vectors stored: blocks, links, key frames embedded and the bytes their rows hold."""
    mid = model.id if model else None
    items, vbytes = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(vector) + (SELECT length(bits) FROM vec_codes "
        "WHERE item_id = id)), 0) FROM vec_items WHERE ? IS NULL OR model_id = ?",
        (mid, mid)).fetchone()
    links = db.execute("SELECT COUNT(*) FROM vec_frames vf JOIN vec_items i ON i.id = vf.item_id "
                       "WHERE ? IS NULL OR i.model_id = ?", (mid, mid)).fetchone()[0]
    done = db.execute("SELECT COUNT(*) FROM vec_done WHERE ? IS NULL OR model_id = ?",
                      (mid, mid)).fetchone()[0]
    # Vector and code bytes + ~36 B per block for its two rows and (model, hash) index entry
    # + ~20 B per link with its item index entry (SQLite record and b-tree overhead).
    approx = int(vbytes) + int(items) * 36 + int(links) * 20
    return {"blocks": int(items), "links": int(links), "frames": int(done), "bytes": approx}


def _filters(app: str | None, since: float | None, until: float | None,
             alias: str = "f") -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if app:
        sql += f" AND {alias}.app LIKE ?"
        params.append(f"%{app}%")
    if since is not None:
        sql += f" AND {alias}.ts >= ?"
        params.append(since)
    if until is not None:
        sql += f" AND {alias}.ts <= ?"
        params.append(until)
    return sql, params


SPAN_FRAMES = 32768     # frames (~4.5 h at 2 fps) above which a time span counts as wide


def _span_ids(conn: sqlite3.Connection, since: float | None,
              until: float | None) -> tuple[int, int] | None:
    """The frame ids [lo, hi] that hold [since, until], or None when it spans more than
    SPAN_FRAMES frames (then only the time test filters: bounds would save little).

    Read from the ts index, so the cost follows the span, not the store; min/max hold
    however ids and times interleave.
    """
    row = conn.execute(
        "SELECT MIN(id), MAX(id), COUNT(*) FROM (SELECT id FROM frames INDEXED BY frames_ts "
        "WHERE ts >= ? AND ts <= ? LIMIT ?)",
        (-1e18 if since is None else since, 1e18 if until is None else until,
         SPAN_FRAMES + 1)).fetchone()
    if row[2] > SPAN_FRAMES:
        return None
    return (int(row[0]), int(row[1])) if row[2] else (1, 0)


# CROSS JOIN keeps vec_frames first: the frame-id range is what narrows (the planner would
# otherwise walk every block of the model, 120 ms at 125k blocks).
_SPAN = ("SELECT DISTINCT vf.item_id FROM vec_frames vf CROSS JOIN frames f ON f.id = "
         "vf.frame_id CROSS JOIN vec_items i ON i.id = vf.item_id "
         "WHERE vf.frame_id BETWEEN ? AND ? AND i.model_id = ?")
_COARSE = ("SELECT item_id FROM vec_codes WHERE model_id = ? "
           "ORDER BY vec_distance_hamming(vec_bit(bits), vec_bit(?)) LIMIT ?")


def _scored(conn: sqlite3.Connection, q8: bytes, items_sql: str, params: list[Any],
            min_score: float) -> list[tuple[int, float]]:
    """(block id, cosine similarity) of the blocks ``items_sql`` selects, best first."""
    rows = conn.execute(
        "SELECT id, 1.0 - vec_distance_cosine(vec_int8(vector), vec_int8(?)) AS s "
        f"FROM vec_items WHERE id IN ({items_sql}) ORDER BY s DESC", [q8, *params]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows if r[1] is not None and r[1] >= min_score]


def _to_frames(conn: sqlite3.Connection, scored: list[tuple[int, float]], where: str,
               params: list[Any], limit: int) -> dict[int, Ranked]:
    """Map blocks to the frames that show them, best block first, until ``limit`` frames."""
    best: dict[int, Ranked] = {}
    for i in range(0, len(scored), 200):
        page = scored[i:i + 200]
        sim = dict(page)
        rows = conn.execute(
            "SELECT vf.item_id, vf.frame_id, vf.block, f.ts FROM vec_frames vf "
            f"JOIN frames f ON f.id = vf.frame_id WHERE vf.item_id IN "
            f"({','.join('?' * len(page))}){where}",
            [p[0] for p in page] + params).fetchall()
        for item, fid, block, _ts in sorted(rows, key=lambda r: (-sim[r[0]], -r[3])):
            if fid not in best:
                best[fid] = Ranked(int(fid), sim[item], int(block))
        if len(best) >= limit:
            break
    return best


def nearest(db: Database, model: VecModel, query: np.ndarray, *, app: str | None = None,
            since: float | None = None, until: float | None = None, limit: int = 50,
            min_score: float = 0.0) -> list[Ranked]:
    """Frames whose blocks are nearest in meaning to ``query`` (float), best first.

    A frame's score is its best block's cosine similarity; ties go to the newer frame.
    Without a filter: the COARSE_K blocks nearest by Hamming distance of their bit codes,
    reranked by cosine. A time span holding at most EXACT_MAX blocks (and SPAN_FRAMES
    frames) is scored whole; a wider one, or an app filter alone, filters 4× the coarse
    candidates (a block of that app not among the COARSE_K × 4 nearest of all is not found
    by meaning; words still find it).
    """
    load_extension(db)
    conn = db.conn
    q = np.asarray(query, dtype=np.float32).reshape(1, -1)
    q8, qbits = quantize(q)
    where, params = _filters(app, since, until)
    scored: list[tuple[int, float]] | None = None
    ids = _span_ids(conn, since, until) if since is not None or until is not None else None
    if ids is not None:
        span = _SPAN + where
        span_params = [ids[0], ids[1], model.id, *params]
        n = conn.execute(f"SELECT COUNT(*) FROM ({span} LIMIT ?)",
                         [*span_params, EXACT_MAX + 1]).fetchone()[0]
        if n <= EXACT_MAX:
            scored = _scored(conn, q8[0].tobytes(), span, span_params, min_score)
    if scored is None:
        scored = _scored(conn, q8[0].tobytes(), _COARSE,
                         [model.id, qbits[0].tobytes(), COARSE_K * 4 if where else COARSE_K],
                         min_score)
    best = _to_frames(conn, scored, where, params, limit)
    return sorted(best.values(), key=lambda r: -r.score)[:limit]


def keyword_ranked(db: Conn, match: str, *, app: str | None = None,
                   since: float | None = None, until: float | None = None,
                   pool: int = KEYWORD_POOL) -> list[tuple[int, float]]:
    """(frame id, bm25) of the newest ``pool`` FTS matches, best BM25 first.

    BM25 over every match of a common word is slow at scale (see store/text.py search); the
    newest ``pool`` matches are ranked instead.
    """
    where, params = _filters(app, since, until)
    ids = _span_ids(_raw(db), since, until) if since is not None or until is not None \
        else None
    if ids is not None:
        # Bounds on the FTS rowid (= frame id) let FTS5 skip what is out of range.
        where += " AND frame_fts.rowid BETWEEN ? AND ?"
        params += [ids[0], ids[1]]
    try:
        rows = db.execute(
            "SELECT id, score FROM (SELECT frame_fts.rowid AS id, bm25(frame_fts) AS score, "
            "f.ts AS ts FROM frame_fts JOIN frames f ON f.id = frame_fts.rowid "
            f"WHERE frame_fts MATCH ?{where} ORDER BY frame_fts.rowid DESC LIMIT ?) "
            "ORDER BY score, ts DESC", [match, *params, pool]).fetchall()
    except cipher.operational_errors() as exc:
        raise StoreError(f"search failed: {exc}",
                         "run `localvideo analyze` again; it rebuilds missing text") from exc
    return [(int(r[0]), float(r[1])) for r in rows]


def fuse(*rankings: Sequence[int], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each list adds 1/(k + rank) to the ids it holds."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, fid in enumerate(ranking, start=1):
            score[fid] = score.get(fid, 0.0) + 1.0 / (k + rank)
    return sorted(score.items(), key=lambda s: -s[1])


def hit_rows(db: Conn, frame_ids: Sequence[int]) -> dict[int, HitRow]:
    """Where each frame is (chunk, offset) and its text, for presenting hits."""
    out: dict[int, HitRow] = {}
    for i in range(0, len(frame_ids), 900):
        part = list(frame_ids[i:i + 900])
        for r in db.execute(
                "SELECT f.id, f.ts, f.app, f.title, f.pts, f.chunk_id, c.path, c.start_ts, "
                "COALESCE(t.text, '') FROM frames f LEFT JOIN chunks c ON c.id = f.chunk_id "
                "LEFT JOIN frame_text t ON t.frame_id = f.id "
                f"WHERE f.id IN ({','.join('?' * len(part))})", part).fetchall():
            out[int(r[0])] = HitRow(*r)
    return out


def snippets(db: Conn, match: str, frame_ids: Sequence[int]) -> dict[int, str]:
    """FTS5 snippets (matched words in [brackets]) of these frames."""
    out: dict[int, str] = {}
    for i in range(0, len(frame_ids), 900):
        part = list(frame_ids[i:i + 900])
        for r in db.execute(
                "SELECT rowid, snippet(frame_fts, -1, '[', ']', '…', 12) FROM frame_fts "
                f"WHERE frame_fts MATCH ? AND rowid IN ({','.join('?' * len(part))})",
                [match, *part]).fetchall():
            out[int(r[0])] = r[1] or ""
    return out


def has_vectors(db: Conn) -> bool:
    """Whether semantic search has anything to search (an active model with vectors)."""
    row = db.execute("SELECT 1 FROM vec_models m JOIN vec_items i ON i.model_id = m.id "
                     "WHERE m.active = 1 LIMIT 1").fetchone()
    return row is not None
