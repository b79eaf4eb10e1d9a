"""Generated frames as H.264 MP4 that plays everywhere (through media.write_h264)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import media
from ..errors import EncoderError


def to_uint8(video: Any) -> np.ndarray:
    """A decoded VAE tensor (B, C, F, H, W) in [-1, 1] → frames (F, H, W, 3) uint8."""
    arr = video[0].float().clamp(-1, 1).permute(1, 2, 3, 0).cpu().numpy()
    return np.round((arr + 1.0) * 127.5).astype(np.uint8)


def write_mp4(frames: np.ndarray, fps: float, path: Path, *, crf: int = 18,
              audio: tuple[np.ndarray, int] | None = None) -> dict[str, Any]:
    """Encode frames (F, H, W, 3) uint8 with the one deterministic H.264 writer (odd sizes
    padded, atomic), with a sound track when the model made one (``audio``: samples shaped
    (channels, n) in [-1, 1] and their rate); return what was written."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncoderError(f"expected frames shaped (F, H, W, 3), got {frames.shape}")
    info = media.write_h264(frames, fps, path, crf=crf, audio=audio).to_dict()
    if audio is not None:
        samples, rate = audio
        info["audio"] = {"codec": "aac", "sample_rate": int(rate),
                         "channels": int(samples.shape[0]) if samples.ndim == 2 else 1,
                         "seconds": round(samples.shape[-1] / rate, 3)}
    return info
