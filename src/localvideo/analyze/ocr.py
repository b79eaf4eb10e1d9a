"""Screen text: tesseract, with word boxes and confidences.

Screen text is small, anti-aliased and often light on dark, which is not what tesseract was
trained on; a grayscale, a 2× upscale of small windows and an inversion of dark themes make
it read terminals and editors reliably (measured in tests/analyze/test_ocr.py).

Two engines give the same table of words (tesseract's TSV): the **library** — libtesseract
inside this process through tesserocr, one API object per thread and language kept loaded —
and the **program** — the tesseract executable through pytesseract, one process and a PNG
round trip per read. The library read a 1080p page in ~40 % less CPU and a changed strip in
~70 % less (bench/ocr.py), since nothing starts or loads per read; ``auto`` (the default)
takes it wherever tesserocr's wheel installs (Linux, Windows) and finds the language data,
the program elsewhere (macOS).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
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
# Page segmentation: one uniform block. Automatic layout analysis (psm 3) split a
# terminal's aligned columns into blocks and dropped its number column ("[build] step
# compiling module 22."); psm 6 read "[build] step 22 compiling module 22.c ... ok". On web
# pages and this UI's screenshots both found the same words, psm 6 ~5 % faster.
PSM = 6
ENGINES = ("auto", "library", "program")
TSV_COLUMNS = ("level", "page_num", "block_num", "par_num", "line_num", "word_num", "left",
               "top", "width", "height", "conf", "text")


@dataclass
class OcrResult:
    text: str                                   # lines joined by "\n"
    words: list[dict[str, Any]] = field(default_factory=list)  # {t, x, y, w, h, c} in input px
    ms: float = 0.0                             # wall time of the tesseract call


def check_tesseract(engine: str | None = None) -> str:
    """What reads screen text with ``engine`` (None: this process's) — "library 5.5.4" or
    "program 5.3.0" — or a DependencyError that says how to install it."""
    if _use_library(engine):
        import tesserocr

        return f"library {tesserocr.tesseract_version().split()[1]}"
    import pytesseract

    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        raise DependencyError("tesseract is not installed (needed to read screen text)",
                              INSTALL_HINT)
    try:
        return f"program {pytesseract.get_tesseract_version()}"
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise DependencyError(f"tesseract cannot run: {exc}", INSTALL_HINT) from exc


def program_languages(exe: str) -> tuple[str, list[str]]:
    """What ``tesseract --list-langs`` says: the folder it reads language data from and the
    languages there. OSError or SubprocessError when the program does not answer."""
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True,
                         timeout=10).stdout.strip().splitlines()
    # 'List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (3):'
    folder = re.search(r'"(.+?)"', out[0]) if out else None
    return (folder.group(1) if folder else ""), out[1:]


# -- engines ---------------------------------------------------------------------------------

_engine = "auto"
# Why the library cannot read here (message, hint), or None; decided once per process.
_NOT_YET: Any = object()
_library_problem: tuple[str, str] | None = _NOT_YET
_tls = threading.local()             # this thread's {lang: tesserocr API}


def _known(name: str) -> str:
    if name not in ENGINES:
        raise UsageError(f"unknown OCR engine {name!r}", f"use one of: {', '.join(ENGINES)}")
    return name


def set_engine(name: str) -> None:
    """Choose the engine for this process ([analyze] ocr_engine): auto, library or program."""
    global _engine, _library_problem
    _engine, _library_problem = _known(name), _NOT_YET


def tessdata_dir() -> str | None:
    """Where tesseract's language data lives: TESSDATA_PREFIX (tesseract's own variable),
    else where the tesseract program reads it, else None. The library needs the path: the
    wheel's built-in default is not the distribution's."""
    env = os.environ.get("TESSDATA_PREFIX")
    if env and os.path.isdir(env):
        return env
    exe = shutil.which("tesseract")
    if exe is None:
        return None
    try:
        folder = program_languages(exe)[0]
    except (OSError, subprocess.SubprocessError):
        return None
    return folder if folder and os.path.isdir(folder) else None


def _use_library(engine: str | None = None) -> bool:
    """True when ``engine`` (None: this process's) reads through libtesseract in process;
    "library" where it cannot run raises a DependencyError that says why."""
    global _library_problem
    engine = _known(engine or _engine)
    if engine == "program":
        return False
    if _library_problem is _NOT_YET:
        try:
            import tesserocr  # noqa: F401
        except ImportError as exc:
            _library_problem = (f"tesserocr cannot be imported: {exc}",
                                "pip install tesserocr, or set [analyze] ocr_engine = "
                                "\"program\" to use the tesseract executable")
        else:
            _library_problem = None if tessdata_dir() is not None else (
                "tesseract's language data was not found",
                "install tesseract-ocr-eng (it brings the data), or set TESSDATA_PREFIX to "
                "the folder holding eng.traineddata")
    if _library_problem is not None and engine == "library":
        raise DependencyError(*_library_problem)
    return _library_problem is None


def _library_api(lang: str) -> Any | None:
    """This thread's API for ``lang``, loaded once; None (remembered) when auto finds that
    the library cannot load the language data: the program reads, and says what is wrong."""
    apis: dict[str, Any] | None = getattr(_tls, "apis", None)
    if apis is None:
        apis = _tls.apis = {}
    if lang not in apis:
        import tesserocr

        try:
            apis[lang] = tesserocr.PyTessBaseAPI(path=tessdata_dir() or "", lang=lang, psm=PSM)
        except RuntimeError as exc:
            if _engine != "auto":
                raise _no_language(lang) from exc
            apis[lang] = None
    return apis[lang]


def _no_language(lang: str) -> UsageError:
    return UsageError(f"tesseract has no language data for {lang!r}",
                      f"install it (`sudo apt-get install tesseract-ocr-{lang}`) or set "
                      "[analyze] ocr_lang in config.toml")


def _library_data(gray: Image.Image, lang: str) -> dict[str, list[Any]] | None:
    """The program's TSV table, from the library: raw gray bytes in, no file, no process;
    None when the library cannot load ``lang`` (auto: the program reads instead)."""
    api = _library_api(lang)
    if api is None:
        return None
    api.SetImageBytes(gray.tobytes(), gray.width, gray.height, 1, gray.width)
    api.Recognize()
    data: dict[str, list[Any]] = {k: [] for k in TSV_COLUMNS}
    for line in (api.GetTSVText(0) or "").splitlines():
        cells = line.split("\t", len(TSV_COLUMNS) - 1)
        if len(cells) != len(TSV_COLUMNS) or not cells[0].isdigit():
            continue                 # a header, or a word's text cut by a stray newline
        for k, v in zip(TSV_COLUMNS[:10], cells[:10], strict=True):
            data[k].append(int(v))
        data["conf"].append(float(cells[10]))
        data["text"].append(cells[11])
    return data


def _program_data(gray: Image.Image, lang: str, timeout: float) -> dict[str, list[Any]]:
    import pytesseract

    try:
        return pytesseract.image_to_data(  # type: ignore[no-any-return]
            gray, lang=lang, config=f"--psm {PSM}", output_type=pytesseract.Output.DICT,
            timeout=timeout)
    except pytesseract.TesseractNotFoundError as exc:
        raise DependencyError("tesseract is not installed (needed to read screen text)",
                              INSTALL_HINT) from exc
    except pytesseract.TesseractError as exc:
        if "loading language" in str(exc):      # "Failed loading language ..."
            raise _no_language(lang) from exc
        raise DependencyError(f"tesseract failed: {exc}", INSTALL_HINT) from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise DependencyError(f"tesseract took longer than {timeout:.0f}s on one frame",
                              "a smaller window or a lower resolution reads faster") from exc


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
    """OCR one key frame (already cropped to its window). ``timeout`` bounds the program;
    the library runs in this thread to the end."""
    if image.width < 4 or image.height < 4:
        return OcrResult(text="")
    prepared, scale = preprocess(image)
    started = time.perf_counter()
    data = _library_data(prepared, lang) if _use_library() else None
    if data is None:
        data = _program_data(prepared, lang, timeout)
    ms = (time.perf_counter() - started) * 1000
    return _collect(data, scale, ms)


@dataclass
class _Segment:
    """One line as tesseract found it: its words and where it sits."""
    tokens: list[str]
    left: int
    top: int
    bottom: int

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def _collect(data: dict[str, list[Any]], scale: float, ms: float) -> OcrResult:
    words: list[dict[str, Any]] = []
    segments: dict[tuple[int, int, int], _Segment] = {}
    for i, raw in enumerate(data["text"]):
        token = str(raw).strip()
        conf = float(data["conf"][i])
        if not token or conf < MIN_CONF:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        left, top = int(data["left"][i]), int(data["top"][i])
        bottom = top + int(data["height"][i])
        seg = segments.get(key)
        if seg is None:
            segments[key] = _Segment([token], left, top, bottom)
        else:
            seg.tokens.append(token)
            seg.left, seg.top = min(seg.left, left), min(seg.top, top)
            seg.bottom = max(seg.bottom, bottom)
        words.append({
            "t": token,
            "x": round(left / scale), "y": round(top / scale),
            "w": round(data["width"][i] / scale), "h": round(data["height"][i] / scale),
            "c": round(conf, 1),
        })
    return OcrResult(text=_rows_text(list(segments.values())), words=words, ms=ms)


def words_text(words: list[dict[str, Any]]) -> str:
    """The text of word boxes ({t, x, y, w, h}), row by row as :func:`read_text` gives it
    (analyze/region.py puts a frame's words together from several reads). A word joins a
    row its box overlaps by half its own height: "..." sits low in its line, and a test on
    the middles (what tesseract's own lines allow) put it on a row of its own."""
    rows: list[list[Any]] = []          # [top, bottom, [(x, token), ...]]
    for w in sorted(words, key=lambda w: (int(w["y"]) + int(w["h"]) / 2, int(w["x"]))):
        top, bottom = int(w["y"]), int(w["y"]) + max(1, int(w["h"]))
        for row in rows:
            if min(bottom, row[1]) - max(top, row[0]) >= min(bottom - top, row[1] - row[0]) / 2:
                row[0], row[1] = min(row[0], top), max(row[1], bottom)
                row[2].append((int(w["x"]), str(w["t"])))
                break
        else:
            rows.append([top, bottom, [(int(w["x"]), str(w["t"]))]])
    rows.sort(key=lambda r: (r[0] + r[1]) / 2)
    return "\n".join(" ".join(t for _, t in sorted(r[2], key=lambda xt: xt[0])) for r in rows)


def _rows_text(segments: list[_Segment]) -> str:
    """Screen text row by row, left to right.

    Tesseract's layout analysis splits aligned columns into blocks of their own: a terminal's
    "[build] step 12 compiling module_12.c ... ok" came back as a column of "[build]", then a
    column of "step", then of numbers, so no line of the log could be read or phrase-searched.
    Segments whose vertical middles fall within each other's height are one row on screen.
    """
    rows: list[list[_Segment]] = []
    for seg in sorted(segments, key=lambda s: (s.middle, s.left)):
        row = rows[-1] if rows else None
        if row is not None and any(abs(seg.middle - other.middle) * 2 <=
                                   min(seg.bottom - seg.top, other.bottom - other.top)
                                   for other in row):
            row.append(seg)
        else:
            rows.append([seg])
    return "\n".join(" ".join(t for seg in sorted(row, key=lambda s: s.left) for t in seg.tokens)
                     for row in rows)
