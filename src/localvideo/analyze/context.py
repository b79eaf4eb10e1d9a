"""What a reasoner is told, built from the index: windows, screen text, earlier summaries.

Every string is redacted here, field by field, before a request exists: the offline
reasoner reads these fields and the model reasoners send their rendering, so neither can
see a secret. A key frame's text is redacted whole (a private key spans lines) before it
is clipped (a clipped secret would no longer match its pattern).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..reason.base import EarlierObservation, ScreenText, WindowSession
from .redact import redact_text

MAX_FRAME_CHARS = 600        # screen text per key frame in a request
MAX_TEXT_CHARS = 12000       # screen text per request

_JOIN = " | "                # how a key frame's OCR lines are joined (reason/base.py)


class Scrub:
    """Redacts each string it is given; ``found`` counts the findings of all of them."""

    def __init__(self) -> None:
        self.found = 0

    def __call__(self, text: str) -> str:
        clean, found = redact_text(text)
        self.found += len(found)
        return clean


class _Span(Protocol):
    """What a timeline entry needs: index.Session has it."""

    @property
    def app(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def start_ts(self) -> float: ...
    @property
    def end_ts(self) -> float: ...


class _Read(Protocol):
    """What a screen-text entry needs: store.text.KeyFrame and FrameText have it."""

    @property
    def ts(self) -> float: ...
    @property
    def app(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def text(self) -> str | None: ...


class _Summary(Protocol):
    """What an earlier observation needs: store.observations.Summary has it."""

    @property
    def start_ts(self) -> float: ...
    @property
    def end_ts(self) -> float: ...
    @property
    def summary(self) -> str | None: ...


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def timeline(sessions: Iterable[_Span], scrub: Scrub) -> list[WindowSession]:
    """Index sessions → the request's timeline."""
    return [WindowSession(scrub(s.app or ""), scrub(s.title or ""), s.start_ts, s.end_ts)
            for s in sessions]


def screen_texts(rows: Iterable[_Read], scrub: Scrub, *, max_chars: int = MAX_TEXT_CHARS,
                 ) -> tuple[list[ScreenText], bool]:
    """Key frames with their text → the request's screen text, in row order.

    Repeats of the same text in the same window are dropped; the second value says whether
    text was left out because the request had ``max_chars`` already.
    """
    out: list[ScreenText] = []
    seen: set[tuple[str, str, str]] = set()
    total = 0
    for r in rows:
        lines = [line.strip() for line in (r.text or "").splitlines() if line.strip()]
        text = _clip(scrub(_JOIN.join(lines)), MAX_FRAME_CHARS)
        app, title = scrub(r.app or ""), scrub(r.title or "")
        if (app, title, text) in seen:
            continue
        seen.add((app, title, text))
        size = len(app) + len(title) + len(text) + 16     # as a rendered line, about
        if total + size > max_chars:
            return out, True
        out.append(ScreenText(float(r.ts), app, title, tuple(text.split(_JOIN)) if text
                              else ()))
        total += size
    return out, False


def earlier(summaries: Iterable[_Summary], scrub: Scrub) -> list[EarlierObservation]:
    """Done observations → the request's earlier observations."""
    return [EarlierObservation(o.start_ts, o.end_ts, scrub(o.summary or ""))
            for o in summaries]
