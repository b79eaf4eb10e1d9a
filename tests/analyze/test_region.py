"""Reading only what changed (analyze/region.py) gives the text a whole read gives, with
real tesseract on rendered terminal-like pages."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from localvideo.analyze import ocr, region

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
LINES = [
    "$ make test",
    "[build] step 1 compiling module_1.c ... ok",
    "[build] step 2 compiling module_2.c ... ok",
    "notes: rotate the staging credentials tonight",
    "meeting at four about the quarterly report",
    "remember the migration for observations",
]


def page(lines: list[str], width: int = 1400, height: int = 700) -> Image.Image:
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    for i, line in enumerate(lines):
        d.text((8, 8 + i * 22), line, fill="black", font=font)
    return img


def gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def words(text: str) -> list[str]:
    return text.split()


def test_a_typed_line_is_read_alone_and_the_text_stays_whole() -> None:
    before = page(LINES)
    first = ocr.read_text(before)
    typed = [*LINES, "TODO write the lantern harbour summary"]
    after = page(typed)
    bands = region.changed_bands(gray(before), gray(after), first.words)
    assert bands is not None and len(bands) == 1
    a, b = bands[0]
    assert b - a < 60, bands                     # one line, not the page
    merged = region.read_changed(after, first, bands)
    whole = ocr.read_text(after)
    assert words(merged.text) == words(whole.text), (merged.text, whole.text)
    assert "lantern" in merged.text and "quarterly" in merged.text
    assert merged.text.splitlines()[-1].startswith("TODO")


def test_an_edit_inside_the_page_replaces_that_line_only() -> None:
    before = page(LINES)
    first = ocr.read_text(before)
    edited = list(LINES)
    edited[3] = "notes: rotate the production credentials tonight"
    after = page(edited)
    bands = region.changed_bands(gray(before), gray(after), first.words)
    assert bands is not None and len(bands) == 1
    merged = region.read_changed(after, first, bands)
    assert "production" in merged.text and "staging" not in merged.text
    assert words(merged.text) == words(ocr.read_text(after).text)


def test_nothing_changed_reads_nothing_and_keeps_the_text() -> None:
    img = page(LINES)
    first = ocr.read_text(img)
    assert region.changed_bands(gray(img), gray(img), first.words) == []
    same = region.read_changed(img, first, [])
    assert same.text == first.text


def test_a_scrolled_or_resized_page_is_read_whole() -> None:
    full = [f"[build] step {i} compiling module_{i}.c ... ok" for i in range(30)]
    before = page(full)
    first = ocr.read_text(before)
    scrolled = page(full[3:] + ["$"])
    assert region.changed_bands(gray(before), gray(scrolled), first.words) is None
    assert region.changed_bands(gray(before), gray(page(full, 1200)), first.words) is None


def test_a_band_grows_to_the_words_it_cuts() -> None:
    g = np.full((200, 300), 255, np.uint8)
    after = g.copy()
    after[100:104, 10:40] = 0
    # An old word whose box reaches from 90 to 120 rows: the band must cover all of it.
    bands = region.changed_bands(g, after, [{"t": "word", "x": 5, "y": 90, "w": 50, "h": 30}])
    assert bands is not None and bands[0][0] <= 90 and bands[0][1] >= 120
