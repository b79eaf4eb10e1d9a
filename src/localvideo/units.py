"""Parsing of the human units every command takes: durations, byte sizes, moments in time.

Each parser raises :class:`UsageError` naming the accepted forms, so a typo in a flag gets a
precise message instead of a traceback.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

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
    ``HH:MM[:SS]`` (today, local), a relative age (``2h`` = two hours ago) or ``now``.
    """
    now = time.time() if now is None else now
    if isinstance(text, int | float):
        return float(text)
    s = text.strip()
    if s.lower() == "now":
        return now
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
            "use ISO 8601 (2026-11-25T14:03:00), HH:MM[:SS] for today, unix seconds, "
            "or an age such as 90s, 15m, 2h",
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
