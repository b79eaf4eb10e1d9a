"""The recorder loop: grab → filter → canvas → encode → index, until told to stop.

Fatal errors (no display, no working encoder) stop the loop; passing ones (one encoder
failing mid-chunk, a full disk, a locked index) are logged to ``<data-dir>/logs/recorder.log``
and the loop keeps going — the ActivityWatch watcher split.

Index writes are batched about once a second in one transaction (frames rows plus the
chunk's running frames/bytes/end_ts and a heartbeat), so ``localvideo chunks`` shows the live
chunk growing while the recorder costs one small SQLite commit per second.
"""

from __future__ import annotations

import errno
import json
import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import crypto, media, runtime
from ..capture.base import CaptureBackend, Frame
from ..capture.health import CaptureHealth
from ..config import Settings
from ..errors import CaptureError, DiskFullError, EncoderError, ScreenLockedError
from ..store import frames as frames_db
from ..store import retention
from ..store.db import Database, put_kv
from ..store.frames import SCREEN_TITLES
from ..store.layout import chunk_path
from .canvas import Canvas, Rect, canvas_size
from .encoder import Writer, open_writer, plan_encoders
from .filter import LOCKED_TITLE, ChangeTest, Exclusion, FrameFilter

log = logging.getLogger("localvideo.record")

FLUSH_EVERY = 1.0        # seconds between index commits
STATUS_EVERY = 1.0       # seconds between on_status calls
DISK_CHECK_EVERY = 2.0   # seconds between free-space checks
RESUME_HEADROOM = 8_000_000  # free bytes needed to resume after a disk-full pause
MAX_PENDING_ROWS = 100_000  # frames rows kept in memory while the index cannot be written
MAX_CAPTURE_ERRORS = 20    # consecutive failed grabs before the recorder gives up
# Seconds between malloc_trim calls. glibc raises its mmap threshold to the largest block
# freed (up to 32 MB), so after the first 8 MB grab the grabs, frame copies and planes come
# from the heap and freed ones stay resident: RSS crept 144 -> 160 MB over a 3-min maximized
# run. Mapping big blocks instead (a fixed threshold) held RSS at 135 MB but cost +60 % CPU
# in page faults; trimming every few seconds costs one re-fault of a buffer per trim.
TRIM_EVERY = 10.0
LOCKED_RETRY = 5.0         # seconds between grabs while the screen is locked


def setup_logging(data_dir: Path) -> None:
    """Send recorder and FFmpeg messages to <data-dir>/logs/recorder.log (never /dev/null)."""
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    target = str(logs / "recorder.log")
    for name in ("localvideo", "libav"):
        lg = logging.getLogger(name)
        if any(getattr(h, "baseFilename", None) == target for h in lg.handlers):
            continue
        handler = logging.handlers.RotatingFileHandler(target, maxBytes=5_000_000, backupCount=2)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    # PyAV forwards FFmpeg's own log lines to the "libav" Python logger at this level.
    media.forward_ffmpeg_logs()


@dataclass
class _Chunk:
    id: int
    path: Path
    rel: str
    start_ts: float
    writer: Writer
    canvas: Canvas
    screen: tuple[int, int]
    end_ts: float
    last_pts: float | None = None  # seconds, of the last encoded frame
    # The mp4 muxer keeps the newest sample back until the next one arrives (it needs its
    # duration), so after a change the picture would stay unreadable through an idle stretch.
    held: bool = False


@dataclass
class Stats:
    started: float = field(default_factory=time.time)
    frames_seen: int = 0
    frames_encoded: int = 0
    frames_skipped: int = 0
    frames_excluded: int = 0
    app: str = ""
    title: str = ""
    paused: bool = False
    disk_paused: bool = False
    message: str = ""
    last_error: str | None = None
    chunks: list[str] = field(default_factory=list)


class Recorder:
    """One recording session on one data dir (the caller holds the recorder lock)."""

    def __init__(self, settings: Settings, db: Database, device_id: str,
                 backend: CaptureBackend) -> None:
        self.settings = settings
        self.rs = settings.record
        self.db = db
        self.device_id = device_id
        self.backend = backend
        # Each frame's pixels are compared, copied where kept and drawn within one tick, so
        # the backend may lend its own buffer instead of copying it (X11: 1.1 ms and 8 MB
        # per 1080p grab saved).
        backend.share_pixels()
        self.filter = FrameFilter(Exclusion(self.rs.exclude_apps, self.rs.exclude_titles),
                                  self.rs.excluded_action, ChangeTest())
        self.plan = plan_encoders(settings.data_dir, self.rs.codec)
        self.encoder_index = 0
        self.chunk: _Chunk | None = None
        self.stats = Stats()
        self._rows: list[frames_db.FrameInsert] = []
        self._last_flush = 0.0
        self._last_trim = time.monotonic()
        self._last_disk_check = 0.0
        self._capture_errors = 0
        self._locked_until: float | None = None   # monotonic time of the next try while locked
        self._blank = False   # the last grab was one colour with a window on screen
        # The display's pixels per point (Frame.extra["scale"]): how far the canvas may
        # shrink a big window and keep its text legible (canvas.canvas_size).
        self._scale = 1.0
        # Is the capture really seeing the screen? (capture/health.py; shown by status)
        self.health = CaptureHealth(backend.describe())

    # -- public ---------------------------------------------------------------------------
    @property
    def encoder(self) -> str:
        return self.plan.chain[self.encoder_index]

    def run(self, duration: float | None = None, stop: threading.Event | None = None,
            on_status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        stop = stop or threading.Event()
        interval = 1.0 / max(self.rs.fps, 0.01)
        t0 = time.monotonic()
        next_tick = t0
        last_status = 0.0
        log.info("recording started: pid %d, mode %s, %.2f fps, encoder %s (chain %s)",
                 os.getpid(), self.rs.mode, self.rs.fps, self.encoder, self.plan.chain)
        runtime.freeze_startup()
        try:
            while not stop.is_set():
                now = time.monotonic()
                if duration is not None and now - t0 >= duration:
                    break
                if next_tick > now:
                    wait = next_tick - now
                    if duration is not None:
                        wait = min(wait, max(0.0, t0 + duration - now))
                    if stop.wait(wait):
                        break
                    continue
                # Never try to catch up with missed ticks: the next one is one interval away.
                next_tick = max(next_tick + interval, now)
                self._tick()
                mono = time.monotonic()
                if mono - self._last_flush >= FLUSH_EVERY:
                    self._flush()
                if mono - self._last_trim >= TRIM_EVERY:
                    self._last_trim = mono
                    runtime.trim_heap()
                if on_status and mono - last_status >= STATUS_EVERY:
                    last_status = mono
                    on_status(self.status())
        finally:
            self._close_chunk()
            self._flush(final=True)
            log.info("recording stopped: %d seen, %d encoded, %d unchanged, %d excluded",
                     self.stats.frames_seen, self.stats.frames_encoded,
                     self.stats.frames_skipped, self.stats.frames_excluded)
        summary = self.status()
        summary["chunks"] = list(self.stats.chunks)
        return summary

    def status(self) -> dict[str, Any]:
        s = self.stats
        ch = self.chunk
        return {
            "elapsed": round(time.time() - s.started, 3),
            "app": s.app, "title": s.title,
            "frames_seen": s.frames_seen, "frames_encoded": s.frames_encoded,
            "frames_skipped": s.frames_skipped, "frames_excluded": s.frames_excluded,
            "chunk": ch.rel if ch else None,
            "bytes": ch.writer.bytes if ch else 0,
            "encoder": self.encoder,
            "paused": s.paused, "disk_paused": s.disk_paused,
            "message": s.message, "last_error": s.last_error,
            "health": self.health.status(),
        }

    # -- one frame ------------------------------------------------------------------------
    def _tick(self) -> None:
        paused = bool(self.db.get_kv("paused", False))
        if paused != self.stats.paused:
            self.stats.paused = paused
            log.info("recording %s", "paused by the user" if paused else "resumed")
            self.stats.message = "paused (localvideo resume to continue)" if paused else ""
            if paused:
                self._close_chunk()
        if paused:
            self.health.idle()
            return
        if not self._disk_ok():
            self.health.idle()
            return
        if self._locked_until is not None and time.monotonic() < self._locked_until:
            return
        try:
            frame = self.backend.grab()
        except ScreenLockedError as exc:
            self._screen_locked(str(exc))
            return
        except CaptureError as exc:
            # A window closing mid-grab is a passing error; a capture that keeps failing is not.
            self._capture_errors += 1
            self.stats.last_error = str(exc)
            self.health.failed(str(exc))
            log.warning("grab failed (%d in a row): %s", self._capture_errors, exc)
            if self._capture_errors >= MAX_CAPTURE_ERRORS:
                raise
            return
        self._capture_errors = 0
        if self._locked_until is not None:
            self._locked_until = None
            self.stats.message = ""
            log.info("screen unlocked: recording again")
        self.stats.frames_seen += 1
        self.health.seen(frame)
        if frame is None:
            return
        if (self.health.state == "blank" and self.health.frame_blank
                and not self.filter.exclusion.matches(frame.app, frame.title)):
            self._screen_blank(frame)
            return
        self._blank = False
        try:
            self._handle(frame)
        except DiskFullError as exc:
            self._disk_full(str(exc))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                self._disk_full(f"disk full while writing a chunk: {exc}")
            else:
                raise

    def _screen_locked(self, why: str) -> None:
        """The screen is locked: a state, not a failure. The chunk ends where the picture
        ended (no black video), the index gets a row saying so at each try, and the next
        try waits LOCKED_RETRY seconds."""
        if self._locked_until is None:
            log.info("%s: nothing is recorded until it is unlocked", why)
            self.stats.message = "screen locked: recording resumes when it is unlocked"
            self._close_chunk()
        self._capture_errors = 0
        self._locked_until = time.monotonic() + LOCKED_RETRY
        self.health.locked()
        self._rows.append((None, time.time(), None, "", LOCKED_TITLE, 0, 0, 0, 0,
                           self.backend.display, 0, 0, "locked"))

    def _screen_blank(self, frame: Frame) -> None:
        """Health says blank: one colour for seconds while a window is known to be on screen
        (capture/health.py) — a blind capture, a screen saver, a lock screen the backend
        cannot name. Not encoded (a black video shows nothing and costs bytes and OCR); the
        chunk ends where the picture did, as for a locked screen, and the index says
        "blank" for each moment. (The few seconds before the verdict are one encoded frame:
        a single one-colour window is no reason to stop recording.)"""
        if not self._blank:
            self._blank = True
            log.info("one-colour frames with %s on screen: not encoded, indexed as blank",
                     frame.app or frame.title or "a window")
            self._close_chunk()
        self.stats.app, self.stats.title = frame.app, SCREEN_TITLES["blank"]
        self._rows.append((None, frame.ts, None, frame.app, SCREEN_TITLES["blank"], 0, 0, 0, 0,
                           frame.display, 0, 0, "blank"))

    def _handle(self, frame: Frame) -> None:
        screen = (frame.screen_w or frame.size[0], frame.screen_h or frame.size[1])
        self._scale = float(frame.extra.get("scale") or 1.0)  # type: ignore[arg-type]
        ch = self.chunk
        if ch is not None and (frame.ts - ch.start_ts >= self.rs.chunk_seconds
                               or screen != ch.screen):
            ch = None          # no reference may keep the old chunk's canvas past its close
            self._close_chunk()
        excluded = self.filter.exclusion.matches(frame.app, frame.title)
        skip_excluded = excluded and self.filter.excluded_action == "skip"
        if self.chunk is None and not skip_excluded:
            self._open_chunk(frame.ts, screen)
        ch = self.chunk
        fit = self.rs.mode == "display"
        rect = ch.canvas.layout(frame, fit)[0] if ch else Rect(0, 0, 0, 0)
        decision = self.filter.decide(frame, rect.as_tuple())
        self.stats.app = frame.app
        self.stats.title = decision.title
        if decision.excluded:
            self.stats.frames_excluded += 1
        pts: float | None = None
        if ch is not None and decision.changed:
            pts = self._encode(frame, decision.excluded, fit, decision.band)
            ch = self.chunk  # an encoder fallback may have opened a new chunk
        elif ch is not None and not skip_excluded:
            pts = ch.last_pts
            self.stats.frames_skipped += 1
            if ch.held:
                self._push_out(ch, frame.ts)
        if ch is not None:
            ch.end_ts = frame.ts
        self._rows.append((ch.id if ch else None, frame.ts, pts, frame.app, decision.title,
                           rect.x, rect.y, rect.w, rect.h, frame.display,
                           1 if decision.changed else 0, 1 if decision.excluded else 0))
        if len(self._rows) > MAX_PENDING_ROWS:
            del self._rows[: len(self._rows) - MAX_PENDING_ROWS]

    def _encode(self, frame: Frame, excluded: bool, fit: bool,
                band: tuple[int, int] | None = None) -> float:
        """Draw and encode; on encoder failure close the chunk, fall back, keep the frame.
        ``band``: the rows that changed since the last frame (None: all)."""
        while True:
            ch = self.chunk
            assert ch is not None
            if excluded:
                ch.canvas.blank()
            else:
                ch.canvas.draw(frame, fit, band)
            pts_ms = max(0, round((frame.ts - ch.start_ts) * 1000))
            try:
                ch.writer.write(ch.canvas.video_frame(), pts_ms)
            except EncoderError as exc:
                self.stats.last_error = str(exc)
                log.error("%s", exc)
                if self.encoder_index + 1 >= len(self.plan.chain):
                    raise EncoderError(f"the last working encoder failed: {exc}",
                                       "see <data-dir>/logs/recorder.log; try --codec h264") from exc
                screen = ch.screen
                self._close_chunk()
                self.encoder_index += 1
                log.warning("falling back to encoder %s", self.encoder)
                self._open_chunk(frame.ts, screen)
                self.filter.reset()
                continue
            ch.last_pts = (ch.writer.last_pts or 0) / 1000
            ch.held = True
            self.stats.frames_encoded += 1
            self.health.encoded()
            return ch.last_pts

    def _push_out(self, ch: _Chunk, ts: float) -> None:
        """Encode the unchanged canvas once more so the muxer writes the held picture out.

        Costs one all-skip P-frame (a few hundred bytes) per burst of changes and keeps a
        chunk being written readable to within one frame interval even when the screen then
        sits still. The index keeps pointing at the real picture, not at this copy.
        """
        ch.held = False
        try:
            ch.writer.write(ch.canvas.video_frame(), max(0, round((ts - ch.start_ts) * 1000)))
        except EncoderError as exc:
            # Not fatal: the next real change goes through the fallback path.
            self.stats.last_error = str(exc)
            log.error("%s", exc)

    # -- chunks ---------------------------------------------------------------------------
    def _open_chunk(self, ts: float, screen: tuple[int, int]) -> None:
        path = chunk_path(self.settings.recordings_dir, self.device_id, ts)
        base, n = path, 1
        while path.exists() or frames_db.chunk_path_taken(
                self.db, path.relative_to(self.settings.data_dir).as_posix()):
            path = base.with_name(f"{base.stem}_{n}.mp4")
            n += 1
        rel = path.relative_to(self.settings.data_dir).as_posix()
        w, h = canvas_size(screen[0], screen[1], self.rs.canvas_max, self._scale)
        # Encryption at rest: sealed to the store's public key as it is written (crypto.py).
        seal = crypto.sealer_for(self.settings.data_dir)
        while seal is not None and self.encoder.startswith("cli:") \
                and self.encoder_index + 1 < len(self.plan.chain):
            # The ffmpeg program writes its own file, which cannot be sealed as it grows.
            self.encoder_index += 1
        writer = open_writer(path, w, h, self.encoder, self.rs.quality, self.rs.fps, seal)
        try:
            chunk_id = frames_db.open_chunk(
                self.db, path=rel, device_id=self.device_id, start_ts=ts, codec=writer.codec,
                encoder=writer.encoder, width=w, height=h)
        except BaseException:
            writer.close()
            path.unlink(missing_ok=True)
            raise
        self.chunk = _Chunk(chunk_id, path, rel, ts, writer, Canvas(w, h), screen, ts)
        # A chunk must start with a real picture: the first frame is always encoded.
        self.filter.reset()
        self.stats.chunks.append(rel)
        log.info("chunk %s opened (%dx%d, %s)", rel, w, h, writer.encoder)

    def _close_chunk(self, state: str = "closed") -> None:
        ch = self.chunk
        if ch is None:
            return
        self.chunk = None
        self._finish_chunk(ch, state)
        del ch                  # the canvas and its planes go before the heap is trimmed
        runtime.trim_heap()

    def _finish_chunk(self, ch: _Chunk, state: str) -> None:
        ch.writer.close()
        self._flush()
        if ch.writer.frames == 0:
            self._drop_empty(ch)
            return
        try:
            frames_db.close_chunk(self.db, ch.id, state=state, end_ts=ch.end_ts,
                                  frames=ch.writer.frames, size=ch.writer.bytes)
        except DiskFullError as exc:
            # The row stays 'recording'; recovery closes it properly on the next start.
            self.stats.last_error = str(exc)
            log.error("%s", exc)
        log.info("chunk %s %s: %d frames, %d bytes", ch.rel, state, ch.writer.frames,
                 ch.writer.bytes)

    def _drop_empty(self, ch: _Chunk) -> None:
        """A chunk that never got a picture (its encoder failed at once) is not kept."""
        try:
            # Rows seen meanwhile stay: they just point at no picture.
            frames_db.drop_chunk(self.db, ch.id)
            ch.path.unlink(missing_ok=True)
            if ch.rel in self.stats.chunks:
                self.stats.chunks.remove(ch.rel)
        except DiskFullError as exc:
            self.stats.last_error = str(exc)
            log.error("%s", exc)
        log.info("chunk %s dropped: no frame was encoded into it", ch.rel)

    # -- index ----------------------------------------------------------------------------
    def _flush(self, final: bool = False) -> None:
        self._last_flush = time.monotonic()
        ch = self.chunk
        try:
            with self.db.tx() as conn:
                if self._rows:
                    frames_db.insert_frames(conn, self._rows)
                if ch is not None:
                    frames_db.update_chunk_progress(conn, ch.id, end_ts=ch.end_ts,
                                                    frames=ch.writer.frames, size=ch.writer.bytes)
                put_kv(conn, "recorder", _json({
                    "pid": None if final else os.getpid(), "heartbeat": time.time(),
                    "chunk": ch.rel if ch else None, "encoder": self.encoder,
                    "paused": self.stats.paused, "disk_paused": self.stats.disk_paused,
                    "message": self.stats.message, "last_error": self.stats.last_error,
                    "started": self.stats.started, "health": self.health.status()}))
            self._rows.clear()
        except DiskFullError as exc:
            # Rows stay in memory and go in with the next successful commit.
            self._disk_full(str(exc))

    # -- disk -----------------------------------------------------------------------------
    def _disk_ok(self) -> bool:
        mono = time.monotonic()
        if not self.stats.disk_paused and mono - self._last_disk_check < DISK_CHECK_EVERY:
            return True
        self._last_disk_check = mono
        free = retention.disk_free(self.settings.data_dir)
        need = self.rs.min_free_bytes
        if self.stats.disk_paused:
            # After a real ENOSPC, wait for some headroom, not just for "not zero".
            need = max(need, RESUME_HEADROOM)
        if free >= need:
            if self.stats.disk_paused:
                self.stats.disk_paused = False
                self.stats.message = ""
                log.warning("free space is back (%d bytes): recording resumed", free)
            return True
        if not self.stats.disk_paused:
            # Retention first: evicting old chunks may be enough to keep going.
            retention.enforce(self.db, self.settings.data_dir, max_bytes=self.rs.max_bytes,
                              max_age=self.rs.max_age)
            free = retention.disk_free(self.settings.data_dir)
            if free >= need:
                return True
            self._disk_full(f"only {free} bytes free on {self.settings.data_dir}, below "
                            f"min_free_bytes {need}")
        return False

    def _disk_full(self, why: str) -> None:
        if not self.stats.disk_paused:
            log.error("recording paused: %s", why)
        self.stats.disk_paused = True
        self.stats.last_error = why
        self.stats.message = ("disk full: recording paused until space returns "
                              "(free space or lower --min-free-bytes)")
        self._last_disk_check = time.monotonic()
        if self.chunk is not None:
            self._close_chunk()


def _json(value: Any) -> str:
    return json.dumps(value)
