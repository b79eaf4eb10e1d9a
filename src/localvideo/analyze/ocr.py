"""Screen text: tesseract through pytesseract, with word boxes and confidences.

Screen text is small, anti-aliased and often light on dark, which is not what tesseract was
trained on; a grayscale, a 2× upscale of small windows and an inversion of dark themes make
it read terminals and editors reliably (measured in tests/analyze/test_ocr.py).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, ImageStat

from ..errors import DependencyError, UsageError

# Tesseract's OpenMP threads spin on a busy 2-core machine and cost more than they save at
# screen sizes; one thread per call keeps analysis CPU predictable.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

INSTALL_HINT = "install it: `sudo apt-get install tesseract-ocr` (macOS: `brew install tesseract`)"
UPSCALE_BELOW = 1600      # long side in px under which text is read at 2×
DARK_MEAN = 110           # mean gray under which the image is a dark theme and gets inverted
MIN_CONF = 0.0            # tesseract gives -1 to layout rows; real words are 0..100


@dataclass
class OcrResult:
    text: str                                   # lines joined by "\n"
    words: list[dict[str, Any]] = field(default_factory=list)  # {t, x, y, w, h, c} in input px
    ms: float = 0.0                             # wall time of the tesseract call


def check_tesseract() -> str:
    """The tesseract version, or a DependencyError that says how to install it."""
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise DependencyError("tesseract is not installed (needed to read screen text)",
                              INSTALL_HINT)
    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise DependencyError(f"tesseract cannot run: {exc}", INSTALL_HINT) from exc


def preprocess(image: Image.Image) -> tuple[Image.Image, float]:
    """Gray, dark themes inverted, small windows upscaled; returns the image and its scale."""
    gray = ImageOps.grayscale(image)
    small = gray.reduce(8) if min(gray.size) >= 8 else gray
    if ImageStat.Stat(small).mean[0] < DARK_MEAN:
        gray = ImageOps.invert(gray)
    scale = 2.0 if max(gray.size) < UPSCALE_BELOW else 1.0
    if scale != 1.0:
        gray = gray.resize((int(gray.width * scale), int(gray.height * scale)),
                           Image.Resampling.LANCZOS)
    return gray, scale


def read_text(image: Image.Image, lang: str = "eng", timeout: float = 60.0) -> OcrResult:
    """OCR one key frame (already cropped to its window)."""
    import pytesseract

    if image.width < 4 or image.height < 4:
        return OcrResult(text="")
    prepared, scale = preprocess(image)
    started = time.perf_counter()
    try:
        data = pytesseract.image_to_data(prepared, lang=lang, config="--psm 3",
                                         output_type=pytesseract.Output.DICT, timeout=timeout)
    except pytesseract.TesseractNotFoundError as exc:
        raise DependencyError("tesseract is not installed (needed to read screen text)",
                              INSTALL_HINT) from exc
    except pytesseract.TesseractError as exc:
        if "Failed loading language" in str(exc) or "loading language" in str(exc):
            raise UsageError(f"tesseract has no language data for {lang!r}",
                             f"install it (`sudo apt-get install tesseract-ocr-{lang}`) or set "
                             "[analyze] ocr_lang in config.toml") from exc
        raise DependencyError(f"tesseract failed: {exc}", INSTALL_HINT) from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise DependencyError(f"tesseract took longer than {timeout:.0f}s on one frame",
                              "a smaller window or a lower resolution reads faster") from exc
    ms = (time.perf_counter() - started) * 1000
    return _collect(data, scale, ms)


def _collect(data: dict[str, list[Any]], scale: float, ms: float) -> OcrResult:
    words: list[dict[str, Any]] = []
    lines: dict[tuple[int, int, int], list[str]] = {}
    for i, raw in enumerate(data["text"]):
        token = str(raw).strip()
        conf = float(data["conf"][i])
        if not token or conf < MIN_CONF:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append(token)
        words.append({
            "t": token,
            "x": round(data["left"][i] / scale), "y": round(data["top"][i] / scale),
            "w": round(data["width"][i] / scale), "h": round(data["height"][i] / scale),
            "c": round(conf, 1),
        })
    text = "\n".join(" ".join(ws) for ws in lines.values())
    return OcrResult(text=text, words=words, ms=ms)
