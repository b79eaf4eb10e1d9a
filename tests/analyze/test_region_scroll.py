"""A scrolled window costs only its new lines (analyze/region.py's shift detection), and the
text is the text a whole read gives: real tesseract on pages rendered with DejaVu Sans Mono,
as drawn (pixel-exact scrolls: the words must equal a whole read's) and through the
recorder's own encoder (the noise a chunk really has: the shift must still be found)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from localvideo import media
from localvideo.analyze import ocr, region
from localvideo.record.encoder import ChunkWriter

QUALITY = 32                      # [record] quality's default

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
PITCH = 22                        # px from one text line to the next
WIDTH, HEIGHT = 1200, 660
STATUS = "-- build running: press q to stop --"
WORDS = ["harbour", "lantern", "quarterly", "migration", "credentials", "observations",
         "recorder", "summary", "revenue", "staging", "meeting", "tonight", "module",
         "compiling", "fragment", "window", "keyboard", "printer", "garden", "silver"]


def line(i: int) -> str:
    a, b, c = WORDS[i % 20], WORDS[(i * 7 + 3) % 20], WORDS[(i * 13 + 5) % 20]
    return f"[build] step {i} {a} {b} module_{i}.c {c} ok"


def page(first: int, *, status: bool = True, offset: int = 0) -> Image.Image:
    """A terminal showing log lines ``first``.. (moved up ``offset`` px more), with a
    status line that stays at the bottom."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    body = HEIGHT - (2 * PITCH if status else 0)
    for i in range(first - 2, first + HEIGHT // PITCH + 2):
        y = 8 + (i - first) * PITCH - offset
        if i >= 0 and y >= 0 and y + PITCH <= body:
            d.text((8, y), line(i), fill="black", font=font)
    if status:
        d.text((8, HEIGHT - PITCH - 4), STATUS, fill="black", font=font)
    return img


def encoded(tmp: Path, *pictures: Image.Image) -> list[Image.Image]:
    """The pictures as a chunk's decoded frames: the recorder's own writer and encoder
    (libx264 at the default quality, CRF 32), so the noise between them is real."""
    path = tmp / "chunk.mp4"
    w = ChunkWriter(path, WIDTH, HEIGHT, "libx264", QUALITY)
    for i, p in enumerate(pictures):
        w.write(media.frame_from_ndarray(np.asarray(p.convert("RGB"))), i * 500)
    w.close()
    return [d.image() for d in media.iter_frames(path, strict=True)]


def scrolled(tmp: Path, start: int, end: int, **kw: Any) -> tuple[Image.Image, Image.Image]:
    """The key frames at log line ``start`` and at ``end`` of a log that scrolled one line
    per frame between them (after a few frames of the same, so neither is the chunk's first
    picture, which the encoder codes apart)."""
    step = 1 if end >= start else -1
    firsts = [start - step * i for i in range(4, 0, -1)]
    frames = encoded(tmp, *(page(i, **kw) for i in [*firsts, *range(start, end + step, step)]))
    return frames[len(firsts)], frames[-1]


def gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


class Spy:
    """Counts the rows handed to tesseract (the real one still reads them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows = 0
        real = ocr.read_text

        def read_text(image: Image.Image, *args: Any, **kw: Any) -> ocr.OcrResult:
            self.rows += image.height
            return real(image, *args, **kw)

        monkeypatch.setattr(ocr, "read_text", read_text)


def read_like_the_loop(before: Image.Image, after: Image.Image) -> tuple[ocr.OcrResult,
                                                                          region.Plan | None]:
    """What analyze/loop.py does with a key frame in a window it read before."""
    first = ocr.read_text(before)
    how = region.plan(gray(before), gray(after), first)
    if how is None:
        return ocr.read_text(after), None
    return region.read_changed(after, how.kept, how.bands), how


def close_words(merged: ocr.OcrResult, whole: ocr.OcrResult) -> None:
    """Through the encoder, a line kept from the last read and the same line read again in
    the new frame are two reads of two noisy pictures, which tesseract now and then
    reads apart ("module_12.c" / "module _12.c"): nearly all words, same lines."""
    got, want = merged.text.split(), whole.text.split()
    assert difflib.SequenceMatcher(None, got, want).ratio() >= 0.95, (merged.text, whole.text)
    assert len(merged.text.splitlines()) == len(whole.text.splitlines())


def same_words(merged: ocr.OcrResult, whole: ocr.OcrResult, tol: int = 4) -> None:
    got = [w["t"] for w in merged.words]
    want = [w["t"] for w in whole.words]
    assert merged.text.split() == whole.text.split(), (merged.text, whole.text)
    # Same words at the same places: every word of the whole read has its twin in the
    # merged one within a few px.
    assert sorted(got) == sorted(want)
    for w in whole.words:
        assert any(m["t"] == w["t"] and all(abs(int(m[k]) - int(w[k])) <= tol
                                            for k in ("x", "y", "w", "h"))
                   for m in merged.words), (w, [m for m in merged.words if m["t"] == w["t"]])


@pytest.mark.parametrize("lines", [1, 3, 5])
def test_a_log_scrolled_by_lines_reads_only_the_new_lines(
        monkeypatch: pytest.MonkeyPatch, lines: int) -> None:
    before, after = page(10), page(10 + lines)
    # In place, almost every row moved: the old reading read all of it.
    first = ocr.read_text(before)
    assert region.changed_bands(gray(before), gray(after), first.words) is None
    spy = Spy(monkeypatch)
    merged, how = read_like_the_loop(before, after)
    assert how is not None and how.shift == lines * PITCH
    # The new lines and the status line below them, not the page.
    assert spy.rows - HEIGHT <= (lines + 3) * PITCH, (spy.rows, how.bands)
    same_words(merged, ocr.read_text(after))
    assert f"step {10 + lines} " in merged.text and STATUS.split()[1] in merged.text
    assert "step 10 " not in merged.text


@pytest.mark.parametrize("lines", [1, 4])
def test_a_recorded_log_scroll_is_found_through_the_encoder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: int) -> None:
    before, after = scrolled(tmp_path, 10, 10 + lines)
    spy = Spy(monkeypatch)
    merged, how = read_like_the_loop(before, after)
    assert how is not None and how.shift == lines * PITCH
    assert spy.rows - HEIGHT <= (lines + 3) * PITCH, (spy.rows, how.bands)
    close_words(merged, ocr.read_text(after))
    assert f"step {10 + lines} " in merged.text and "step 10 " not in merged.text


def test_scrolling_back_up_reads_the_lines_that_came_in_at_the_top(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    merged, how = read_like_the_loop(page(20), page(16))
    assert how is not None and how.shift == -4 * PITCH
    assert spy.rows - HEIGHT <= 5 * PITCH + 2 * PITCH, (spy.rows, how.bands)
    same_words(merged, ocr.read_text(page(16)))
    assert merged.text.splitlines()[0].startswith("[build] step 16 ")
    # The same through the encoder.
    before, after = scrolled(tmp_path, 20, 16)
    merged, how = read_like_the_loop(before, after)
    assert how is not None and how.shift == -4 * PITCH
    close_words(merged, ocr.read_text(after))


def test_a_wheel_scroll_by_pixels_not_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    # A browser scrolls by pixels: 2 lines and 3 px, no status line.
    offsets = [0, 9, 18, 27, 36, 2 * PITCH + 3]
    pictures = [page(30, status=False, offset=o) for o in offsets]
    spy = Spy(monkeypatch)
    merged, how = read_like_the_loop(pictures[-3], pictures[-1])
    assert how is not None and how.shift == offsets[-1] - offsets[-3]
    assert spy.rows - HEIGHT <= 3 * PITCH, (spy.rows, how.bands)
    same_words(merged, ocr.read_text(pictures[-1]))
    frames = encoded(tmp_path, *pictures)
    merged, how = read_like_the_loop(frames[-3], frames[-1])
    assert how is not None and how.shift == offsets[-1] - offsets[-3]
    close_words(merged, ocr.read_text(frames[-1]))


def test_another_page_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A page turned (less's space bar): nothing of the last page is left to keep.
    *_, before, after = encoded(tmp_path, page(0), page(0), page(0), page(200))
    spy = Spy(monkeypatch)
    merged, how = read_like_the_loop(before, after)
    assert how is None and spy.rows == 2 * HEIGHT
    assert "step 0 " not in merged.text and "step 201 " in merged.text


def test_a_line_typed_in_place_is_not_taken_for_a_scroll() -> None:
    before, after = page(40, status=False), page(40)
    first = ocr.read_text(before)
    how = region.plan(gray(before), gray(after), first)
    assert how is not None and how.shift == 0 and len(how.bands) == 1
    assert how.bands[0][0] > HEIGHT - 4 * PITCH


# -- words seen before (region.WordCache) ---------------------------------------------------

def text_page(lines: list[str]) -> Image.Image:
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 16)
    for i, text in enumerate(lines):
        d.text((8, 8 + i * PITCH), text, fill="black", font=font)
    return img


def document(first: int, n: int = 28) -> list[str]:
    """Lines of a long document as ``less`` pages it: numbered, the words recurring."""
    return [f"{i}. {WORDS[i % 20]} {WORDS[(i * 3) % 20]} the {WORDS[(i * 7 + 1) % 20]} "
            f"of {WORDS[(i * 11 + 2) % 20]} and {WORDS[(i * 13 + 5) % 20]} in section {i}:"
            for i in range(first, first + n)]


def test_a_turned_page_of_known_words_reads_only_its_new_words(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = region.WordCache()
    first = text_page(document(0))
    assert cache.read(first, gray(first)).text.split() == ocr.read_text(first).text.split()
    turned = text_page(document(28))
    spy = Spy(monkeypatch)
    got = cache.read(turned, gray(turned))
    # One tesseract call, on the lines' new numbers only: the old words are painted over.
    assert spy.rows < 2 * HEIGHT
    # The words kept are tesseract's reading of the same pixels on the first page (where,
    # in another line's context, it read "lantern" as "Lantern" now and then): as good as
    # a whole read, against what is on the page.
    truth = " ".join(document(28)).split()
    whole = ocr.read_text(turned)
    got_lines = got.text.splitlines()
    assert len(got_lines) == len(whole.text.splitlines()) == 28

    def right(text: str) -> float:
        return difflib.SequenceMatcher(None, text.split(), truth).ratio()

    assert right(got.text) >= min(0.98, right(whole.text) - 0.01), (got.text, whole.text)
    # The new words, every number, read right.
    for i, text in enumerate(got_lines, start=28):
        assert text.startswith(f"{i}. ") and text.endswith(f" section {i}:"), text


def test_a_word_one_letter_apart_is_read_not_taken_from_the_cache() -> None:
    cache = region.WordCache()
    lines = ["remember the lantern for the harbour meeting tonight"] * 3 + document(0, 20)
    first = text_page(lines)
    cache.read(first, gray(first))
    # Same width in a monospace font, one glyph apart: a cache keyed loosely would say
    # "lantern" and "harbour" again.
    changed = ["remember the lanterm for the harhour meeting tonight"] + lines[1:]
    after = text_page(changed)
    got = cache.read(after, gray(after))
    # (tesseract reads this font's "l" as "L" now and then, in a whole read too)
    assert got.text.lower().splitlines()[0].split() == \
        ["remember", "the", "lanterm", "for", "the", "harhour", "meeting", "tonight"]
    assert got.text.lower().splitlines()[1].split()[2] == "lantern"


def test_a_frame_of_mostly_new_words_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = region.WordCache()
    first = text_page(document(0))
    cache.read(first, gray(first))
    other = page(500, status=False)
    spy = Spy(monkeypatch)
    got = cache.read(other, gray(other))
    assert spy.rows == HEIGHT
    assert got.text.split() == ocr.read_text(other).text.split()


def test_the_cache_through_the_encoder_keeps_nearly_every_word(tmp_path: Path) -> None:
    cache = region.WordCache()
    *_, first, turned = encoded(tmp_path, text_page(document(0)), text_page(document(0)),
                                text_page(document(28)))
    cache.read(first, gray(first))
    got = cache.read(turned, gray(turned))
    close_words(got, ocr.read_text(turned))
    assert "28." in got.text.split() and "section 55:" in got.text


def test_the_cache_stays_within_its_bytes() -> None:
    first = text_page(document(0))
    found = region.runs(gray(first))
    words = ocr.read_text(first).words
    cache = region.WordCache(limit=4000)
    cache.learn(gray(first), found, words)
    assert 0 < cache.bytes <= 4000 and cache.size < len(found)
    roomy = region.WordCache()
    roomy.learn(gray(first), found, words)
    assert roomy.size > 100 > cache.size            # (most runs are one word each)
