"""Service operations for the record area: record, read back, pause, retention, recovery.

Everything here returns plain data; the CLI, REST and MCP front ends only format it.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import av
from PIL import Image

from ..errors import LocalVideoError, NotFoundError, StoreError, UsageError
from ..record.lock import RecorderLock, running_pid
from ..store import frames as frames_db
from ..store import observations as obs_db
from ..store import retention
from ..store.layout import inside
from ..store.recovery import recover
from .base import ServiceBase

log = logging.getLogger("localvideo.record")

_NO_FRAMES_HINT = "record something first: `localvideo record --duration 30`"


class RecordOps(ServiceBase):
    # -- lifecycle ------------------------------------------------------------------------
    def startup(self) -> None:
        super().startup()
        self.last_recovery = self.recover()

    def recover(self) -> dict[str, Any]:
        """Index chunks a dead recorder left behind (see store/recovery.py)."""
        try:
            return recover(self.db, self.settings.data_dir, self.settings.recordings_dir,
                           recorder_alive=running_pid(self.settings.data_dir) is not None)
        except StoreError as exc:
            # Recovery must never stop a read-only command from running.
            log.error("recovery failed: %s", exc)
            return {"error": str(exc)}

    # -- recording ------------------------------------------------------------------------
    def record(self, duration: float | None = None, stop: threading.Event | None = None,
               on_status: Callable[[dict[str, Any]], None] | None = None,
               virtual_display: bool = False) -> dict[str, Any]:
        """Record until ``stop`` is set or ``duration`` seconds pass; blocks."""
        from ..capture.base import open_backend
        from ..record.recorder import Recorder, setup_logging

        if duration is not None and duration <= 0:
            raise UsageError(f"--duration must be positive, got {duration}",
                             "pass e.g. --duration 60 or leave it out to record until Ctrl-C")
        rs = self.settings.record
        if rs.fps <= 0 or rs.fps > 60:
            raise UsageError(f"--fps must be between 0 and 60, got {rs.fps}", "the default is 2")
        if rs.chunk_seconds < 1:
            raise UsageError(f"--chunk-seconds must be at least 1, got {rs.chunk_seconds}",
                             "the default is 60")
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(data_dir)
        with ExitStack() as stack:
            stack.enter_context(RecorderLock(data_dir))
            if virtual_display:
                from ..capture.virtual import VirtualDisplay

                stack.enter_context(VirtualDisplay())
            backend = stack.enter_context(open_backend(
                rs.mode, rs.display, backend=rs.backend, state_dir=data_dir))
            retention.enforce(self.db, data_dir, max_bytes=rs.max_bytes, max_age=rs.max_age)
            recorder = Recorder(self.settings, self.db, self.device_id, backend)
            try:
                return recorder.run(duration=duration, stop=stop, on_status=on_status)
            except LocalVideoError as exc:
                log.error("recording stopped: %s", exc)
                raise

    def pause(self) -> dict[str, Any]:
        self.db.set_kv("paused", True)
        return {"paused": True, "recorder_pid": running_pid(self.settings.data_dir)}

    def resume(self) -> dict[str, Any]:
        self.db.set_kv("paused", False)
        return {"paused": False, "recorder_pid": running_pid(self.settings.data_dir)}

    # -- reading back ---------------------------------------------------------------------
    def chunks(self, since: float | None = None, until: float | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
        rows = frames_db.list_chunks(self.db, since, until, limit)
        apps: dict[int, dict[str, dict[str, Any]]] = {}
        for a in frames_db.apps_per_chunk(self.db, [r.id for r in rows]):
            entry = apps.setdefault(a.chunk_id, {}).setdefault(
                a.app or "", {"app": a.app or "", "titles": [], "frames": 0})
            entry["frames"] += a.frames
            if a.title not in entry["titles"]:
                entry["titles"].append(a.title or "")
        return [self._chunk_dict(r, list(apps.get(r.id, {}).values())) for r in rows]

    def _chunk_dict(self, r: frames_db.Chunk, apps: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": r.id, "path": r.path,
                "abs_path": str(self.settings.data_dir / r.path),
                "start_ts": r.start_ts, "end_ts": r.end_ts, "codec": r.codec,
                "encoder": r.encoder, "width": r.width, "height": r.height,
                "frames": r.frames, "bytes": r.bytes, "state": r.state, "apps": apps}

    def chunk_file(self, chunk_id: int) -> Path:
        row = frames_db.get_chunk(self.db, int(chunk_id))
        if row is None:
            raise NotFoundError(f"no chunk with id {chunk_id}", "list them with `localvideo chunks`")
        path = inside(self.settings.data_dir, row.path)
        if not path.exists():
            raise NotFoundError(f"chunk {chunk_id} is indexed but its file {path} is gone",
                                "run `localvideo delete` on its time range to drop the row")
        return path

    def chunk_media(self, chunk_id: int) -> tuple[Path, str]:
        """A browser-playable H.264 MP4 of the chunk (HEVC is transcoded once, then cached)."""
        path = self.chunk_file(chunk_id)
        row = frames_db.get_chunk(self.db, int(chunk_id))
        assert row is not None
        if row.codec == "h264":
            return path, "video/mp4"
        cache = self.settings.data_dir / "cache" / "media"
        size = path.stat().st_size
        out = cache / f"chunk-{int(chunk_id)}-{size}.mp4"
        if out.exists():
            return out, "video/mp4"
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"chunk-{int(chunk_id)}-*.mp4"):
            old.unlink(missing_ok=True)  # an earlier transcode of a chunk that was still growing
        tmp = out.with_suffix(".part")
        try:
            _transcode_h264(path, tmp)
            os.replace(tmp, out)
        except (av.FFmpegError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot transcode chunk {chunk_id} to H.264: {exc}",
                             "see <data-dir>/logs/recorder.log; the original file is untouched"
                             ) from exc
        return out, "video/mp4"

    def frame_info(self, ts: float) -> dict[str, Any]:
        """The indexed frame nearest at-or-before ``ts``."""
        row = frames_db.frame_at(self.db, float(ts))
        if row is None:
            first = frames_db.first_frame_ts(self.db)
            if first is None:
                raise NotFoundError("nothing has been recorded yet", _NO_FRAMES_HINT)
            raise NotFoundError(f"no frame at or before {ts}: recording starts at {first}",
                                "pick a later time (see `localvideo chunks`)")
        return {k: getattr(row, k) for k in ("id", "ts", "chunk_id", "pts", "app", "title", "x",
                                             "y", "w", "h", "changed", "excluded", "chunk_path")}

    def frame_image(self, ts: float, crop: bool = False) -> Image.Image:
        info = self.frame_info(ts)
        if info["chunk_id"] is None or info["pts"] is None:
            raise NotFoundError(
                f"the frame at {info['ts']} was not stored: the window was excluded for privacy",
                "pick another time, or change [record] exclude_apps / exclude_titles")
        path = self.chunk_file(info["chunk_id"])
        image = _decode_at(path, float(info["pts"]))
        if crop:
            if not info["w"] or not info["h"]:
                raise NotFoundError("this frame has no window rectangle to crop to "
                                    "(an excluded window is stored blank)",
                                    "leave out --crop")
            image = image.crop((info["x"], info["y"], info["x"] + info["w"],
                                info["y"] + info["h"]))
        return image

    def frame_bytes(self, ts: float, fmt: str = "png", crop: bool = False,
                    max_side: int | None = None) -> bytes:
        fmt = fmt.lower()
        if fmt not in ("png", "jpeg", "jpg"):
            raise UsageError(f"unknown image format {fmt!r}", "use png or jpeg")
        image = self.frame_image(ts, crop=crop)
        if max_side:
            image.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        image.save(buf, format="PNG" if fmt == "png" else "JPEG", quality=85)
        return buf.getvalue()

    # -- state ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        data_dir = self.settings.data_dir
        pid = running_pid(data_dir)
        beat = self.db.get_kv("recorder", {}) or {}
        totals = frames_db.chunk_totals(self.db)
        seen = frames_db.frame_count(self.db)
        out: dict[str, Any] = {
            "data_dir": str(data_dir),
            "recorder": {
                "running": pid is not None, "pid": pid,
                "heartbeat": beat.get("heartbeat"),
                "chunk": beat.get("chunk") if pid else None,
                "encoder": beat.get("encoder"),
                "disk_paused": bool(beat.get("disk_paused")) if pid else False,
                "message": beat.get("message") if pid else "",
                "last_error": beat.get("last_error"),
            },
            "paused": bool(self.db.get_kv("paused", False)),
            "disk_free": retention.disk_free(data_dir),
            "min_free_bytes": self.settings.record.min_free_bytes,
            "totals": {"chunks": totals.chunks, "bytes": totals.bytes,
                       "frames_encoded": totals.frames, "frames_seen": seen,
                       "first_ts": totals.first_ts, "last_ts": totals.last_ts},
        }
        if hasattr(self, "analysis_status"):
            out["analysis"] = self.analysis_status()
        return out

    def delete_range(self, start: float, end: float) -> dict[str, Any]:
        """Remove every chunk overlapping [start, end] with its frames, text and observations."""
        if end < start:
            raise UsageError(f"the range ends ({end}) before it starts ({start})",
                             "swap --since and --until")
        rows = frames_db.chunks_overlapping(self.db, start, end)
        live = [r for r in rows if r.state == "recording"]
        if live and running_pid(self.settings.data_dir) is not None:
            raise UsageError("the range includes the chunk being recorded right now",
                             "run `localvideo pause` first (it closes the chunk), then delete")
        ids = [r.id for r in rows]
        lo = min([start, *[r.start_ts for r in rows]])
        hi = max([end, *[(r.end_ts or r.start_ts) for r in rows]])
        result = retention.delete_chunks(self.db, self.settings.data_dir, ids)
        with self.db.tx() as conn:
            # Frames seen while an excluded window was skipped belong to no chunk.
            orphan = frames_db.delete_unchunked_frames(conn, lo, hi)
            obs = obs_db.delete_overlapping(conn, lo, hi)
        for old in (self.settings.data_dir / "cache" / "media").glob("chunk-*.mp4"):
            if int(old.name.split("-")[1]) in ids:
                old.unlink(missing_ok=True)
        return {"chunks": len(ids), "frames": result["frames"] + orphan, "bytes": result["bytes"],
                "observations": obs, "start": lo, "end": hi}

    def enforce_retention(self) -> dict[str, Any]:
        rs = self.settings.record
        return retention.enforce(self.db, self.settings.data_dir, max_bytes=rs.max_bytes,
                                 max_age=rs.max_age)


def _decode_at(path: Path, pts: float) -> Image.Image:
    """Decode the picture shown at ``pts`` seconds: the last frame whose pts is ≤ it."""
    best: Image.Image | None = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
                    if t > pts + 0.0005 and best is not None:
                        break
                    best = frame.to_image()
            except (av.FFmpegError, ValueError):
                pass  # a chunk still being written ends in a partial fragment
    except (av.FFmpegError, OSError) as exc:
        raise StoreError(f"cannot decode {path}: {exc}", "the chunk may be damaged; "
                         "see `localvideo chunks` for its state") from exc
    if best is None:
        raise NotFoundError(f"{path.name} has no decodable frame at {pts:.3f}s",
                            "the chunk may be damaged; see `localvideo chunks`")
    return best


def _transcode_h264(src: Path, dst: Path) -> None:
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           options={"movflags": "+faststart"}) as out:
        ist = inp.streams.video[0]
        ost: Any = out.add_stream("libx264", options={"preset": "veryfast", "crf": "26"})
        ost.width, ost.height, ost.pix_fmt = ist.codec_context.width, ist.codec_context.height, "yuv420p"
        ost.time_base = ist.time_base
        ost.codec_context.time_base = ist.time_base
        try:
            for frame in inp.decode(ist):
                frame.pict_type = av.video.frame.PictureType.NONE
                for packet in ost.encode(frame):
                    out.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            log.warning("transcode of %s stopped early: %s", src, exc)
        for packet in ost.encode(None):
            out.mux(packet)

