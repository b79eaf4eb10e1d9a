"""Chunk writers: PyAV in-process encoders into fragmented MP4, with a probed fallback chain.

Why these settings (FIELD-NOTES has the measurements):

* One keyframe per chunk, no B-frames, no lookahead: a frame leaves the encoder as soon as
  it is sent, and a chunk costs one I-frame however long it runs.
* ``empty_moov+default_base_moof+frag_every_frame`` with ``flush_packets=1``: every encoded
  frame becomes a fragment that is on disk at once, so a chunk being written (or left behind
  by a killed recorder) decodes up to its last frame or so — no finalisation step needed.
* Timestamps in a 1/1000 time base from real capture times (variable frame rate): unchanged
  frames are not encoded, and a quiet minute costs almost nothing.
* ``auto`` prefers a hardware HEVC encoder that *actually works* on this machine (a
  one-frame test encode, cached per PyAV/FFmpeg version), else libx264: on CPU, x264 measured
  2–3× less CPU and about half the bytes of x265 at equal quality for screen content.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .. import crypto, media
from ..errors import EncoderError, LocalVideoError, UsageError

if TYPE_CHECKING:
    from .ffmpeg_cli import CliChunkWriter

log = logging.getLogger("localvideo.record")

TIME_BASE = Fraction(1, 1000)
MOVFLAGS = "empty_moov+default_base_moof+frag_every_frame"
# Larger than any chunk will ever be: the only keyframe is the first frame of the chunk.
HUGE_GOP = 1 << 30

HW_HEVC = ("hevc_videotoolbox", "hevc_nvenc", "hevc_qsv", "hevc_vaapi")
CODEC_OF = {"libx264": "h264", "libx265": "hevc", **{n: "hevc" for n in HW_HEVC}}
# The pixel format each encoder is opened with (PyAV converts the canvas' yuv420p to it).
# Quick Sync takes nv12, never yuv420p; VAAPI takes only GPU surfaces, so in process it
# fails whatever the format and the probe goes on to the CLI, which uploads them.
PIX_FMT_OF = {"hevc_qsv": "nv12"}
# Part of the probe cache's key: a change to how encoders are opened (options, pixel
# format) must re-probe what an older version found broken.
PROBE_REVISION = 3
# libx264 runs at a constant QP this far below the CRF-style ``quality`` (equal PSNR on
# maximized-window screen content).
CQP_BELOW_CRF = 7
# FFmpeg's quality scale: `-q:v N` on the command line is global_quality = N * FF_QP2LAMBDA
# with the qscale flag set; in process there is no `q:v`, only these two AVOptions.
FF_QP2LAMBDA = 118


def pix_fmt_of(name: str) -> str:
    return PIX_FMT_OF.get(name, "yuv420p")


def videotoolbox_bitrate(quality: int) -> int:
    """Bits per second for VideoToolbox on Intel Macs, which has no constant-quality mode:
    400 kb/s at CRF 32 (a busy 1080p canvas at 2 fps), doubling every 6 steps of CRF.
    Unverified on real hardware."""
    return int(400_000 * 2 ** ((32 - quality) / 6))


def encoder_options(name: str, quality: int, machine: str | None = None) -> dict[str, str]:
    """Options per encoder, each an AVOption FFmpeg knows (PyAV passes unknown keys on
    without a word, so a wrong name would silently leave the quality uncontrolled);
    ``quality`` is an x264-style CRF (lower = better); ``machine`` is platform.machine()."""
    q = max(0, min(51, int(quality)))
    if name == "libx264":
        # Constant QP, not CRF: CRF has x264 build a quarter-size copy of every frame and
        # cost it for rate control, and adapt the quantizer per block (AQ). Re-encoding bench
        # chunks, CQP at quality - 7 gave x264 CPU -20 % (maximized 1080p) and -28 % (typical)
        # at the same PSNR and +16 % bytes (maximized), or -1.3 dB at equal bytes (typical).
        qp = max(0, q - CQP_BELOW_CRF)
        return {"preset": "veryfast", "tune": "zerolatency", "qp": str(qp), "threads": "1",
                # me=umh with a 32-px range follows a scrolled line of text (~18 px), which
                # veryfast's hex search misses: 35-45 % fewer bytes on scrolling windows at
                # the same CPU (re-encoding bench chunks; see docs/record.md).
                # subme=0: whole-pixel motion only (text scrolls by whole pixels), and no
                # half-pel planes: re-encoding bench chunks, x264 CPU -28 % (typical) and
                # -12 % (maximized 1080p), bytes +12 % / +23 %, and ~14 MB less memory at
                # 1080p (50 -> 36 MB for the encoder).
                # weightp=0: weighted prediction models fades, which screens do not have;
                # re-encoding maximized-1080p bench chunks, x264 CPU -25 %, bytes equal.
                "x264-params": "keyint=infinite:scenecut=0:bframes=0:rc-lookahead=0:"
                               "sliced-threads=0:me=umh:merange=32:subme=0:weightp=0"}
    if name == "libx265":
        return {"preset": "ultrafast", "crf": str(q), "threads": "1",
                "x265-params": "log-level=error:forced-idr=1:keyint=-1:scenecut=0:bframes=0:"
                               "rc-lookahead=0:pools=1:frame-threads=1"}
    if name == "hevc_videotoolbox":
        base = {"realtime": "1", "prio_speed": "1", "allow_sw": "0"}
        arch = (machine or platform.machine()).lower()
        if arch in ("arm64", "aarch64"):
            # Constant quality on a 0-100 scale: Apple Silicon only (FFmpeg refuses the
            # qscale flag on Intel: "qscale not available for encoder. Use -b:v bitrate").
            vt_q = max(1, min(100, round(100 - q * 1.25)))
            return {**base, "flags": "+qscale", "global_quality": str(vt_q * FF_QP2LAMBDA)}
        return {**base, "b": str(videotoolbox_bitrate(q))}
    if name == "hevc_nvenc":
        return {"preset": "p1", "tune": "ll", "rc": "constqp", "qp": str(q), "bf": "0",
                "zerolatency": "1"}
    if name == "hevc_qsv":
        return {"preset": "veryfast", "global_quality": str(q), "low_power": "0"}
    if name == "hevc_vaapi":
        return {"qp": str(q)}
    raise UsageError(f"unknown encoder {name!r}",
                     f"use one of: libx264, libx265, {', '.join(HW_HEVC)}")


class ChunkFile:
    """The bookkeeping every chunk writer shares (this one and ffmpeg_cli.CliChunkWriter):
    the file, what encodes it, the frames written and the last timestamp."""

    def __init__(self, path: Path, width: int, height: int, encoder: str, codec: str) -> None:
        self.path = path
        self.encoder = encoder
        self.codec = codec
        self.width = width
        self.height = height
        self.frames = 0
        self.last_pts: int | None = None
        self._closed = False

    def _stamp(self, frame: media.VideoFrame, pts_ms: int) -> int:
        """Put ``pts_ms`` on ``frame``, moved past the last one: the muxer refuses equal
        timestamps."""
        if self.last_pts is not None and pts_ms <= self.last_pts:
            pts_ms = self.last_pts + 1
        frame.pts = pts_ms
        frame.time_base = TIME_BASE
        return pts_ms

    def _written(self, pts_ms: int) -> None:
        self.frames += 1
        self.last_pts = pts_ms

    def _encode(self, out: media.VideoOutput, frame: media.VideoFrame) -> None:
        """Encode one frame and mux its packets. A full disk stays an OSError (the recorder's
        disk-full handling takes it from there); any other failure is an EncoderError."""
        try:
            out.encode(frame)
        except OSError as exc:
            if media.is_disk_full(exc):
                raise
            raise EncoderError(self._failure(exc)) from exc
        except (media.FFmpegError, ValueError) as exc:
            raise EncoderError(self._failure(exc)) from exc

    def _failure(self, exc: Exception) -> str:
        return f"{self.encoder} failed on frame {self.frames} of {self.path.name}: {exc}"

    @property
    def bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


class ChunkWriter(ChunkFile):
    """One fragmented MP4 file being written by one PyAV encoder."""

    def __init__(self, path: Path, width: int, height: int, encoder: str, quality: int,
                 fps_hint: float = 2.0, seal: crypto.Sealer | None = None) -> None:
        super().__init__(path, width, height, encoder, CODEC_OF.get(encoder, encoder))
        options = encoder_options(encoder, quality)  # an unknown name fails before any file
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Encryption at rest: the muxer writes into a file that seals each write (a
            # fragment) as it comes; only the store's public key is needed here.
            self._sealed = crypto.SealedWriter(path, seal) if seal is not None else None
            target: Any = self._sealed if self._sealed is not None else path
            self._out = media.VideoOutput(
                target, "mp4", {"movflags": MOVFLAGS, "flush_packets": "1",
                              "video_track_timescale": "1000"})
        except (media.FFmpegError, OSError) as exc:
            if media.is_disk_full(exc):
                raise
            raise EncoderError(f"cannot create chunk {path}: {exc}",
                               "check that the data dir is writable and has free space") from exc
        try:
            self._out.add_stream(
                encoder, width, height, time_base=TIME_BASE, options=options,
                pix_fmt=pix_fmt_of(encoder),
                # A rate hint only: timestamps carry the real timing (variable frame rate).
                framerate=Fraction(fps_hint).limit_denominator(1000),
                gop_size=HUGE_GOP, max_b_frames=0,
                # Apple players want hvc1, not FFmpeg's default hev1.
                codec_tag="hvc1" if self.codec == "hevc" else None)
        except (media.FFmpegError, ValueError) as exc:
            self._abandon()
            raise EncoderError(f"encoder {encoder} cannot be opened: {exc}") from exc

    def write(self, frame: media.VideoFrame, pts_ms: int) -> None:
        """Encode one picture at ``pts_ms`` (milliseconds since the chunk started)."""
        pts_ms = self._stamp(frame, pts_ms)
        # Callers may reuse one frame object: set the type every time, not only the first.
        media.set_keyframe(frame, self.frames == 0)
        self._encode(self._out, frame)
        self._written(pts_ms)

    def close(self) -> None:
        """Drain the encoder and write the last fragment; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames:
                self._out.flush()
        except (media.FFmpegError, OSError, ValueError) as exc:
            log.error("draining %s for %s failed: %s", self.encoder, self.path, exc)
        finally:
            try:
                self._out.close()
            except (media.FFmpegError, OSError) as exc:
                log.error("closing %s failed: %s", self.path, exc)
            finally:
                self._close_sealed()

    def _close_sealed(self) -> None:
        # The sealed file's final record needs disk space too: a full disk must end in a
        # pause, not in an OSError out of the recorder (bench/chaos.py --encrypted).
        if self._sealed is not None:
            try:
                self._sealed.close()
            except OSError as exc:
                log.error("closing the sealed %s failed: %s", self.path, exc)

    def _abandon(self) -> None:
        self._closed = True
        try:
            self._out.close()
        except (media.FFmpegError, OSError):
            pass
        self._close_sealed()
        self.path.unlink(missing_ok=True)


Writer = Union[ChunkWriter, "CliChunkWriter"]


def open_writer(path: Path, width: int, height: int, encoder: str, quality: int,
                fps_hint: float = 2.0, seal: crypto.Sealer | None = None) -> Writer:
    """A chunk writer for ``encoder``; ``cli:<name>`` runs <name> in an ffmpeg process.
    ``seal``: the store is encrypted, chunks are sealed as they are written."""
    if encoder.startswith("cli:"):
        if seal is not None:
            # ffmpeg would write the plaintext file itself.
            raise EncoderError(f"{encoder} writes its own files, which encryption at rest "
                               "cannot seal", "the recorder uses an in-process encoder")
        from .ffmpeg_cli import CliChunkWriter  # ffmpeg_cli imports this module: a cycle

        base = encoder[4:]
        return CliChunkWriter(path, width, height, base, CODEC_OF.get(base, base),
                              encoder_options(base, quality), MOVFLAGS)
    return ChunkWriter(path, width, height, encoder, quality, fps_hint, seal)


# -- probing ------------------------------------------------------------------------------

def test_encode(name: str) -> str | None:
    """One-frame test encode with ``name``; None when it works, else the reason it did not."""
    with tempfile.TemporaryDirectory(prefix="lv-probe-") as tmp:
        try:
            writer = open_writer(Path(tmp) / "probe.mp4", 256, 144, name, 28)
        except LocalVideoError as exc:
            return str(exc)
        try:
            vf = media.frame_from_ndarray(np.full((144, 256, 3), 90, np.uint8), "rgb24")
            writer.write(vf.reformat(format="yuv420p"), 0)
            writer.close()
            if writer.bytes <= 0:
                return "wrote nothing"
        except (EncoderError, OSError) as exc:
            writer.close()
            return str(exc)
    return None


def probe(data_dir: Path, candidates: tuple[str, ...], *, refresh: bool = False) -> dict[str, str | None]:
    """Which of ``candidates`` work here: {name: None (works) | reason}; cached on disk.

    Keyed by the PyAV/FFmpeg version, so an upgrade re-probes; a hardware encoder that was
    missing once is not retried on every start (a failing hw open can take seconds).
    """
    cache_path = data_dir / "encoders.json"
    key = f"{media.version_key()}/probe-{PROBE_REVISION}"
    cache: dict[str, dict[str, str | None]] = {}
    if cache_path.exists() and not refresh:
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
    known = dict(cache.get(key, {}))
    todo = [c for c in candidates if c not in known]
    for name in todo:
        if not name.startswith("cli:"):
            missing = media.has_encoder(name)
            if missing is not None:
                known[name] = f"not in PyAV's FFmpeg build ({missing})"
                continue
        else:
            from .ffmpeg_cli import cli_has_encoder  # a cycle, as above

            if not cli_has_encoder(name[4:]):
                known[name] = "not in the ffmpeg program's encoders (or no ffmpeg)"
                continue
        known[name] = test_encode(name)
        if known[name]:
            log.info("encoder %s does not work here: %s", name, known[name])
    if todo:
        cache = {key: known}  # drop entries for other versions
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, cache_path)
        except OSError as exc:
            log.warning("cannot cache the encoder probe in %s: %s", cache_path, exc)
    return {c: known[c] for c in candidates}


@dataclass
class EncoderPlan:
    codec: str              # what the user asked for: auto | hevc | h264
    chain: list[str]        # working encoders, best first
    tried: dict[str, str | None]


def plan_encoders(data_dir: Path, codec: str = "auto", *, refresh: bool = False) -> EncoderPlan:
    """The ordered list of encoders the recorder may use, each one proven to work here."""
    if codec == "auto":
        candidates: tuple[str, ...] = (*HW_HEVC, "libx264")
    elif codec == "hevc":
        candidates = (*HW_HEVC, "libx265")
    elif codec == "h264":
        candidates = ("libx264",)
    else:
        raise UsageError(f"unknown codec {codec!r}", "use --codec auto, hevc or h264")
    tried = probe(data_dir, candidates, refresh=refresh)
    # A hardware encoder that fails in process for any reason (PyAV's build lacks it, or
    # cannot open it) may still work through the system's ffmpeg program.
    missing = tuple(f"cli:{n}" for n in candidates if n in HW_HEVC and tried[n] is not None)
    if missing:
        tried.update(probe(data_dir, missing, refresh=refresh))
    order = [m for n in candidates for m in (n, f"cli:{n}")]
    chain = [n for n in order if n in tried and tried[n] is None]
    if not chain:
        reasons = "; ".join(f"{n}: {r}" for n, r in tried.items())
        raise EncoderError(f"no working encoder for --codec {codec} ({reasons})",
                           "install a PyAV build with libx264 (pip install --force-reinstall av) "
                           "or try --codec h264")
    return EncoderPlan(codec=codec, chain=chain, tried=tried)
