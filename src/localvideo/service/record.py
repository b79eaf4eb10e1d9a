"""The record area: record, read back, pause, delete, retention, recovery."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from PIL import Image

from .. import crypto
from ..errors import LocalVideoError, NotFoundError, StoreError, UsageError
from ..record.lock import RecorderLock, running_pid
from ..store import frames as frames_db
from ..store import observations as obs_db
from ..store import retention
from ..store.recovery import recover
from ..units import format_ts, parse_duration
from .context import Context, check_limit, confine, maybe_moment, moment
from .models import (
    AppFrames,
    CaptureHealthState,
    Deleted,
    FrameInfo,
    LocalChunk,
    PauseState,
    Picture,
    RecorderState,
    RecordProgress,
    RecordStatus,
    RecordSummary,
    RetentionResult,
    Totals,
    When,
)

log = logging.getLogger("localvideo.record")

# Imported where used, not above, because every CLI command imports this module: media
# (PyAV and numpy, about half of the CLI's start-up when imported here), the capture backends
# and the recorder are paid for only by the commands that record or decode.

_NO_FRAMES_HINT = "record something first: `localvideo record --duration 30`"
_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"),
            "jpg": ("JPEG", "image/jpeg")}


def live_health(beat: dict[str, Any], pid: int | None) -> CaptureHealthState | None:
    """The capture health a running recorder put in its heartbeat (``kv.recorder``).
    Only a live recorder's verdict means anything: a dead one's last word may say "ok"."""
    health = beat.get("health") if pid else None
    return CaptureHealthState.model_validate(health) if isinstance(health, dict) else None


def recorder_health(ctx: Context) -> tuple[int | None, CaptureHealthState | None]:
    """The running recorder's pid and capture health (None, None when none runs)."""
    pid = running_pid(ctx.settings.data_dir)
    return pid, live_health(ctx.db.get_kv("recorder", {}) or {} if pid else {}, pid)


class RecordArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def _data_dir(self) -> Path:
        return self._ctx.settings.data_dir

    # -- lifecycle ------------------------------------------------------------------------
    def recover(self) -> dict[str, Any]:
        """Index chunks a dead recorder left behind (see store/recovery.py)."""
        try:
            return recover(self._ctx.db, self._data_dir, self._ctx.settings.recordings_dir,
                           recorder_alive=running_pid(self._data_dir) is not None)
        except StoreError as exc:
            # Recovery must never stop a read-only command from running.
            log.error("recovery failed: %s", exc)
            return {"error": str(exc)}

    # -- recording ------------------------------------------------------------------------
    def run(self, duration: str | float | None = None, stop: threading.Event | None = None,
            on_status: Callable[[RecordProgress], None] | None = None,
            virtual_display: bool = False) -> RecordSummary:
        """Record until ``stop`` is set or ``duration`` (90, 30s, 5m) passes; blocks.

        ``on_status`` is called about once a second."""
        from ..capture.base import open_backend  # capture and PyAV: see the note at the top
        from ..record.recorder import Recorder, setup_logging

        seconds = (parse_duration(duration, what="--duration")
                   if duration is not None and duration != "" else None)
        if seconds is not None and seconds <= 0:
            raise UsageError(f"--duration must be positive, got {duration}",
                             "pass e.g. --duration 60 or leave it out to record until Ctrl-C")
        rs = self._ctx.settings.record
        if rs.fps <= 0 or rs.fps > 60:
            raise UsageError(f"--fps must be between 0 and 60, got {rs.fps}", "the default is 2")
        if rs.chunk_seconds < 1:
            raise UsageError(f"--chunk-seconds must be at least 1, got {rs.chunk_seconds}",
                             "the default is 60")
        data_dir = self._data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(data_dir)
        report = (None if on_status is None
                  else lambda s: on_status(RecordProgress.model_validate(s)))
        with ExitStack() as stack:
            stack.enter_context(RecorderLock(data_dir))
            if virtual_display:
                from ..capture.virtual import VirtualDisplay  # python-xlib: X11 only

                stack.enter_context(VirtualDisplay())
            backend = stack.enter_context(open_backend(
                rs.mode, rs.display, backend=rs.backend, state_dir=data_dir))
            retention.enforce(self._ctx.db, data_dir, max_bytes=rs.max_bytes,
                              max_age=rs.max_age)
            recorder = Recorder(self._ctx.settings, self._ctx.db, self._ctx.device_id, backend)
            try:
                summary = recorder.run(duration=seconds, stop=stop, on_status=report)
            except LocalVideoError as exc:
                log.error("recording stopped: %s", exc)
                raise
        return RecordSummary.model_validate(summary)

    def health(self) -> CaptureHealthState | None:
        """The running recorder's capture health (from its heartbeat); None when no recorder
        runs. Cheap: one pid check and one kv read, for status lines polling it."""
        return recorder_health(self._ctx)[1]

    def pause(self) -> PauseState:
        """Stop capturing; persisted in the index, so a running recorder stops within one
        frame interval."""
        self._ctx.db.set_kv("paused", True)
        return PauseState(paused=True, recorder_pid=running_pid(self._data_dir))

    def resume(self) -> PauseState:
        self._ctx.db.set_kv("paused", False)
        return PauseState(paused=False, recorder_pid=running_pid(self._data_dir))

    # -- reading back ---------------------------------------------------------------------
    def chunks(self, since: When | None = None, until: When | None = None,
               limit: int | None = None) -> list[LocalChunk]:
        """Chunks overlapping [since, until], newest last (the newest ``limit`` of them)."""
        check_limit(limit)
        db = self._ctx.db
        rows = frames_db.list_chunks(db, maybe_moment(since, "--since"),
                                     maybe_moment(until, "--until"), limit)
        apps: dict[int, dict[str, AppFrames]] = {}
        for a in frames_db.apps_per_chunk(db, [r.id for r in rows]):
            entry = apps.setdefault(a.chunk_id, {}).setdefault(
                a.app or "", AppFrames(app=a.app or "", titles=[], frames=0))
            entry.frames += a.frames
            if (a.title or "") not in entry.titles:
                entry.titles.append(a.title or "")
        return [LocalChunk(id=r.id, path=r.path, abs_path=str(self._data_dir / r.path),
                           start_ts=r.start_ts, end_ts=r.end_ts, codec=r.codec,
                           encoder=r.encoder, width=r.width, height=r.height, frames=r.frames,
                           bytes=r.bytes, state=r.state,
                           apps=list(apps.get(r.id, {}).values()))
                for r in rows]

    def chunk_file(self, chunk_id: int) -> Path:
        """The chunk's file, checked to be inside the store."""
        row = frames_db.get_chunk(self._ctx.db, int(chunk_id))
        if row is None:
            raise NotFoundError(f"no chunk with id {chunk_id}",
                                "list them with `localvideo chunks`")
        path = confine(self._data_dir, row.path, f"chunk {chunk_id}")
        if not path.exists():
            raise NotFoundError(f"chunk {chunk_id} is indexed but its file {path} is gone",
                                "run `localvideo delete` on its time range to drop the row")
        return path

    def chunk_media(self, chunk_id: int) -> tuple[Path, str]:
        """A browser-playable H.264 MP4 of the chunk (HEVC is transcoded once, then cached)
        and its MIME type; inside the store."""
        path = self.chunk_file(chunk_id)
        row = frames_db.get_chunk(self._ctx.db, int(chunk_id))
        assert row is not None
        if row.codec == "h264":
            return path, "video/mp4"
        cache = self._data_dir / "cache" / "media"
        size = path.stat().st_size
        out = cache / f"chunk-{int(chunk_id)}-{size}.mp4"
        if out.exists():
            return out, "video/mp4"
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"chunk-{int(chunk_id)}-*.mp4"):
            old.unlink(missing_ok=True)  # an earlier transcode of a chunk that was still growing
        from .. import media  # PyAV: see the note at the top

        try:
            media.transcode_h264(path, out)
            # Encryption at rest: the cached copy is sealed like the chunk it comes from.
            seal = crypto.sealer_for(self._data_dir)
            if seal is not None:
                crypto.seal_file(out, seal)
        except (LocalVideoError, OSError) as exc:
            raise StoreError(f"cannot transcode chunk {chunk_id} to H.264: {exc}",
                             "see <data-dir>/logs/recorder.log; the original file is untouched"
                             ) from exc
        return out, "video/mp4"

    def frame_info(self, at: When) -> FrameInfo:
        """The indexed frame nearest at or before the moment ``at``."""
        ts = moment(at, "at")
        db = self._ctx.db
        row = frames_db.frame_at(db, ts)
        if row is None:
            first = frames_db.first_frame_ts(db)
            if first is None:
                raise NotFoundError("nothing has been recorded yet", _NO_FRAMES_HINT)
            raise NotFoundError(f"no frame at or before {ts}: recording starts at {first}",
                                "pick a later time (see `localvideo chunks`)")
        return FrameInfo(id=row.id, ts=row.ts, chunk_id=row.chunk_id, pts=row.pts, app=row.app,
                         title=row.title, x=row.x, y=row.y, w=row.w, h=row.h,
                         changed=row.changed, excluded=row.excluded, chunk_path=row.chunk_path)

    def frame_image(self, at: When, crop: bool = False) -> Image.Image:
        """The decoded pixels of a moment (cropped to the window rectangle with ``crop``)."""
        info = self.frame_info(at)
        if info.chunk_id is None or info.pts is None:
            if info.title in frames_db.SCREEN_TITLES.values():
                # A blank or locked screen is indexed as such, with no picture kept.
                state = "locked" if "locked" in (info.title or "") else "blank"
                raise NotFoundError(
                    f"the frame at {info.ts} was not stored: the screen was {state} "
                    "(the index keeps the moment, not a picture of it)",
                    "pick another time; `localvideo timeline` shows the span")
            raise NotFoundError(
                f"the frame at {info.ts} was not stored: the window was excluded for privacy",
                "pick another time, or change [record] exclude_apps / exclude_titles")
        from .. import media  # PyAV: see the note at the top

        image = media.frame_at(self.chunk_file(info.chunk_id), float(info.pts))
        if crop:
            if not info.w or not info.h or info.x is None or info.y is None:
                raise NotFoundError("this frame has no window rectangle to crop to "
                                    "(an excluded window is stored blank)",
                                    "leave out --crop")
            image = image.crop((info.x, info.y, info.x + info.w, info.y + info.h))
        return image

    def frame_bytes(self, at: When, fmt: str = "png", crop: bool = False,
                    max_side: int | None = None) -> Picture:
        """A moment as PNG or JPEG, at most ``max_side`` pixels on its long side."""
        kind = _FORMATS.get(fmt.lower())
        if kind is None:
            raise UsageError(f"unknown image format {fmt!r}", "use png or jpeg")
        image = self.frame_image(at, crop=crop)
        if max_side:
            image.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        image.save(buf, format=kind[0], quality=85)
        return Picture(data=buf.getvalue(), media_type=kind[1])

    # -- state ----------------------------------------------------------------------------
    def state(self) -> RecordStatus:
        """Recorder state (pid, heartbeat, chunk, encoder, errors), pause, disk, totals."""
        data_dir = self._data_dir
        db = self._ctx.db
        pid = running_pid(data_dir)
        beat = db.get_kv("recorder", {}) or {}
        totals = frames_db.chunk_totals(db)
        return RecordStatus(
            data_dir=str(data_dir),
            recorder=RecorderState(
                running=pid is not None, pid=pid, heartbeat=beat.get("heartbeat"),
                chunk=beat.get("chunk") if pid else None, encoder=beat.get("encoder"),
                disk_paused=bool(beat.get("disk_paused")) if pid else False,
                message=beat.get("message") if pid else "",
                last_error=beat.get("last_error"),
                health=live_health(beat, pid)),
            paused=bool(db.get_kv("paused", False)),
            disk_free=retention.disk_free(data_dir),
            min_free_bytes=self._ctx.settings.record.min_free_bytes,
            totals=Totals(chunks=totals.chunks, bytes=totals.bytes,
                          frames_encoded=totals.frames, frames_seen=frames_db.frame_count(db),
                          first_ts=totals.first_ts, last_ts=totals.last_ts))

    def delete_range(self, start: When, end: When) -> Deleted:
        """Remove every chunk overlapping [start, end] with its frames, text and observations."""
        lo_ts, hi_ts = moment(start, "start"), moment(end, "end")
        if hi_ts < lo_ts:
            raise UsageError(f"the range is reversed: it starts at {format_ts(lo_ts)} and "
                             f"ends earlier, at {format_ts(hi_ts)} (ages count back from now: "
                             "2h is later than 3h)", "swap --since and --until, e.g. "
                             "--since 3h --until 2h")
        db = self._ctx.db
        rows = frames_db.chunks_overlapping(db, lo_ts, hi_ts)
        live = [r for r in rows if r.state == "recording"]
        if live and running_pid(self._data_dir) is not None:
            raise UsageError("the range includes the chunk being recorded right now",
                             "run `localvideo pause` first (it closes the chunk), then delete")
        ids = [r.id for r in rows]
        lo = min([lo_ts, *[r.start_ts for r in rows]])
        hi = max([hi_ts, *[(r.end_ts or r.start_ts) for r in rows]])
        result = retention.delete_chunks(db, self._data_dir, ids)
        with db.tx() as conn:
            # Frames seen while an excluded window was skipped belong to no chunk.
            orphan = frames_db.delete_unchunked_frames(conn, lo, hi)
            obs = obs_db.delete_overlapping(conn, lo, hi)
        for old in (self._data_dir / "cache" / "media").glob("chunk-*.mp4"):
            if int(old.name.split("-")[1]) in ids:
                old.unlink(missing_ok=True)
        return Deleted(chunks=len(ids), frames=result["frames"] + orphan,
                       bytes=result["bytes"], observations=obs, start=lo, end=hi)

    def enforce_retention(self) -> RetentionResult:
        """Evict the oldest chunks over [record] max_bytes / max_age."""
        rs = self._ctx.settings.record
        return RetentionResult.model_validate(retention.enforce(
            self._ctx.db, self._data_dir, max_bytes=rs.max_bytes, max_age=rs.max_age))
