"""The one place that opens PyAV: probe, decode, transcode, and the H.264 writers.

Everything else in the package asks this module for media work, so there is one answer to
"how is a file opened, what happens at a torn fragment, how is H.264 written":

* :func:`probe` — codec, size, rate, frame count and duration of a file;
  :func:`scan_decodable` — decode to the end and count what decodes (crash recovery);
* :func:`frame_at` — the picture shown at a time; :func:`iter_frames` and
  :class:`IncrementalDecoder` — frames of a chunk, also while it is still being written;
* :class:`H264Writer` / :func:`write_h264` — the one deterministic H.264 MP4 writer (synth
  clips, ComfyUI outputs, moment playback through :func:`transcode_h264`);
* :class:`VideoOutput` — the low-level stream the recorder's chunk writers drive (fragmented
  MP4 on disk, or NUT into an ffmpeg pipe), one ``encode`` call per frame and no copies.

PyAV's exception and frame types are re-exported (:data:`FFmpegError`, :data:`VideoFrame`)
for callers that handle frames themselves; they never import ``av``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from . import crypto
from .errors import EncoderError, MediaError, NotFoundError

log = logging.getLogger("localvideo.media")

FFmpegError = av.FFmpegError
VideoFrame = av.VideoFrame
# One per consumer that converts many frames of one size: its SwsContext is reused.
Reformatter = VideoReformatter

# PyAV raises these for a damaged or half-written file; OSError covers a file that vanished.
_READ_ERRORS = (av.FFmpegError, EOFError, OSError, ValueError)


# ---------------------------------------------------------------------------------------
# Library facts
# ---------------------------------------------------------------------------------------

def pyav_version() -> str:
    return str(av.__version__)


def version_key() -> str:
    """PyAV and FFmpeg versions in one string: a cache of encoder probes is keyed by it."""
    ffmpeg = getattr(av, "ffmpeg_version_info", "?")
    return f"pyav-{av.__version__}/ffmpeg-{ffmpeg}"


def has_encoder(name: str) -> str | None:
    """None when PyAV's FFmpeg build has the encoder ``name``, else why not."""
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError, KeyError) as exc:
        return str(exc) or type(exc).__name__
    return None


def forward_ffmpeg_logs() -> None:
    """Have PyAV forward FFmpeg's own warnings and errors to the ``libav`` Python logger."""
    av.logging.set_level(av.logging.WARNING)


# ---------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------

def frame_from_ndarray(pixels: np.ndarray, format: str = "rgb24") -> VideoFrame:
    """A frame holding a copy of ``pixels`` (H, W, C) in ``format``."""
    return av.VideoFrame.from_ndarray(pixels, format=format)


def frame_over_buffer(pixels: np.ndarray, format: str = "bgra") -> VideoFrame:
    """A frame that wraps ``pixels`` without copying (C-contiguous); keep the array alive."""
    return av.VideoFrame.from_numpy_buffer(pixels, format=format)


def blank_frame(width: int, height: int, format: str = "yuv420p") -> VideoFrame:
    """An allocated frame (contents undefined) to fill plane by plane."""
    return av.VideoFrame(width, height, format)


def set_keyframe(frame: VideoFrame, key: bool) -> None:
    """Force ``frame`` to be a keyframe, or let the encoder decide (clears a decoded type)."""
    frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MediaInfo:
    path: str
    container: str          # FFmpeg's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str              # "h264", "hevc", ...
    width: int
    height: int
    fps: float              # average rate; 0.0 when the file does not say
    frames: int             # from the header, else counted by decoding
    duration: float         # seconds: the container's, else the last frame's pts
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decodable:
    """What decodes in a file that may end in a torn fragment (a killed recorder's chunk)."""

    frames: int              # decodable frames
    last_pts: float | None   # seconds into the file of the last decodable frame
    width: int
    height: int
    codec: str | None
    error: str | None = None  # why decoding stopped early, or why nothing decoded


# FFmpeg's limited-range (MPEG) luma → gray, value by value: (Y − 16) · 255 / 219, rounded.
_LIMITED_TO_FULL = np.clip((np.arange(256) - 16) * 255 / 219 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Decoded:
    """One decoded frame and its time in seconds into the file."""

    pts: float
    frame: VideoFrame

    def gray(self) -> np.ndarray:
        return self.frame.to_ndarray(format="gray")

    def gray_at(self, rows: slice, cols: slice) -> np.ndarray:
        """``gray()[rows, cols]`` taken from the luma plane: a strided sample costs only its
        own pixels. Exactly FFmpeg's conversion (tests/test_media.py checks all 256 values)."""
        f = self.frame
        if f.format.name != "yuv420p":
            return np.ascontiguousarray(self.gray()[rows, cols])
        plane: Any = f.planes[0]   # a buffer; its stub does not say so
        luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        sample = luma[:, :f.width][rows, cols]
        # Full-range luma is gray as it is; limited (MPEG) range, the default, is stretched.
        return np.ascontiguousarray(sample) if f.color_range == 2 else _LIMITED_TO_FULL[sample]

    def rgb(self) -> np.ndarray:
        return self.frame.to_ndarray(format="rgb24")

    def image(self, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        im = self.frame.to_image()
        return im.crop(box) if box else im


def _source(path: Path) -> Any:
    """What PyAV opens for ``path``: the path, or a sealed chunk's plaintext in memory
    (encryption at rest; see crypto.py)."""
    return crypto.plain_source(Path(path))


def _open_read(path: Path) -> Any:
    try:
        return av.open(_source(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open {path}: {exc}",
                         "the file may be damaged or still being written") from exc


def _seconds(frame: Any, tb: float | None = None) -> float | None:
    if frame.pts is None:
        return None
    if tb is not None:
        return float(frame.pts * tb)
    return float(frame.pts * frame.time_base) if frame.time_base else None


def probe(path: Path) -> MediaInfo:
    """Codec, size, rate, frame count and duration of the first video stream of ``path``.

    A fragmented MP4 states no frame count in its header: those frames are counted by
    decoding (what a torn last fragment holds is not counted).
    """
    path = Path(path)
    with _open_read(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        frames = int(stream.frames or 0)
        duration = float(container.duration) / av.time_base if container.duration else 0.0
        if not frames or not duration:
            counted, last = 0, None
            try:
                for frame in container.decode(stream):
                    counted += 1
                    last = _seconds(frame) if frame.pts is not None else last
            except _READ_ERRORS as exc:
                log.info("probe of %s stopped at frame %d: %s", path, counted, exc)
            frames = frames or counted
            duration = duration or (last or 0.0)
        return MediaInfo(path=str(path), container=container.format.name, codec=cc.name,
                         width=int(cc.width), height=int(cc.height),
                         fps=float(stream.average_rate or 0), frames=frames,
                         duration=duration, bytes=path.stat().st_size)


def scan_decodable(path: Path) -> Decodable:
    """Decode ``path`` to its end (or to the first undecodable fragment); never raises."""
    frames = 0
    last: float | None = None
    width = height = 0
    codec: str | None = None
    error: str | None = None
    try:
        with av.open(_source(path)) as container:
            if not container.streams.video:
                return Decodable(0, None, 0, 0, None, "no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            try:
                for frame in container.decode(stream):
                    frames += 1
                    t = _seconds(frame)
                    if t is not None:
                        last = t
            except (av.FFmpegError, OSError, ValueError) as exc:
                # A torn last fragment: everything before it still counts.
                error = str(exc)
    except (av.FFmpegError, OSError, ValueError, MediaError) as exc:
        error = str(exc)
    return Decodable(frames, last, width, height, codec, error)


def frame_at(path: Path, t: float) -> Image.Image:
    """The picture shown at ``t`` seconds into ``path``: the last frame whose pts is ≤ t
    (the first frame when ``t`` is before it)."""
    best: Image.Image | None = None
    with _open_read(Path(path)) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                pts = _seconds(frame)
                if pts is not None and pts > t + 0.0005 and best is not None:
                    break
                best = frame.to_image()
        except _READ_ERRORS:
            pass  # a chunk still being written ends in a partial fragment
    if best is None:
        raise NotFoundError(f"{Path(path).name} has no decodable frame at {t:.3f}s",
                            "the chunk may be damaged; see `localvideo chunks`")
    return best


# Opening a container decodes its first frames to guess the frame rate (FFmpeg's
# fpsprobesize). The readers here go by each frame's pts, so that is skipped where it is
# paid over and over: the analyzer reopens the chunk being written on every pass, and a
# 60-s chunk of one fragment per frame took 16 ms to open, 6.5 ms without the guess.
NO_RATE_GUESS = {"fpsprobesize": "0"}


def _open_video(path: Path, options: dict[str, str] | None = None
                ) -> tuple[Any, Any, float] | None:
    """The container, its video stream and its time base in seconds; None when the file
    cannot be opened (yet) or holds no video stream."""
    try:
        container = av.open(_source(path), mode="r", options=options)
    except (av.FFmpegError, OSError, MediaError):
        return None
    if not container.streams.video:
        container.close()
        return None
    stream = container.streams.video[0]
    return container, stream, float(stream.time_base) if stream.time_base else 0.001


def _pts_after(frame: Any, tb: float, after: float | None) -> float | None:
    """The frame's pts in seconds, or None for a frame without one or not past ``after``."""
    if frame.pts is None:
        return None
    pts = round(frame.pts * tb, 3)
    if after is not None and pts <= after + 1e-4:
        return None
    return pts


def iter_frames(path: Path, after: float | None = None, *,
                strict: bool = False) -> Iterator[Decoded]:
    """Decoded frames of ``path`` with pts > ``after`` (seconds, ms precision), in order.

    A chunk still being written ends in a fragment that is only partly on disk: reading stops
    quietly at the first error, and the caller resumes from the last pts it handled.
    ``strict`` (a finished file from elsewhere): an unreadable file or a decoding error
    raises MediaError instead.
    """
    if strict:
        _open_read(Path(path)).close()  # the reason it cannot be opened, as a MediaError
    opened = _open_video(path)
    if opened is None:
        if strict:
            raise MediaError(f"{path} has no video stream")
        return
    container, stream, tb = opened
    try:
        stream.thread_type = "SLICE"
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    # A sample cut short at the end of a file still being written: the
                    # rest of it is not on disk yet; the next pass reads it whole.
                    if strict:
                        raise MediaError(f"{path} ends in a damaged packet")
                    return
                for frame in packet.decode():
                    pts = _pts_after(frame, tb, after)
                    if pts is not None:
                        yield Decoded(pts, frame)
        except (av.FFmpegError, EOFError, OSError) as exc:
            if strict:
                raise MediaError(f"cannot decode {path}: {exc}") from exc
            return
    finally:
        container.close()


class IncrementalDecoder:
    """Decodes a file still being written pass after pass, each frame only once.

    :func:`iter_frames` starts from the chunk's one keyframe every time, which for a 60 s
    chunk polled every 2 s decodes each frame ~15 times. This keeps the decoder (its
    reference frames) between passes: each pass demuxes the file again — cheap, packets are
    not decoded — skips the packets already fed and decodes only the new ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ctx: Any = None
        self.fed: int | None = None           # pts (stream units) of the last packet decoded
        self.kept: list[Decoded] = []         # frames of the last pass, in case the caller
                                              # stopped before handling them

    def frames(self, after: float | None, final: bool = False) -> Iterator[Decoded]:
        """Frames with pts > ``after``; ``final``: the file is complete, drain the decoder."""
        kept, self.kept = [d for d in self.kept if after is None or d.pts > after + 1e-4], []
        for d in kept:
            self.kept.append(d)
            yield d
        opened = _open_video(self.path, NO_RATE_GUESS)
        if opened is None:
            return
        container, stream, tb = opened
        try:
            if self.ctx is None:
                ctx = av.CodecContext.create(stream.codec_context.name, "r")
                assert isinstance(ctx, av.VideoCodecContext)
                ctx.extradata = stream.codec_context.extradata
                ctx.thread_type = "SLICE"
                self.ctx = ctx
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    return
                if packet.pts is None or packet.size == 0:
                    if not final:
                        continue      # end of what is on disk: the chunk may still grow
                    frames = self.ctx.decode(None)      # drain frames held for reordering
                elif self.fed is not None and packet.pts <= self.fed:
                    continue
                else:
                    frames = self.ctx.decode(packet)
                    self.fed = packet.pts
                for frame in frames:
                    pts = _pts_after(frame, tb, after)
                    if pts is None:
                        continue
                    d = Decoded(pts, frame)
                    self.kept = [*self.kept[-1:], d]
                    yield d
        except (av.FFmpegError, EOFError, OSError):
            return
        finally:
            container.close()


# ---------------------------------------------------------------------------------------
# The deterministic H.264 writer
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    """What :class:`H264Writer` wrote."""

    path: str
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fit(pixels: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop to at most (h, w), then pad to exactly (h, w) by repeating the edge pixels."""
    pixels = pixels[:h, :w]
    ph, pw = h - pixels.shape[0], w - pixels.shape[1]
    if ph or pw:
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return pixels


def _stereo(samples: np.ndarray) -> np.ndarray:
    """Float samples (channels, n) or (n,) → (2, n) float32; mono is duplicated."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.shape[0] not in (1, 2) or not samples.shape[1]:
        raise EncoderError(f"expected audio shaped (channels, n) with 1 or 2 channels, got "
                           f"{samples.shape}")
    return np.repeat(samples, 2, axis=0) if samples.shape[0] == 1 else samples


class H264Writer:
    """The one H.264 MP4 writer: plays everywhere, same input → same bytes, all or nothing.

    * yuv420p subsamples chroma 2×2: an odd width or height is padded by one edge pixel
      (never cropped: a generated clip keeps every pixel it was asked for); frames of another
      size than the first are cropped/padded to it.
    * Deterministic: x264 runs single-threaded, and every frame is converted to yuv420p
      explicitly before ``encode()``. With x264's default threading, identical frames were
      measured to encode to different bytes now and then; with PyAV's implicit conversion,
      about one run in ten (in a process that also ran torch). Explicit + one thread: 81/81
      runs identical. A clip is a few hundred frames, so determinism costs seconds.
    * Atomic: written to ``<name>.<pid>-<id>.part`` beside ``path`` and renamed over it when
      complete; a failure (or an exception in the ``with`` body) removes the partial file.
    * ``+faststart``: the index sits at the front, so a browser plays it while loading.

    Frames are numbered at ``fps`` unless each ``write`` passes its own ``pts`` in
    ``time_base`` units (a transcode keeps the source's variable timing).

    ``audio=(samples, rate)`` adds a sound track (a model that generates sound, LTX-2): float
    samples in [-1, 1] shaped (channels, n) or (n,), encoded as stereo AAC (mono duplicated),
    the format every player takes in an MP4.
    """

    def __init__(self, path: Path, fps: float, *, crf: int = 18, preset: str = "medium",
                 time_base: Fraction | None = None,
                 audio: tuple[np.ndarray, int] | None = None) -> None:
        if fps <= 0:
            raise EncoderError(f"frame rate must be positive, got {fps}")
        if audio is not None:
            audio = (_stereo(audio[0]), int(audio[1]))
        self.path = Path(path)
        self.fps = float(fps)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = time_base
        self.crf, self.preset = int(crf), preset
        # Unique per writer: two requests transcoding the same chunk at once (a browser's
        # parallel range requests) must not write into one temp file.
        self.tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}-{id(self):x}.part")
        self.frames = 0
        self.width = self.height = 0
        self._container: Any = None
        self._stream: Any = None
        self._last_pts: int | None = None
        self._result: Written | None = None
        self._audio = audio
        self._audio_stream: Any = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.tmp), mode="w", format="mp4",
                                      options={"movflags": "+faststart"})
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise self._error(exc) from exc

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _error(self, exc: BaseException) -> EncoderError:
        return EncoderError(f"cannot write {self.path}: {exc}",
                            "check the folder is writable and has free space")

    def _open_stream(self, width: int, height: int) -> None:
        # yuv420p subsamples chroma 2×2: odd sizes are padded by one edge pixel.
        self.width, self.height = width + width % 2, height + height % 2
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset, "threads": "1"}
        if self.time_base is not None:
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
        self._stream = stream
        if self._audio is not None:
            # Added with the video stream, before the first packet writes the header.
            rate = int(self._audio[1])
            astream = self._container.add_stream("aac", rate=rate)
            astream.codec_context.sample_rate = rate
            astream.codec_context.layout = "stereo"
            astream.codec_context.time_base = Fraction(1, rate)
            self._audio_stream = astream

    def _write_audio(self) -> None:
        assert self._audio is not None
        samples, rate = self._audio
        # Interleaved 16-bit in, the encoder's own format out (AAC takes planar float).
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="s16",
                                           layout="stereo")
        frame.sample_rate = rate
        cc = self._audio_stream.codec_context
        resampler = av.audio.resampler.AudioResampler(format=cc.format or "fltp",
                                                      layout="stereo", rate=rate)
        pts = 0
        for out in resampler.resample(frame):
            out.pts = pts
            pts += out.samples
            for packet in self._audio_stream.encode(out):
                self._container.mux(packet)
        for packet in self._audio_stream.encode(None):
            self._container.mux(packet)

    def _to_yuv(self, picture: np.ndarray | Image.Image | VideoFrame) -> VideoFrame:
        if isinstance(picture, av.VideoFrame):
            if (picture.width, picture.height) == (self.width, self.height):
                frame = picture.reformat(format="yuv420p")
                # Decoded frames carry their source's picture type: let x264 choose.
                frame.pict_type = av.video.frame.PictureType.NONE
                return frame
            picture = picture.to_ndarray(format="rgb24")
        pixels = np.asarray(picture.convert("RGB") if isinstance(picture, Image.Image)
                            else picture)
        if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
            raise EncoderError(f"expected an RGB picture shaped (H, W, 3) uint8, got "
                               f"{pixels.shape} {pixels.dtype}")
        pixels = np.ascontiguousarray(_fit(pixels, self.height, self.width))
        return av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")

    def write(self, picture: np.ndarray | Image.Image | VideoFrame,
              pts: int | None = None) -> None:
        """Encode one picture: an RGB array (H, W, 3) uint8, a PIL image or a decoded frame."""
        if self._result is not None or self._container is None:
            raise EncoderError(f"{self.path} is already closed")
        try:
            if self._stream is None:
                if isinstance(picture, av.VideoFrame):
                    w, h = picture.width, picture.height
                elif isinstance(picture, Image.Image):
                    w, h = picture.size
                else:
                    h, w = np.shape(picture)[:2]
                if w <= 0 or h <= 0:
                    raise EncoderError(f"cannot encode an empty picture ({w}x{h})")
                self._open_stream(w, h)
            frame = self._to_yuv(picture)
            if pts is not None:
                if self._last_pts is not None and pts <= self._last_pts:
                    pts = self._last_pts + 1  # the muxer refuses equal timestamps
                frame.pts = pts
                frame.time_base = self.time_base or 1 / self.rate
            else:
                frame.pts = self.frames
                frame.time_base = 1 / self.rate
            self._last_pts = frame.pts
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self.frames += 1
        except EncoderError:
            self.abort()
            raise
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.abort()
            raise self._error(exc) from exc

    def close(self) -> Written:
        """Drain the encoder, finish the file and move it into place."""
        if self._result is not None:
            return self._result
        if self._container is None:
            raise EncoderError(f"{self.path} was abandoned after an error")
        if not self.frames:
            self.abort()
            raise EncoderError(f"no frames to write to {self.path}")
        try:
            if self._audio_stream is not None:
                self._write_audio()
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            self.tmp.replace(self.path)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise self._error(exc) from exc
        self._result = Written(path=str(self.path), frames=self.frames, width=self.width,
                               height=self.height, fps=self.fps, codec="h264",
                               pix_fmt="yuv420p", bytes=self.path.stat().st_size)
        return self._result

    def abort(self) -> None:
        """Stop and remove the partial file; ``path`` is left as it was."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError, ValueError):
                pass
            self._container = None
        self.tmp.unlink(missing_ok=True)


def write_h264(pictures: Iterable[np.ndarray | Image.Image], fps: float, path: Path, *,
               crf: int = 18, preset: str = "medium",
               audio: tuple[np.ndarray, int] | None = None) -> Written:
    """Encode pictures (RGB arrays or PIL images) at ``fps`` into ``path`` with
    :class:`H264Writer`; an array shaped (F, H, W, 3) is taken frame by frame. ``audio``:
    (samples, rate) for a sound track (see H264Writer)."""
    with H264Writer(path, fps, crf=crf, preset=preset, audio=audio) as writer:
        for picture in pictures:
            writer.write(picture)
    return writer.close()


def transcode_h264(src: Path, dst: Path, *, crf: int = 26, preset: str = "veryfast") -> Written:
    """Re-encode the video of ``src`` as browser-playable H.264 in ``dst`` (atomic), keeping
    each frame's own time (a recorded chunk has a variable frame rate). A source that ends
    in a torn fragment (a chunk still being written) gives the frames before it."""
    with _open_read(Path(src)) as inp:
        if not inp.streams.video:
            raise MediaError(f"{src} has no video stream")
        ist = inp.streams.video[0]
        tb = ist.time_base or Fraction(1, 1000)
        fps = float(ist.average_rate or ist.guessed_rate or 25)
        with H264Writer(dst, fps, crf=crf, preset=preset, time_base=tb) as writer:
            try:
                for frame in inp.decode(ist):
                    writer.write(frame, pts=frame.pts)
            except (av.FFmpegError, EOFError, ValueError) as exc:
                if not writer.frames:
                    raise MediaError(f"cannot decode {src}: {exc}") from exc
                log.warning("transcode of %s stopped early: %s", src, exc)
        return writer.close()


# ---------------------------------------------------------------------------------------
# The recorder's low-level output
# ---------------------------------------------------------------------------------------

class VideoOutput:
    """One video stream encoded into a container as frames arrive (the recorder's chunks).

    ``target`` is a file path or a writable binary pipe. No buffering or copying of its own:
    each :meth:`encode` hands the frame to the encoder and muxes what comes out at once, so
    with ``flush_packets`` a fragmented MP4 is on disk frame by frame.
    """

    def __init__(self, target: str | Path | IO[bytes], format: str,
                 options: dict[str, str] | None = None) -> None:
        self._container: Any = av.open(str(target) if isinstance(target, Path) else target,
                                       "w", format=format, options=options or {})
        self._stream: Any = None

    def add_stream(self, codec: str, width: int, height: int, *, time_base: Fraction,
                   options: dict[str, str] | None = None, rate: int | None = None,
                   framerate: Fraction | None = None, gop_size: int | None = None,
                   max_b_frames: int | None = None, codec_tag: str | None = None,
                   pix_fmt: str = "yuv420p") -> None:
        """Add the one video stream; FFmpegError/ValueError when the encoder cannot open."""
        kwargs: dict[str, Any] = {}
        if options is not None:
            kwargs["options"] = options
        if rate is not None:
            kwargs["rate"] = rate
        stream: Any = self._container.add_stream(codec, **kwargs)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = time_base
        cc = stream.codec_context
        cc.time_base = time_base
        if framerate is not None:
            cc.framerate = framerate
        if gop_size is not None:
            cc.gop_size = gop_size
        if max_b_frames is not None:
            cc.max_b_frames = max_b_frames
        if codec_tag is not None:
            cc.codec_tag = codec_tag
        self._stream = stream

    def encode(self, frame: VideoFrame) -> None:
        """Encode one frame and mux its packets (raises FFmpegError, OSError, ValueError)."""
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def flush(self) -> None:
        """Drain the encoder's delayed packets into the container."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)

    def close(self) -> None:
        """Close the file and let go of the encoder: its buffers (~40 MB of x264 at 1080p)
        are freed with the codec context, not whenever the last Python reference to this
        output dies — a recorder opening the next chunk had both encoders in memory."""
        if self._container is None:
            return
        try:
            self._container.close()
        finally:
            self._stream = self._container = None


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the disk (or quota) running out: the recorder handles that itself."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


__all__ = [
    "Decodable", "Decoded", "FFmpegError", "H264Writer", "IncrementalDecoder", "MediaError",
    "MediaInfo", "Reformatter", "VideoFrame", "VideoOutput", "Written", "blank_frame",
    "forward_ffmpeg_logs", "frame_at", "frame_from_ndarray", "frame_over_buffer",
    "has_encoder", "is_disk_full", "iter_frames", "probe", "pyav_version", "scan_decodable",
    "set_keyframe", "transcode_h264", "version_key", "write_h264",
]
