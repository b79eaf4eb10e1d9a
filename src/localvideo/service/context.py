"""What every area of the service shares: the settings, the index, the device id.

One small typed object handed to each area, instead of areas reaching each other through
``self``: an area sees the context and the areas it is given, nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import UsageError
from ..record.device import device_id
from ..store.db import Database
from ..store.layout import inside
from ..units import parse_time
from .models import When

# What long operations call with their progress events (a dict with an "event" or "phase").
Progress = Callable[[dict[str, Any]], None]

# The largest number SQLite takes as an integer: a bigger --limit is a usage error here, not
# an OverflowError in the store.
_MAX_LIMIT = 2**63 - 1


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Database(self.settings.db_path)

    @cached_property
    def device_id(self) -> str:
        return device_id()

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()


def moment(value: When, what: str) -> float:
    """The one place a user's time string becomes unix seconds (see units.parse_time)."""
    if isinstance(value, str) and not value.strip():
        raise UsageError(f"empty {what}", "pass a time, e.g. 14:00, 2h, today or unix seconds")
    ts = parse_time(value, what=what)
    # 1e400 parses to inf and 10**20 to a year no calendar prints: nothing was recorded then,
    # and the pages that format the time would fail on it.
    if not math.isfinite(ts) or not 0 <= ts <= _LAST_MOMENT:
        raise UsageError(f"{what} {value!s:.40} is not a moment between 1970 and 9999",
                         "pass a time, e.g. 14:00, 2h, today or unix seconds")
    return ts


_LAST_MOMENT = 253402300799.0        # 9999-12-31T23:59:59Z


def maybe_moment(value: When | None, what: str) -> float | None:
    """Like :func:`moment`, with None or "" meaning "not given"."""
    return None if value is None or value == "" else moment(value, what)


class OutsideStoreError(UsageError):
    """A file outside the store was asked for (traversal, absolute path, symlink out).

    The REST API answers it with 403."""


def confine(root: Path, path: Path | str, what: str, hint: str | None = None) -> Path:
    """The one path-confinement rule: ``path`` resolved, and inside ``root`` (symlinks that
    lead out refused), or :class:`OutsideStoreError`."""
    try:
        return inside(root, path)
    except UsageError as exc:
        raise OutsideStoreError(f"refused {what}: {exc.message}",
                                hint or exc.hint) from exc


def check_limit(limit: int | None, what: str = "--limit") -> None:
    """The one rule for a count a caller asks for: None (no limit) or 1 … 2**63 - 1."""
    if limit is not None and not 1 <= limit <= _MAX_LIMIT:
        raise UsageError(f"{what} must be a whole number from 1 (got {limit})", f"e.g. {what} 20")
