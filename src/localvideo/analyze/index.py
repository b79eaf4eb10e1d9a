"""The searchable index: FTS5 over screen text, app and window title; sessions per window.

User text never reaches FTS5's query syntax: :func:`match_expression` turns any string into
quoted phrases joined by AND (with ``OR``, ``-word`` and ``word*`` understood), so quotes,
hyphens, parentheses, ``AND``/``NEAR`` or unicode cannot raise a syntax error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import UsageError
from ..reason.base import fmt_duration
from ..store import frames as frames_db
from ..store import text as text_db
from ..store.db import Database, put_kv

_PHRASE = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)

SEARCH_HINT = "search for words you saw, e.g. `localvideo search \"build failed\"`"


def _quote(words: list[str], prefix: bool = False) -> str:
    # Words come from \w+, so they hold no double quote; quoting makes each a literal string.
    return '"' + " ".join(words) + '"' + (" *" if prefix else "")


def match_expression(query: str) -> str:
    """Any user text → a valid FTS5 MATCH expression.

    ``a b`` → both; ``"a b"`` → the phrase; ``a OR b``; ``-a`` or ``NOT a`` excludes; ``a AND b``
    is ``a b``; ``ab*`` is a prefix;
    ``build-failed`` → the phrase "build failed" (the tokenizer splits hyphens the same way).
    """
    groups: list[list[str]] = []     # AND of groups, each an OR of terms
    negative: list[str] = []
    pending_or = negate_next = False
    for m in _PHRASE.finditer(query):
        raw = m.group(1) if m.group(1) is not None else m.group(2)
        quoted = m.group(1) is not None
        if not quoted and raw == "OR":
            pending_or = bool(groups)
            continue
        if not quoted and raw == "AND":
            continue        # terms are ANDed anyway
        if not quoted and raw == "NOT":
            negate_next = True
            continue
        neg = not quoted and (negate_next or raw.startswith("-") and len(raw) > 1)
        negate_next = False
        words = _WORD.findall(raw)
        if not words:
            continue
        term = _quote(words, prefix=not quoted and raw.endswith("*"))
        if neg:
            negative.append(term)
        elif pending_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if not groups:
        raise UsageError(f"the search {query!r} has no words to look for"
                         + (" (only excluded words)" if negative else ""), SEARCH_HINT)
    expr = " AND ".join(g[0] if len(g) == 1 else "(" + " OR ".join(g) + ")" for g in groups)
    if negative:
        expr = f"({expr}) NOT ({' OR '.join(negative)})"
    return expr


def index_titles(db: Database, batch: int = 5000) -> int:
    """Index app + title of each frame where the window changed, with no text.

    Key frames get their OCR text later (replacing the row); this makes window titles
    searchable even for windows never read (unchanged frames). A cursor in kv keeps it
    restartable; excluded frames are not indexed.
    """
    cursor = db.get_kv("analyze.title_cursor", {"id": 0, "key": None})
    added = 0
    while True:
        rows = frames_db.frames_after(db, cursor["id"], batch)
        if not rows:
            break
        last_key = cursor["key"]
        with db.tx() as conn:
            for r in rows:
                key = None if r.excluded else [r.app or "", r.title or ""]
                if key is not None and key != last_key:
                    if not text_db.is_indexed(conn, r.id):
                        text_db.index_text(conn, r.id, "", key[0], key[1])
                        added += 1
                last_key = key
            cursor = {"id": rows[-1].id, "key": last_key}
            put_kv(conn, "analyze.title_cursor", json.dumps(cursor))
    return added


def search(db: Database, query: str, *, app: str | None = None, since: float | None = None,
           until: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
    if limit <= 0:
        raise UsageError(f"--limit must be positive (got {limit})", "e.g. --limit 20")
    # match_expression only emits valid syntax: a failure is a damaged index (StoreError).
    hits = text_db.search(db, match_expression(query), app=app, since=since, until=until,
                          limit=limit)
    out = []
    for h in hits:
        offset = h.pts if h.pts is not None else (
            h.ts - h.chunk_start_ts if h.chunk_start_ts is not None else None)
        out.append({"frame_id": h.frame_id, "ts": h.ts, "app": h.app or "",
                    "title": h.title or "", "snippet": h.snippet or "",
                    "chunk_id": h.chunk_id, "chunk_path": h.chunk_path, "offset": offset})
    return out


@dataclass
class Session:
    app: str
    title: str
    start_ts: float
    end_ts: float
    frames: int
    excluded: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.end_ts - self.start_ts)

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "title": self.title, "start_ts": self.start_ts,
                "end_ts": self.end_ts, "duration": round(self.duration, 3),
                "frames": self.frames, "excluded": self.excluded}


EXCLUDED_TITLE = "(excluded)"


def sessions(db: Database, since: float | None = None, until: float | None = None, *,
             merge_gap: float = 10.0, idle_gap: float = 5.0, frame_len: float = 0.5,
             drop_excluded: bool = False) -> list[Session]:
    """Runs of one app/window, merged across interruptions shorter than ``merge_gap``.

    A run ends at the next frame when that follows within ``idle_gap`` (the recorder logs a
    row per frame, changed or not), else ``frame_len`` after its last frame: a stopped or
    paused recorder is a gap, not time spent in the window. Excluded windows keep their app
    but not their title; ``drop_excluded`` (for reasoners) leaves them out entirely.
    """
    runs: list[Session] = []
    prev_ts: float | None = None
    for ts, row_app, row_title, row_excluded in frames_db.window_rows(db, since, until):
        if row_excluded and drop_excluded:
            # The excluded window is a hole: the run before it ends where it begins.
            if runs and prev_ts is not None and ts - prev_ts <= idle_gap:
                runs[-1].end_ts = ts
            prev_ts = None
            continue
        excluded = bool(row_excluded)
        app, title = row_app or "", EXCLUDED_TITLE if excluded else (row_title or "")
        contiguous = prev_ts is not None and ts - prev_ts <= idle_gap
        if runs and contiguous:
            runs[-1].end_ts = ts
        if runs and contiguous and (runs[-1].app, runs[-1].title) == (app, title):
            runs[-1].frames += 1
            runs[-1].end_ts = ts + frame_len
        else:
            runs.append(Session(app, title, ts, ts + frame_len, 1, excluded))
        prev_ts = ts
    return _merge(runs, merge_gap)


# A blank or locked screen is never "a glance at another window": its span stays on the
# timeline however short (store.frames.SCREEN_TITLES).
SCREEN_STATE_TITLES = frozenset(frames_db.SCREEN_TITLES.values())


def _merge(runs: list[Session], gap: float) -> list[Session]:
    out: list[Session] = []
    for run in runs:
        if len(out) >= 2:
            short, before = out[-1], out[-2]
            if (short.duration < gap and (before.app, before.title) == (run.app, run.title)
                    and short.title not in SCREEN_STATE_TITLES
                    and abs(before.end_ts - short.start_ts) < 1e-6
                    and abs(short.end_ts - run.start_ts) < 1e-6):
                # A glance at another window: fold it into the session around it.
                out.pop()
                before.end_ts = run.end_ts
                before.frames += short.frames + run.frames
                continue
        if out and (out[-1].app, out[-1].title) == (run.app, run.title) \
                and abs(out[-1].end_ts - run.start_ts) < 1e-6:
            out[-1].end_ts = run.end_ts
            out[-1].frames += run.frames
            continue
        out.append(run)
    return out


def hms(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def timeline_lines(items: list[Session]) -> list[str]:
    """The ``## Timeline`` lines of a reasoning request (format documented in reason/base.py)."""
    return [f"{hms(s.start_ts)}–{hms(s.end_ts)}  {s.app or 'unknown'} — {s.title} "
            f"({fmt_duration(s.duration)})" for s in items]


def analysed_until(db: Database) -> tuple[float | None, bool]:
    """The moment up to which every frame has been read, and whether nothing is left
    (a query, here rather than in loop.py, so `status` need not load the decoder).

    The second value is True when every chunk is done and none is being recorded, so the
    last, partial observation window may be closed.
    """
    first_open = text_db.first_pending_chunk(db)
    if first_open is None:
        return frames_db.last_frame_ts(db), True
    if first_open.last_pts is None:
        return first_open.start_ts, False
    last = frames_db.last_frame_ts(db, first_open.id, first_open.last_pts + 1e-4)
    return (last if last is not None else first_open.start_ts), False
