"""Retention: keep the recordings inside a byte budget and an age limit, oldest first.

The chunk being written is never evicted. Files are removed before their rows, so a crash
in between can only leave a row without a file (shown as missing), never a deleted
recording that recovery would bring back as an "orphan".

``disk_free`` is the one place free space is measured; it is a module attribute so a test
(or an embedding application) can replace it, though the tests here use a real small tmpfs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .db import Database

log = logging.getLogger("localvideo.record")


def _disk_free(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


disk_free: Callable[[Path], int] = _disk_free


def delete_chunks(db: Database, data_dir: Path, ids: list[int]) -> dict[str, int]:
    """Remove chunk files and their rows (frames go with them by ON DELETE CASCADE)."""
    freed = 0
    frames = 0
    for cid in ids:
        row = db.one("SELECT path, bytes FROM chunks WHERE id = ?", (cid,))
        if row is None:
            continue
        path = data_dir / row["path"]
        try:
            freed += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot delete %s: %s", path, exc)
            continue
        with db.tx() as conn:
            frames += conn.execute("SELECT count(*) FROM frames WHERE chunk_id = ?",
                                   (cid,)).fetchone()[0]
            conn.execute("DELETE FROM frames WHERE chunk_id = ?", (cid,))
            conn.execute("DELETE FROM chunks WHERE id = ?", (cid,))
    return {"chunks": len(ids), "bytes": freed, "frames": frames}


def enforce(db: Database, data_dir: Path, *, max_bytes: int | None, max_age: float | None,
            now: float | None = None, protect: set[int] | None = None) -> dict[str, Any]:
    """Evict the oldest chunks until the total is under ``max_bytes`` and none is older
    than ``max_age`` seconds. Chunks still being written and ids in ``protect`` stay."""
    now = time.time() if now is None else now
    protect = protect or set()
    rows = db.query("SELECT id, path, start_ts, end_ts, bytes, state FROM chunks "
                    "ORDER BY start_ts, id")
    total = sum(int(r["bytes"] or 0) for r in rows)
    evict: list[int] = []
    reasons: dict[int, str] = {}
    for r in rows:
        if r["state"] == "recording" or r["id"] in protect:
            continue
        end = r["end_ts"] or r["start_ts"]
        if max_age and now - end > max_age:
            evict.append(r["id"])
            reasons[r["id"]] = "age"
            total -= int(r["bytes"] or 0)
    for r in rows:
        if max_bytes is None or max_bytes <= 0 or total <= max_bytes:
            break
        if r["state"] == "recording" or r["id"] in protect or r["id"] in reasons:
            continue
        evict.append(r["id"])
        reasons[r["id"]] = "bytes"
        total -= int(r["bytes"] or 0)
    paths = {r["id"]: r["path"] for r in rows}
    result = delete_chunks(db, data_dir, evict)
    for cid in evict:
        log.info("retention evicted %s (%s)", paths[cid], reasons[cid])
    return {"evicted": [{"id": c, "path": paths[c], "reason": reasons[c]} for c in evict],
            "bytes_freed": result["bytes"], "frames_removed": result["frames"],
            "total_bytes": max(total, 0)}
