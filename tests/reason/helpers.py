"""Shared test inputs for the reasoner tests: a request's context, small real PNGs."""

from __future__ import annotations

import io
from datetime import datetime

from PIL import Image, ImageDraw

from localvideo.reason.base import (
    OBSERVATION_SCHEMA,
    ImagePart,
    ReasonRequest,
    ScreenText,
    WindowSession,
)

DAY = "2026-11-25"


def at(hms: str, day: str = DAY) -> float:
    """Local ``HH:MM:SS`` on ``day`` as unix seconds."""
    return datetime.fromisoformat(f"{day} {hms}").timestamp()


def window(start: str, end: str, app: str, title: str, day: str = DAY) -> WindowSession:
    return WindowSession(app, title, at(start, day), at(end, day))


def screen(hms: str, app: str, title: str, *lines: str, day: str = DAY) -> ScreenText:
    return ScreenText(at(hms, day), app, title, lines)


# The context every model-reasoner test sends; it renders as the text in reason/base.py.
TIMELINE = [window("14:03:12", "14:05:40", "firefox", "Build #42 failed - Jenkins"),
            window("14:05:40", "14:06:10", "xterm", "~/src/app")]
SCREEN = [screen("14:03:12", "firefox", "Build #42 failed - Jenkins",
                 "error: test_login failed with AssertionError"),
          screen("14:05:41", "xterm", "~/src/app", "$ make test")]
TEXT = """Local date: 2026-11-25

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
    return ReasonRequest(task="observe", system="You watch a screen recording.",
                         timeline=list(TIMELINE), screen=list(SCREEN), images=parts,
                         schema=OBSERVATION_SCHEMA, **kw)  # type: ignore[arg-type]
