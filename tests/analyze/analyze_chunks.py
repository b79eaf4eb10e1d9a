"""Real chunks for the analysis tests: rendered text encoded by PyAV into fragmented MP4.

The files are written the way the recorder writes them (H.264, one keyframe per chunk,
variable frame rate with pts in a 1/1000 time base, a fragment per frame flushed at once)
and their index rows go into the real ``chunks``/``frames`` tables, so the analysis loop
reads them exactly as it reads a recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from localvideo.store.db import Database

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CANVAS = (640, 360)


def render(lines: list[str], size: tuple[int, int] = CANVAS, *, dark: bool = False,
           font_size: int = 20, box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A canvas with ``lines`` of text drawn inside ``box`` (the 'window'), gray around it."""
    canvas = Image.new("RGB", size, (90, 90, 90))
    x, y, w, h = box or (0, 0, *size)
    bg, fg = ((20, 20, 20), (230, 230, 230)) if dark else ((255, 255, 255), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=bg)
    font = ImageFont.truetype(FONT, font_size)
    for i, line in enumerate(lines):
        draw.text((x + 12, y + 12 + i * int(font_size * 1.5)), line, fill=fg, font=font)
    return canvas


@dataclass
class Shot:
    """One moment of the recording: what the screen showed and which window was in front."""

    t: float                    # seconds into the chunk
    image: Image.Image | None   # None: unchanged since the previous shot (not encoded)
    app: str = "xterm"
    title: str = "shell"
    box: tuple[int, int, int, int] | None = None
    excluded: bool = False


@dataclass
class ChunkWriter:
    """Writes one chunk incrementally, inserting each frame's index row as the recorder does."""

    db: Database
    data_dir: Path
    start_ts: float
    name: str = "chunk"
    size: tuple[int, int] = CANVAS
    state: str = "recording"
    chunk_id: int = 0
    frames: int = 0
    last_pts: float | None = None
    _out: av.container.OutputContainer | None = field(default=None, repr=False)
    _stream: av.VideoStream | None = field(default=None, repr=False)
    _last_image: Image.Image | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        rel = Path("observer-recordings") / "test-device" / f"{self.name}.mp4"
        self.path = self.data_dir / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rel = str(rel)
        cur = self.db.execute(
            "INSERT INTO chunks(path, device_id, start_ts, end_ts, codec, encoder, width, height,"
            " state) VALUES (?, 'test-device', ?, ?, 'h264', 'libx264', ?, ?, 'recording')",
            (self.rel, self.start_ts, self.start_ts, *self.size))
        self.chunk_id = int(cur.lastrowid or 0)
        self._out = av.open(str(self.path), "w", format="mp4", options={
            "movflags": "empty_moov+default_base_moof+frag_every_frame",
            "flush_packets": "1"})
        stream = self._out.add_stream("libx264", rate=1000)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"preset": "veryfast", "crf": "23", "tune": "zerolatency",
                          "x264-params": "keyint=100000:min-keyint=100000:bframes=0:scenecut=0"}
        stream.thread_count = 1
        self._stream = stream

    def add(self, shot: Shot) -> None:
        assert self._out is not None and self._stream is not None
        box = shot.box or (0, 0, *self.size)
        if shot.image is not None:
            frame = av.VideoFrame.from_ndarray(np.asarray(shot.image.convert("RGB")),
                                               format="rgb24")
            frame.pts = int(round(shot.t * 1000))
            frame.time_base = Fraction(1, 1000)
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
            self.last_pts = round(shot.t, 3)
            self.frames += 1
            self._last_image = shot.image
        assert self.last_pts is not None, "the first shot must have an image"
        self.db.execute(
            "INSERT INTO frames(chunk_id, ts, pts, app, title, x, y, w, h, display, changed,"
            " excluded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '1', ?, ?)",
            (self.chunk_id, self.start_ts + shot.t, self.last_pts, shot.app, shot.title, *box,
             int(shot.image is not None), int(shot.excluded)))
        self.db.execute("UPDATE chunks SET end_ts = ?, frames = ? WHERE id = ?",
                        (self.start_ts + shot.t, self.frames, self.chunk_id))

    def push_out(self, t: float) -> None:
        """Encode the last picture again with no index row, as the recorder does so the
        muxer writes a held frame out while the screen sits still."""
        assert self._out is not None and self._stream is not None and self._last_image
        frame = av.VideoFrame.from_ndarray(np.asarray(self._last_image.convert("RGB")),
                                           format="rgb24")
        frame.pts = int(round(t * 1000))
        frame.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def close(self, state: str = "closed") -> None:
        assert self._out is not None and self._stream is not None
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        self._out = None
        self.db.execute("UPDATE chunks SET state = ?, bytes = ? WHERE id = ?",
                        (state, self.path.stat().st_size, self.chunk_id))


def write_chunk(db: Database, data_dir: Path, start_ts: float, shots: list[Shot],
                name: str = "chunk", size: tuple[int, int] = CANVAS) -> ChunkWriter:
    w = ChunkWriter(db, data_dir, start_ts, name=name, size=size)
    for shot in shots:
        w.add(shot)
    w.close()
    return w


def session_shots() -> list[Shot]:
    """A minute of work: a terminal with a failing build, a browser, back to the terminal."""
    term = ["$ make test", "error: test_login failed", "zanzibar-7 build-failed"]
    web = ["Jenkins build 42", "quokka dashboard déjà vu"]
    return [
        Shot(0.0, render(term), "xterm", "~/src/app"),
        Shot(0.5, None, "xterm", "~/src/app"),
        Shot(1.0, None, "xterm", "~/src/app"),
        Shot(4.0, render(web, dark=True), "firefox", "Jenkins - Mozilla Firefox"),
        Shot(4.5, None, "firefox", "Jenkins - Mozilla Firefox"),
        Shot(6.0, render(web + ["contact jane.doe@example.com"], dark=True), "firefox",
             "Contact - Mozilla Firefox"),
        Shot(7.0, render(["secret vault entry hunter2"]), "keepassxc", "Passwords",
             excluded=True),
        Shot(8.0, render(term + ["$ make test", "error: test_login failed again"]), "xterm",
             "~/src/app"),
        Shot(20.0, render(term + ["$ git log", "commit 1234 fix login"]), "xterm",
             "~/src/app"),
    ]
