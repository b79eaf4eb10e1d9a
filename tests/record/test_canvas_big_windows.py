"""Windows larger than the canvas cap (issue 9, item 2): recorded whole and still readable.

A maximized window on a monitor wider than the 1920-px cap, a Retina window captured in
pixels and a 4K display used to be cropped at the cap. The policy now: scale down uniformly,
never below the text's point size (canvas.LEGIBLE): only HiDPI pixels are scaled away; where
the cap would go further, the canvas grows. Checked end to end with real text, the real canvas (yuv420p, swscale) and
real tesseract on the picture the encoder is given.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from localvideo.analyze.ocr import read_text
from localvideo.capture.base import Frame
from localvideo.record.canvas import Canvas, canvas_size

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ["harbour", "quantum", "lantern", "meridian", "saffron", "glacier"]


def _window(w: int, h: int, px_per_pt: float) -> np.ndarray:
    """A white window with 13-pt UI text (13 × scale px) spread over it, the last words
    in the right and bottom parts that a crop at 1920 px used to cut off."""
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, round(13 * px_per_pt))
    spots = [(0.02, 0.05), (0.30, 0.30), (0.55, 0.50), (0.78, 0.12), (0.80, 0.70),
             (0.05, 0.92)]
    for word, (fx, fy) in zip(WORDS, spots, strict=True):
        draw.text((int(w * fx), int(h * fy)), f"{word} report", fill="black", font=font)
    rgb = np.asarray(img)
    return np.ascontiguousarray(np.dstack([rgb[..., ::-1], np.full((h, w), 255, np.uint8)]))


@pytest.mark.parametrize("screen,px_per_pt", [
    ((3840, 2160), 1.0),       # 4K at 100 % (Linux, some Windows setups): canvas grows
    ((3840, 2160), 1.5),       # 4K at 150 % (Windows' default): 2560 canvas, 1.0×
    ((3024, 1964), 2.0),       # Retina MacBook Pro 14": scaled to the 1920 cap
])
def test_maximized_window_larger_than_the_cap_is_whole_and_legible(
        screen: tuple[int, int], px_per_pt: float) -> None:
    w, h = screen
    cw, ch = canvas_size(w, h, 1920, px_per_pt)
    canvas = Canvas(cw, ch)
    rect = canvas.draw(Frame(pixels=_window(w, h, px_per_pt), ts=0.0, w=w, h=h,
                             screen_w=w, screen_h=h, extra={"scale": px_per_pt}))
    # Whole: the drawn rectangle is the window scaled uniformly, nothing cut.
    assert rect.x == rect.y == 0
    assert abs(rect.w / w - rect.h / h) < 0.01 and rect.w <= cw and rect.h <= ch
    assert rect.w / w * px_per_pt >= 0.99                 # text at ≥ its point size
    picture = canvas.video_frame().to_ndarray(format="rgb24")[: rect.h, : rect.w]
    text = read_text(Image.fromarray(picture)).text.lower()
    missing = [word for word in WORDS if word not in text]
    assert not missing, f"{screen}@{px_per_pt}: unreadable after scaling: {missing}\n{text}"


def test_recorder_keeps_a_maximized_1440p_window_whole_and_readable(make_service) -> None:  # type: ignore[no-untyped-def]
    # End to end through the recorder and the encoder at the default quality: a maximized
    # window on a 2560×1440 monitor at 100 %. The cap alone (1920) used to crop away the
    # right quarter of it; now the canvas is the display's size and the text reads in the
    # chunk (at 0.9× — a 2304-px canvas — tesseract read "lantern" as "lantem" here).
    from record_helpers import Step, run_scripted

    svc = make_service()
    px = _window(2560, 1440, 1.0)
    run_scripted(svc, [Step(px, screen=(2560, 1440)), Step(px, screen=(2560, 1440))])
    row = dict(svc.db.query("SELECT * FROM frames ORDER BY ts LIMIT 1")[0])
    assert (row["w"], row["h"]) == (2560, 1440)
    picture = svc.record.frame_image(row["ts"], crop=True)
    text = read_text(picture).text.lower()
    missing = [word for word in WORDS if word not in text]
    assert not missing, f"unreadable in the recorded chunk: {missing}\n{text}"
