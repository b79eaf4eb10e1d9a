"""OCR on real rendered text: PIL-drawn frames and a real xterm under Xvfb."""

from __future__ import annotations

import re

import numpy as np
import pytest
from analyze_chunks import render
from PIL import Image

from localvideo.analyze import ocr
from localvideo.errors import DependencyError, UsageError


@pytest.fixture(autouse=True)
def engine_back_to_auto() -> object:
    """Tests that pick an engine must not leave it picked for the rest of the run."""
    yield
    ocr.set_engine("auto")


def words_of(result: ocr.OcrResult) -> set[str]:
    return {w["t"].strip(".,:;").lower() for w in result.words}


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark-theme"])
def test_reads_rendered_text_with_boxes(dark: bool) -> None:
    image = render(["zanzibar quokka", "error: build failed"], (480, 120), dark=dark)
    res = ocr.read_text(image)
    assert {"zanzibar", "quokka", "error", "build", "failed"} <= words_of(res)
    assert "zanzibar quokka" in res.text.lower()
    assert res.ms > 0
    # Boxes are in the input image's pixels (the 2× upscale is undone): "zanzibar" is
    # drawn at x=12, y=12 in a 20 px font.
    zan = next(w for w in res.words if w["t"].lower() == "zanzibar")
    assert 6 <= zan["x"] <= 18 and 6 <= zan["y"] <= 22
    assert 60 <= zan["w"] <= 130 and 10 <= zan["h"] <= 30


def test_dark_theme_is_inverted_and_small_windows_upscaled() -> None:
    dark = render(["x"], (300, 100), dark=True)
    prepared, scale = ocr.preprocess(dark)
    assert scale == 2.0 and prepared.size == (600, 200)
    assert np.asarray(prepared).mean() > 128          # now dark text on a light ground
    big = Image.new("RGB", (1920, 1080), "white")
    assert ocr.preprocess(big)[1] == 1.0


def grab_xterm(desktop, title: str, text: str, geometry: str) -> Image.Image:  # type: ignore[no-untyped-def]
    from localvideo.capture.base import open_backend

    desktop.xterm(title, text, geometry=geometry)
    # The project's own X11 backend grabs the active window's content rectangle.
    with open_backend("active-window") as backend:
        frame = None
        for _ in range(20):
            frame = backend.grab()
            if frame is not None and frame.title == title:
                break
    assert frame is not None and frame.title == title
    return Image.fromarray(frame.pixels[:, :, 2::-1].copy())   # BGRA → RGB


def test_real_xterm_window(desktop) -> None:  # type: ignore[no-untyped-def]
    image = grab_xterm(desktop, "ocr-probe", "glockenspiel 4711 marmalade", "60x6+50+60")
    res = ocr.read_text(image)
    assert {"glockenspiel", "4711", "marmalade"} <= words_of(res), res.text


def test_terminal_columns_read_as_lines(desktop) -> None:  # type: ignore[no-untyped-def]
    # Aligned columns (a build log): tesseract's automatic layout read them as separate
    # blocks and dropped the numbers; every line must come back whole and in order.
    steps = range(21, 33)
    log = "\n".join(f"[build] step {n} compiling module_{n}.c ... ok" for n in steps)
    res = ocr.read_text(grab_xterm(desktop, "build-log", log, "70x14+50+60"))
    read = [int(m) for line in res.text.splitlines()
            for m in re.findall(r"step (\d+) compiling", line)]
    assert read == list(steps), res.text


def test_missing_tesseract_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    ocr.set_engine("program")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(DependencyError) as err:
        ocr.check_tesseract()
    assert "apt-get install tesseract-ocr" in (err.value.hint or "")
    with pytest.raises(DependencyError) as err:
        ocr.read_text(render(["hello"], (200, 60)))
    assert "apt-get install tesseract-ocr" in (err.value.hint or "")


@pytest.mark.parametrize("engine", ["library", "program", "auto"])
def test_unknown_language_is_a_usage_error(engine: str) -> None:
    # auto: the library cannot load "klingon", the program is asked and says it has no data.
    ocr.set_engine(engine)
    with pytest.raises(UsageError) as err:
        ocr.read_text(render(["hello"], (200, 60)), lang="klingon")
    assert "ocr_lang" in (err.value.hint or "")


def test_tiny_or_empty_images_read_nothing() -> None:
    assert ocr.read_text(Image.new("RGB", (2, 2))).text == ""
    assert ocr.read_text(Image.new("RGB", (300, 100), "white")).words == []


def test_both_engines_read_the_same_words_in_the_same_places() -> None:
    # The library (libtesseract in this process, through tesserocr) and the program (the
    # tesseract executable) are two versions of tesseract here (5.5 / 5.3): the words, their
    # boxes and the rows must agree; confidences may differ by a few points.
    page = render([f"{n:3d} quarterly revenue table staging credentials migration"
                   for n in range(1, 11)], (900, 340))
    ocr.set_engine("library")
    assert ocr.check_tesseract().startswith("library ")
    lib = ocr.read_text(page)
    ocr.set_engine("program")
    assert ocr.check_tesseract().startswith("program ")
    prog = ocr.read_text(page)
    assert len(lib.words) == 10 * 7
    assert lib.text == prog.text
    assert [(w["t"], w["x"], w["y"], w["w"], w["h"]) for w in lib.words] == \
        [(w["t"], w["x"], w["y"], w["w"], w["h"]) for w in prog.words]
    assert all(abs(a["c"] - b["c"]) <= 10 for a, b in zip(lib.words, prog.words, strict=True))


def test_library_without_language_data_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Neither TESSDATA_PREFIX nor a tesseract program to ask where the data is.
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ocr.tessdata_dir() is None
    ocr.set_engine("library")
    with pytest.raises(DependencyError) as err:
        ocr.read_text(render(["hello"], (200, 60)))
    assert "tesseract-ocr-eng" in (err.value.hint or "") and "TESSDATA_PREFIX" in err.value.hint
    # auto falls back to the program, which is missing too: its own install hint.
    ocr.set_engine("auto")
    with pytest.raises(DependencyError) as err:
        ocr.read_text(render(["hello"], (200, 60)))
    assert "apt-get install tesseract-ocr" in (err.value.hint or "")
    # TESSDATA_PREFIX alone is enough for the library.
    monkeypatch.setenv("TESSDATA_PREFIX", "/usr/share/tesseract-ocr/5/tessdata")
    ocr.set_engine("library")
    assert "hello" in words_of(ocr.read_text(render(["hello"], (200, 60))))


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        ocr.set_engine("cuneiform")
    assert "auto, library, program" in (err.value.hint or "")
