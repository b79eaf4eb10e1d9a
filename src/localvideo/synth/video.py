"""Writing generated frames as H.264 MP4 that plays everywhere (PyAV: yuv420p, faststart)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import EncoderError


def to_uint8(video: Any) -> np.ndarray:
    """A decoded VAE tensor (B, C, F, H, W) in [-1, 1] → frames (F, H, W, 3) uint8."""
    arr = video[0].float().clamp(-1, 1).permute(1, 2, 3, 0).cpu().numpy()
    return np.round((arr + 1.0) * 127.5).astype(np.uint8)


def write_mp4(frames: np.ndarray, fps: float, path: Path, *, crf: int = 18) -> dict[str, Any]:
    """Encode frames (F, H, W, 3) uint8; return what was written."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncoderError(f"expected frames shaped (F, H, W, 3), got {frames.shape}")
    n, h, w, _ = frames.shape
    # yuv420p subsamples chroma 2×2: odd sizes are padded by one edge pixel.
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4",
                     options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = pw, ph
            stream.pix_fmt = "yuv420p"
            # One thread: with x264's default threading, identical frames were measured to
            # encode to different bytes (and pixels) now and then; a generated clip is a few
            # hundred frames at most, so determinism costs seconds.
            stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
            for i in range(n):
                # Converted to yuv420p here rather than inside encode(): with PyAV's implicit
                # conversion, identical frames were measured to encode to different bytes now
                # and then (about one run in ten, in a process that also ran torch); with the
                # explicit conversion 32 runs out of 32 gave the same bytes.
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24").reformat(
                    format="yuv420p")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        tmp.replace(path)
    except (av.FFmpegError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise EncoderError(f"cannot write {path}: {exc}",
                           "check the folder is writable and has free space") from exc
    return {"path": str(path), "frames": n, "width": pw, "height": ph, "fps": float(fps),
            "codec": "h264", "pix_fmt": "yuv420p", "bytes": path.stat().st_size}
