"""Crash recovery: reconcile chunk files left behind with the index.

Two cases, both after a recorder died without closing its chunk (kill -9, power loss):

* a row still in state ``recording`` while no recorder holds the lock → the file is decoded
  to its end (media.scan_decodable), and the row set to ``recovered`` (or ``damaged``
  when nothing decodes) with the real end time, frame count and size; a file that holds
  only the MP4 header (killed before the first fragment: nothing was recorded) is removed
  with its row;
* a chunk file with no row at all (the recorder died between creating the file and writing
  its row, or the index was restored from a backup) → indexed as a recovered chunk.

Fragmented MP4 makes this possible at all: every flushed fragment decodes without the
``moov`` finalisation a plain MP4 would need.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import crypto
from ..errors import LocalVideoError
from .db import Database

if TYPE_CHECKING:
    from ..media import Decodable

log = logging.getLogger("localvideo.record")

_NAME = re.compile(r"chunk_(\d{6})_(\d{3})(?:_\d+)?\.mp4$")


def probe_chunk(path: Path) -> Decodable:
    """What decodes in a chunk file: frames, last pts, size, codec and why decoding stopped.

    PyAV is imported here, not at the top: every command runs recovery when it starts, and
    only a chunk left behind by a crash is decoded."""
    from .. import media

    if not path.exists():
        return media.Decodable(0, None, 0, 0, None, "file missing")
    return media.scan_decodable(path)


def _start_from_name(path: Path) -> float | None:
    m = _NAME.search(path.name)
    if not m:
        return None
    try:
        day = datetime.strptime(path.parent.name, "%Y-%m-%d")
        hms = datetime.strptime(m.group(1), "%H%M%S")
    except ValueError:
        return None
    dt = day.replace(hour=hms.hour, minute=hms.minute, second=hms.second)
    return dt.timestamp() + int(m.group(2)) / 1000


def recover(db: Database, data_dir: Path, recordings_dir: Path, *,
            recorder_alive: bool) -> dict[str, Any]:
    """Repair the index after a crash; returns what was done (ids and paths)."""
    done: dict[str, Any] = {"recovered": [], "damaged": [], "orphans": [], "empty": []}
    if not recorder_alive:
        for row in db.query("SELECT id, path, start_ts, end_ts FROM chunks WHERE state = 'recording'"):
            path = data_dir / row["path"]
            p = probe_chunk(path)
            if not path.exists() or _header_only(p, path):
                # Killed before the first fragment, or before the file was even created.
                _drop_empty(db, path, row["id"], row["path"])
                done["empty"].append({"id": row["id"], "path": row["path"]})
                continue
            state = "recovered" if p.frames else "damaged"
            end = row["start_ts"] + (p.last_pts or 0.0) if p.frames else row["end_ts"]
            # Frames seen after the last decodable picture stay indexed (the screen was seen)
            # but point at the last picture that really exists.
            with db.tx() as conn:
                conn.execute(
                    "UPDATE chunks SET state = ?, frames = ?, bytes = ?, "
                    "end_ts = max(coalesce(end_ts, start_ts), ?) WHERE id = ?",
                    (state, p.frames, path.stat().st_size if path.exists() else 0,
                     end or row["start_ts"], row["id"]))
                if p.last_pts is not None:
                    conn.execute("UPDATE frames SET pts = ? WHERE chunk_id = ? AND pts > ?",
                                 (p.last_pts, row["id"], p.last_pts))
            log.warning("chunk %s was left recording: %s with %d decodable frames (%s)",
                        row["path"], state, p.frames, p.error or "clean end")
            done[state].append({"id": row["id"], "path": row["path"], "frames": p.frames})
    if recordings_dir.exists():
        known = {r[0] for r in db.query("SELECT path FROM chunks")}
        for path in sorted(recordings_dir.rglob("*.mp4")):
            rel = path.relative_to(data_dir).as_posix()
            if rel in known:
                continue
            if recorder_alive and path.stat().st_mtime > _recent():
                continue  # being created by the live recorder right now
            p = probe_chunk(path)
            if _header_only(p, path):
                _drop_empty(db, path, None, rel)
                done["empty"].append({"id": None, "path": rel})
                continue
            start = _start_from_name(path) or path.stat().st_mtime - (p.last_pts or 0.0)
            state = "recovered" if p.frames else "damaged"
            device = path.parent.parent.name
            with db.tx() as conn:
                cur = conn.execute(
                    "INSERT INTO chunks(path, device_id, start_ts, end_ts, codec, encoder, width, "
                    "height, frames, bytes, state) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rel, device, start, start + (p.last_pts or 0.0), p.codec, None, p.width,
                     p.height, p.frames, path.stat().st_size, state))
            log.warning("indexed orphan chunk file %s (%s, %d frames)", rel, state, p.frames)
            done["orphans"].append({"id": cur.lastrowid, "path": rel, "frames": p.frames,
                                    "state": state})
    return done


def _header_only(p: Decodable, path: Path | None = None) -> bool:
    """A recorder killed before its first fragment leaves the MP4 header alone (~760 bytes:
    ftyp + moov, a codec and no picture), or less: an empty file, or a sealed file (encryption
    at rest) with no record after its own header. Nothing was recorded in it, so it is
    removed rather than kept as "damaged"; a file that does not parse stays damaged."""
    if p.frames:
        return False
    if p.codec is not None:
        return True
    return path is not None and _no_bytes(path)


def _no_bytes(path: Path) -> bool:
    try:
        if path.stat().st_size == 0:
            return True
        return crypto.is_sealed(path) and len(crypto.read_plain(path)) == 0
    except (OSError, LocalVideoError):
        return False     # a torn or foreign file: damaged, shown as such


def _drop_empty(db: Database, path: Path, chunk_id: int | None, rel: str) -> None:
    if chunk_id is not None:
        with db.tx() as conn:
            # Frames seen while nothing was flushed have no picture to show; they go with it.
            conn.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
    path.unlink(missing_ok=True)
    log.warning("removed %s: the recorder died before its first fragment (nothing "
                "recorded in it)", rel)


def _recent() -> float:
    return time.time() - 30
