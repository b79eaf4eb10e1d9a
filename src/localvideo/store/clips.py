"""Generated clips: one row per MP4 with its JSON sidecar (the whole record of the run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .db import Conn, Database


@dataclass(frozen=True, slots=True)
class Clip:
    id: int
    path: str                     # absolute path of the MP4
    sidecar: dict[str, Any]       # the JSON sidecar, decoded
    created_ts: float


@dataclass(frozen=True, slots=True)
class NewClip:
    """The columns of a clip row besides its sidecar (kept apart so clips can be filtered)."""

    path: str
    created_ts: float
    backend: str                  # diffusers | comfyui
    model: str | None             # preset name, folder or workflow
    family: str | None
    prompt: str
    negative: str | None
    seed: int | None
    frames: int | None
    width: int | None
    height: int | None
    fps: float | None
    steps: int | None
    guidance: float | None
    device: str | None
    peak_bytes: int | None
    seconds: float                # wall time of the whole generation


def _clip(r: Any) -> Clip:
    return Clip(r[0], r[1], json.loads(r[2]), r[3])


def add_clip(db: Database, clip: NewClip, sidecar: dict[str, Any]) -> int:
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO clips(path, sidecar, created_ts, backend, model, family, prompt, "
            "negative, seed, frames, width, height, fps, steps, guidance, device, "
            "peak_bytes, seconds) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (clip.path, json.dumps(sidecar, default=str), clip.created_ts, clip.backend,
             clip.model, clip.family, clip.prompt, clip.negative, clip.seed, clip.frames,
             clip.width, clip.height, clip.fps, clip.steps, clip.guidance, clip.device,
             clip.peak_bytes, clip.seconds))
    return int(cur.lastrowid or 0)


def get_clip(db: Conn, clip_id: int) -> Clip | None:
    row = db.execute("SELECT id, path, sidecar, created_ts FROM clips WHERE id = ?",
                     (int(clip_id),)).fetchone()
    return _clip(row) if row is not None else None


def list_clips(db: Conn, limit: int | None = None) -> list[Clip]:
    """The newest ``limit`` clips (all without one), oldest first."""
    rows = db.execute(
        "SELECT id, path, sidecar, created_ts FROM (SELECT * FROM clips "
        "ORDER BY created_ts DESC, id DESC LIMIT ?) ORDER BY created_ts, id",
        (limit if limit is not None else -1,)).fetchall()
    return [_clip(r) for r in rows]
