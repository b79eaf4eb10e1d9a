"""Shared test inputs for the reasoner tests: a request text, small real PNGs."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from localvideo.reason.base import OBSERVATION_SCHEMA, ImagePart, ReasonRequest

TEXT = """Date: 2026-11-25
## Timeline
14:03:12–14:05:40  firefox — Build #42 failed - Jenkins (2m28s)
14:05:40–14:06:10  xterm — ~/src/app (30s)

## Screen text
[14:03:12] firefox — Build #42 failed - Jenkins: error: test_login failed with AssertionError
[14:05:41] xterm — ~/src/app: $ make test
"""


def png(text: str = "frame", size: tuple[int, int] = (64, 32)) -> bytes:
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((2, 2), text, fill="black")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def observe_request(images: int = 2, **kw: object) -> ReasonRequest:
    parts = [ImagePart(png(f"frame {i}"), "image/png", 1795615392.0 + i, f"14:03:1{i} — firefox")
             for i in range(images)]
    return ReasonRequest(task="observe", system="You watch a screen recording.", text=TEXT,
                         images=parts, schema=OBSERVATION_SCHEMA, **kw)  # type: ignore[arg-type]
