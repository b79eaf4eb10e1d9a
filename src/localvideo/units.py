"""Parsing of the human units every command takes: durations, byte sizes, moments in time.

Each parser raises :class:`UsageError` naming the accepted forms, so a typo in a flag gets a
precise message instead of a traceback.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import UsageError

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """'90' → 90.0, '30s', '5m', '1h30m', '2d' → seconds."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        s = text.strip().lower()
        if not s:
            raise UsageError(f"empty {what}", "use a number of seconds or e.g. 30s, 5m, 2h, 7d")
        try:
            value = float(s)
        except ValueError:
            parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d|w)", s)
            if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d|w)", "", s).strip():
                raise UsageError(
                    f"invalid {what} {text!r}",
                    "use a number of seconds or e.g. 30s, 5m, 1h30m, 2h, 7d",
                ) from None
            value = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if value < 0:
        raise UsageError(f"{what} must not be negative (got {text!r})")
    return value


def parse_size(text: str | int, *, what: str = "size") -> int:
    """'500MB', '2GiB', '1e9', 1000 → bytes."""
    if isinstance(text, int):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-zA-Z]*)\s*", text)
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise UsageError(f"invalid {what} {text!r}", "use bytes or e.g. 500MB, 2GB, 1.5GiB")
        value = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    if value < 0:
        raise UsageError(f"{what} must not be negative (got {text!r})")
    return int(value)


def parse_time(text: str | float, *, now: float | None = None, what: str = "time") -> float:
    """A moment → unix seconds.

    Accepts unix seconds, ISO 8601 (``2026-11-25T14:03:00``, local time when no zone),
    ``HH:MM[:SS]`` (today, local), a relative age (``2h`` = two hours ago), ``now``, or
    ``today`` / ``yesterday`` (that day's local midnight), optionally with ``HH:MM[:SS]``.
    """
    now = time.time() if now is None else now
    if isinstance(text, int | float):
        return float(text)
    s = text.strip()
    if s.lower() == "now":
        return now
    day = re.fullmatch(r"(today|yesterday)(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?", s, re.I)
    if day:
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
        if day.group(1).lower() == "yesterday":
            midnight -= timedelta(days=1)
        h, m, sec = (int(g or 0) for g in day.group(2, 3, 4))
        if h > 23 or m > 59 or sec > 59:
            raise UsageError(f"invalid {what} {text!r}: no such time of day",
                             "use HH:MM[:SS] with hours 0-23, e.g. yesterday 14:05")
        return (midnight + timedelta(hours=h, minutes=m, seconds=sec)).timestamp()
    try:
        v = float(s)
        if v > 1e8:  # a unix timestamp, not an age in seconds
            return v
    except ValueError:
        pass
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", s):
        today = datetime.fromtimestamp(now).strftime("%Y-%m-%d")
        s = f"{today}T{s}"
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        return dt.timestamp()
    except ValueError:
        pass
    try:
        return now - parse_duration(s, what=what)
    except UsageError:
        raise UsageError(
            f"invalid {what} {text!r}",
            "use ISO 8601 (2026-11-25T14:03:00), HH:MM[:SS] for today, yesterday [HH:MM], "
            "today, unix seconds, or an age such as 90s, 15m, 2h",
        ) from None


def format_ts(ts: float) -> str:
    """Unix seconds → local ISO time with milliseconds, for people."""
    return datetime.fromtimestamp(ts).isoformat(timespec="milliseconds")


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_duration(seconds: float | None, *, spaced: bool = False) -> str:
    """A duration for people: ``45s``, ``3m05s``, ``1h02m`` (request texts, the CLI); with
    ``spaced``: ``45 s``, ``3 min 05 s``, ``1 h 02 min`` (the web UI)."""
    total = int(round(seconds or 0))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if spaced:
        if h:
            return f"{h} h {m:02d} min"
        return f"{m} min {s:02d} s" if m else f"{s} s"
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


# -- moments named in a question ("what was I doing at 14:00?") ----------------------------

_NUM_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10,
              "fifteen": 15, "twenty": 20, "thirty": 30, "few": 3, "couple": 2}
_PARTS_OF_DAY = {"morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24),
                 "tonight": (18, 24), "night": (18, 24)}
_CLOCK = re.compile(r"(?<![\d:])(\d{1,2})[:h](\d{2})(?::(\d{2}))?(?:\s*([ap])\.?m\.?\b)?(?![\d:])",
                    re.I)
_HOUR_AMPM = re.compile(r"(?<![\d:])(\d{1,2})\s*([ap])\.?m\.?\b", re.I)
_SPAN = re.compile(r"\b(?:last|past)\s+(?:(\d+|an?|one|two|three|four|five|ten|fifteen|twenty|"
                   r"thirty|few|couple(?:\s+of)?)\s+)?(min(?:ute)?s?|h(?:ou)?rs?|hours?)\b", re.I)
_AGO = re.compile(r"\b(\d+|an?|one|two|three|four|five|ten|fifteen|twenty|thirty|few|"
                  r"couple(?:\s+of)?)\s+(min(?:ute)?s?|h(?:ou)?rs?|hours?)\s+ago\b", re.I)
_JUST_NOW = re.compile(r"\b(?:just now|a moment ago|a minute ago|right now)\b", re.I)
_DAY_PART = re.compile(r"\b(?:(this|yesterday|last)\s+)?(morning|afternoon|evening|night)\b|"
                       r"\b(tonight)\b", re.I)
_ROUGHLY = re.compile(r"\b(?:around|about|approximately|roughly|circa)\b|~", re.I)
# Words that place a question in time rather than name what was on screen: searching the
# screen text for them only adds noise.
TIME_WORDS = frozenset("""yesterday today tonight morning afternoon evening night noon midnight
around about approximately roughly circa ago just now moment last past earlier recently
minute minutes min mins hour hours hr hrs am pm""".split())
# Words too common to search the screen text for ("what was I doing with the invoice?" looks
# for "doing" and "invoice" only after these go): one list for the analysis and the offline
# reasoner.
STOP_WORDS = frozenset("""a an and are as at be been but by can could did do does doing for
from had has have how i i'm in into is it its me my of on or so that the then there this to up
was were what when where which while who why with you your about after before during we us
our they them their""".split())
# Words that ask for an overview, not for something on screen ("what did I work on?",
# "summarize my morning"): a question of only these, stop words and times is answered from the
# timeline and screen text of its span (the last hour when it names none).
OVERVIEW_WORDS = frozenset("""summarize summarise summary recap overview work worked
working happen happened happening busy spend spent time""".split())
# A number with a time unit ("3pm", "14h30", "20min"); a bare number is not one: invoice
# numbers and error codes are what people search for.
_TIME_TOKEN = re.compile(r"^\d+(?:am|pm|h|hr|hrs|min|mins)$|^\d+h\d+$", re.I)


def is_time_word(word: str) -> bool:
    return word.lower() in TIME_WORDS or bool(_TIME_TOKEN.match(word))


def strip_times(text: str) -> str:
    """The question without the time expressions :func:`question_times` reads, so "at 14:00"
    or "two hours ago" add no search words (while "invoice 2231" keeps its number)."""
    for pattern in (_CLOCK, _HOUR_AMPM, _SPAN, _AGO, _JUST_NOW, _DAY_PART):
        text = pattern.sub(" ", text)
    return text


@dataclass(frozen=True)
class TimeWindow:
    """A span of time a question is about, with the words that named it."""
    start: float
    end: float
    label: str


def _count(word: str | None) -> int:
    if not word:
        return 1
    w = word.lower().split()[0]
    return int(w) if w.isdigit() else _NUM_WORDS.get(w, 1)


def _unit_seconds(unit: str) -> int:
    return 60 if unit.lower().startswith("m") else 3600


def question_times(text: str, *, now: float | None = None) -> list[TimeWindow]:
    """The moments a free-text question names, as windows of local time.

    ``at 14:00`` / ``3pm`` → ±5 min (±15 min after "around"), on the day named (``yesterday``)
    or else the last such clock time (a time later than now means yesterday); ``last 20
    minutes``; ``2 hours ago``; ``just now``; ``this morning``; ``yesterday`` or ``today`` alone →
    the whole day. Anything else is not a time: a question is free text, so nothing raises.
    """
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = re.search(r"\byesterday\b", text, re.I) is not None
    day = today - timedelta(days=1) if yesterday else today
    half = 900.0 if _ROUGHLY.search(text) else 300.0
    out: list[TimeWindow] = []

    def clock(hour: int, minute: int, second: int, ampm: str | None, label: str) -> None:
        if ampm:
            if not 1 <= hour <= 12:
                return
            hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
        if hour > 23 or minute > 59 or second > 59:
            return
        at = day.replace(hour=hour, minute=minute, second=second).timestamp()
        if not yesterday and at > now + 60:
            at -= 86400       # "at 23:00" asked at 09:00 means last night
        out.append(TimeWindow(at - half, at + half, label.strip()))

    taken: list[tuple[int, int]] = []
    for m in _CLOCK.finditer(text):
        taken.append(m.span())
        clock(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), m.group(4), m.group(0))
    for m in _HOUR_AMPM.finditer(text):
        if not any(a <= m.start() < b for a, b in taken):
            clock(int(m.group(1)), 0, 0, m.group(2), m.group(0))
    for word, hour in (("noon", 12), ("midnight", 0)):
        if re.search(rf"\b{word}\b", text, re.I):
            clock(hour, 0, 0, None, word)
    for m in _SPAN.finditer(text):
        out.append(TimeWindow(now - _count(m.group(1)) * _unit_seconds(m.group(2)), now,
                              m.group(0)))
    for m in _AGO.finditer(text):
        at = now - _count(m.group(1)) * _unit_seconds(m.group(2))
        out.append(TimeWindow(at - half, at + half, m.group(0)))
    if _JUST_NOW.search(text):
        out.append(TimeWindow(now - 300, now, "just now"))
    for m in _DAY_PART.finditer(text):
        part = (m.group(2) or m.group(3)).lower()
        # "yesterday evening", and "last night" (said today, it is yesterday's).
        d = today - timedelta(days=1) if (m.group(1) or "").lower() in ("yesterday", "last") \
            else day
        lo, hi = _PARTS_OF_DAY[part]
        start = d + timedelta(hours=lo)
        out.append(TimeWindow(start.timestamp(), min((d + timedelta(hours=hi)).timestamp(), now),
                              m.group(0)))
    if not out and yesterday:
        out.append(TimeWindow(day.timestamp(), today.timestamp(), "yesterday"))
    elif not out and re.search(r"\btoday\b", text, re.I):
        out.append(TimeWindow(today.timestamp(), now, "today"))
    unique: dict[tuple[float, float], TimeWindow] = {}
    for w in out:
        if w.end > w.start:
            unique.setdefault((w.start, w.end), w)
    return sorted(unique.values(), key=lambda w: w.start)
