"""The frame filter (change test, privacy exclusion) and the fixed canvas, on real pixels."""

from __future__ import annotations

import numpy as np
import pytest
from record_helpers import glyph, solid

from localvideo.capture.base import Frame
from localvideo.config import DEFAULT_EXCLUDE_APPS, DEFAULT_EXCLUDE_TITLES
from localvideo.errors import ConfigError
from localvideo.record.canvas import BLANK_YUV, PAD_YUV, Canvas, canvas_size
from localvideo.record.filter import EXCLUDED_TITLE, ChangeTest, Exclusion, FrameFilter


def frame(px: np.ndarray, app: str = "XTerm", title: str = "t") -> Frame:
    return Frame(pixels=px, ts=0.0, app=app, title=title, screen_w=1920, screen_h=1080)


def test_identical_frame_is_unchanged_and_one_glyph_counts() -> None:
    ct = ChangeTest()
    base = solid(800, 600)
    assert ct.changed(base) is True            # first frame always counts
    assert ct.changed(base.copy()) is False    # same pixels, new buffer
    typed = glyph(base, 400, 300)
    # One small character on 800×600 moves the mean by ~0.003: a mean test would miss it.
    assert abs(typed.astype(float).mean() - base.astype(float).mean()) < 0.01
    assert ct.changed(typed) is True
    assert ct.changed(typed.copy()) is False
    # A change in the last ragged row/column (600 and 800 are not multiples of 16... 600 is
    # not) must count too.
    corner = typed.copy()
    corner[599, 799, :3] = 0
    assert ct.changed(corner) is True


def test_threshold_ignores_tiny_noise_but_not_a_glyph() -> None:
    ct = ChangeTest(block=16, threshold=30)
    base = solid(640, 480, (200, 200, 200))
    ct.changed(base)
    noisy = base.copy()
    noisy[100, 100, 0] = 205                   # a 5-level wobble in one channel
    assert ct.changed(noisy) is False
    assert ct.changed(glyph(base, 300, 200)) is True


def test_resize_counts_as_change() -> None:
    ct = ChangeTest()
    ct.changed(solid(800, 600), ((0, 0, 800, 600),))
    assert ct.changed(solid(801, 600), ((0, 0, 801, 600),)) is True


def test_exclusion_by_app_case_insensitive_and_title_regex() -> None:
    ex = Exclusion(DEFAULT_EXCLUDE_APPS, DEFAULT_EXCLUDE_TITLES)
    assert ex.matches("KeePassXC", "Passwords.kdbx")
    assert ex.matches("firefox", "Bank — Mozilla Firefox Private Browsing")
    assert ex.matches("chromium", "New Tab - Chromium (Incognito)")
    assert not ex.matches("XTerm", "vim notes.txt")
    with pytest.raises(ConfigError) as err:
        Exclusion([], ["(unclosed"])
    assert "exclude_titles" in err.value.message and err.value.hint


def test_filter_withholds_title_and_encodes_blank_once() -> None:
    ff = FrameFilter(Exclusion(["secretapp"], []), "blank")
    d1 = ff.decide(frame(solid(300, 200), app="SecretApp", title="my vault"), (0, 0, 300, 200))
    d2 = ff.decide(frame(glyph(solid(300, 200), 5, 5), app="SecretApp", title="other"),
                   (0, 0, 300, 200))
    assert (d1.excluded, d1.changed, d1.title) == (True, True, EXCLUDED_TITLE)
    # Different secret pixels, same blank picture: nothing new to encode.
    assert (d2.excluded, d2.changed) == (True, False)
    d3 = ff.decide(frame(solid(300, 200), title="back"), (0, 0, 300, 200))
    assert (d3.excluded, d3.changed, d3.title) == (False, True, "back")
    skip = FrameFilter(Exclusion(["secretapp"], []), "skip")
    assert skip.decide(frame(solid(30, 20), app="secretapp"), (0, 0, 30, 20)).changed is False
    with pytest.raises(ConfigError):
        FrameFilter(Exclusion([], []), "blur")


def test_canvas_size_caps_long_side_and_keeps_even() -> None:
    assert canvas_size(1920, 1080, 1920) == (1920, 1080)
    assert canvas_size(3840, 2160, 1920, scale=2.0) == (1920, 1080)   # 4K at 200 %
    assert canvas_size(3840, 2160, 1920, scale=1.5) == (2560, 1440)   # 4K at 150 %
    assert canvas_size(3024, 1964, 1920, scale=2.0) == (1920, 1246)   # Retina MacBook
    # 100 %: the cap would shrink text below its point size; the canvas is the display.
    assert canvas_size(2560, 1440, 1920) == (2560, 1440)
    assert canvas_size(3840, 2160, 1920) == (3840, 2160)
    assert canvas_size(1001, 777, 1920) == (1000, 776)
    w, h = canvas_size(1080, 2400, 1920, 2.0)  # portrait: the cap applies to the height
    assert h == 1920 and w % 2 == 0 and abs(w / h - 1080 / 2400) < 0.01


def _decoded_rgb(c: Canvas) -> np.ndarray:
    return c.video_frame().to_ndarray(format="rgb24")


def test_window_drawn_at_native_scale_with_padding() -> None:
    c = Canvas(640, 360)
    red = solid(201, 101, (0, 0, 255))         # odd size: xterm snaps to character cells
    r = c.draw(frame(red))
    assert r.as_tuple() == (0, 0, 201, 101)
    rgb = _decoded_rgb(c)
    inside = rgb[5:95, 5:195].reshape(-1, 3).mean(axis=0)
    assert inside[0] > 200 and inside[1] < 60 and inside[2] < 60     # still red: not scaled
    pad = rgb[200:, 300:]                      # far from the window: padding grey
    assert np.abs(pad.astype(int) - pad[0, 0]).max() == 0
    assert c.y[300, 600] == PAD_YUV[0]
    # A smaller window next: the old area returns to padding, nothing is stretched.
    r2 = c.draw(frame(solid(100, 50, (255, 0, 0))))
    assert r2.as_tuple() == (0, 0, 100, 50)
    rgb2 = _decoded_rgb(c)
    assert rgb2[25, 50, 2] > 200 and rgb2[25, 50, 0] < 60             # blue window
    assert c.y[90, 150] == PAD_YUV[0]                                 # old red area cleared


def test_window_larger_than_canvas_is_scaled_whole_not_cropped() -> None:
    # Issue 9: a maximized window on a monitor wider than the canvas (or a Retina window)
    # lost everything right of the cap. Now it is scaled down uniformly and kept whole.
    c = Canvas(320, 240)
    px = solid(640, 400)
    px[:, 320:, :3] = 0                        # right half black: beyond the canvas at 1:1
    r = c.draw(frame(px))
    assert r.as_tuple() == (0, 0, 320, 200)    # scaled by 1/2, aspect kept
    rgb = _decoded_rgb(c)
    assert rgb[:200, :150].min() > 200        # left half white
    assert rgb[:200, 170:320].max() < 40       # right half black: still in the picture
    assert abs(int(rgb[220, 100, 0]) - int(rgb[220, 100, 2])) < 10   # padding below


def test_display_mode_fits_uniformly() -> None:
    c = Canvas(960, 540)
    px = solid(1920, 1080)
    px[:, 960:, :3] = 0
    r = c.draw(frame(px), fit=True)
    assert r.as_tuple() == (0, 0, 960, 540)    # same aspect: scaled by exactly 1/2
    rgb = _decoded_rgb(c)
    assert rgb[:, :470].min() > 200 and rgb[:, 490:].max() < 40


def test_blank_hides_everything() -> None:
    c = Canvas(64, 48)
    c.draw(frame(solid(64, 48, (0, 0, 255))))
    assert c.blank().as_tuple() == (0, 0, 0, 0)
    assert int(c.y.min()) == int(c.y.max()) == BLANK_YUV[0]
    with pytest.raises(ValueError):
        Canvas(63, 48)
