"""Observations: every window of activity, what the reasoner made of it; and the requests
of `ask`. (The `localvideo observe` command, which runs record, analyze and serve together,
is supervise.py.)

A window is ``[start, start + window)`` of recorded activity; it is cut when analysis has
read past its end (or, with nothing left to read and nothing recording, at the last frame).
Each becomes a ``pending`` row first and is then sent; a passing endpoint failure leaves it
pending with a ``next_try_ts``, so nothing is lost when the endpoint is down.

Privacy before anything leaves: excluded windows are left out of the timeline, the text and
the images; text is redacted; words that were redacted are blurred in the images; the chunk
video goes only to video reasoners and only for windows where nothing had to be redacted.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import EndpointError, MissingKeyError, ReasonerError, UsageError
from ..reason.base import (
    ASK_SCHEMA,
    OBSERVATION_SCHEMA,
    AskedTime,
    ImagePart,
    Reasoner,
    ReasonRequest,
)
from ..store import frames as frames_db
from ..store import observations as obs_db
from ..store import text as text_db
from ..store.db import Database
from ..store.layout import inside
from ..units import (
    OVERVIEW_WORDS,
    STOP_WORDS,
    TimeWindow,
    is_time_word,
    question_times,
    strip_times,
)
from . import context, embed, index
from .context import Scrub
from .redact import blur_regions, redact_boxes
from .sampler import FrameRow, crop_box, images_at

if TYPE_CHECKING:
    from ..config import Settings

OBSERVE_SYSTEM = (
    "You watch a person's screen activity through a timeline of the windows they used, the "
    "text read from the screen (sensitive parts replaced by [REDACTED ...]) and a few key "
    "frames. Summarise what they were doing, list the distinct activities, and suggest at "
    "most one concrete task you could take off their hands (automate a repeated sequence, "
    "fix an error they hit, remind them of something left undone, or explain something they "
    "struggled with). Use verdict NO_TASK when nothing is worth suggesting.")
ASK_SYSTEM = (
    "You answer questions about a person's own screen history. Use only the timeline, the "
    "screen text and the earlier observations given. Cite the moments you used as unix "
    "timestamps in `timestamps`; say so plainly when the answer is not there.")

MAX_ATTEMPTS = 8             # then the observation is marked failed
RETRY_BASE = 15.0            # seconds before the first retry, doubled per attempt
RETRY_MAX = 900.0
IMAGE_MAX_SIDE = 1280


@dataclass
class Built:
    request: ReasonRequest
    redactions: int
    keyframes: int


def _pick_images(rows: list[text_db.KeyFrame], limit: int) -> list[text_db.KeyFrame]:
    """Up to ``limit`` key frames: every window switch first, then spread evenly in time."""
    if limit <= 0 or not rows:
        return []
    firsts: list[text_db.KeyFrame] = []
    seen: set[tuple[str | None, str | None]] = set()
    for r in rows:
        if (r.app, r.title) not in seen:
            seen.add((r.app, r.title))
            firsts.append(r)
    chosen = firsts[:limit]
    if len(chosen) < limit:
        rest = [r for r in rows if r not in chosen]
        step = max(1, len(rest) // (limit - len(chosen)))
        chosen += rest[::step][: limit - len(chosen)]
    return sorted(chosen, key=lambda r: r.ts)


def build_images(settings: Settings, rows: list[text_db.KeyFrame]) -> list[ImagePart]:
    """Decode, crop to the window, blur redacted words, encode as JPEG."""
    by_chunk: dict[str, list[text_db.KeyFrame]] = {}
    for r in rows:
        if r.path and r.pts is not None:
            by_chunk.setdefault(r.path, []).append(r)
    parts: list[ImagePart] = []
    for rel, items in by_chunk.items():
        try:
            path = inside(settings.data_dir, rel)
        except UsageError:
            continue   # a row pointing outside the store is not ours to read
        if not path.exists():
            continue   # removed by retention since it was read: text only
        pts = [r.pts for r in items if r.pts is not None]
        canvases = images_at(path, pts)
        for r, p in zip(items, pts, strict=True):
            canvas = canvases.get(round(p, 3))
            if canvas is None:
                continue
            row = FrameRow(r.id, r.ts, p, r.app or "", r.title or "", r.x or 0, r.y or 0,
                           r.w or 0, r.h or 0, False)
            image: Image.Image = canvas.crop(crop_box(row, canvas.width, canvas.height))
            boxes = redact_boxes(json.loads(r.words or "[]"))
            if boxes:
                image = blur_regions(image, boxes)
            image.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
            buf = io.BytesIO()
            image.convert("RGB").save(buf, "JPEG", quality=85)
            # The label goes along as text: redacted like the request's own titles.
            label = Scrub()(f"{index.hms(r.ts)} — {r.app or 'unknown'} — {r.title or ''}")
            parts.append(ImagePart(buf.getvalue(), "image/jpeg", r.ts, label))
    return sorted(parts, key=lambda p: p.ts)


def build_observe(settings: Settings, db: Database, reasoner: Reasoner, start: float,
                  end: float) -> Built:
    sess = index.sessions(db, start, end, drop_excluded=True)
    rows = text_db.keyframes_in(db, start, end)
    scrub = Scrub()
    screen, left_out = context.screen_texts(rows, scrub)
    timeline = context.timeline(sess, scrub)
    redactions = scrub.found
    images: list[ImagePart] = []
    if reasoner.takes_images:
        images = build_images(settings, _pick_images(rows, settings.analyze.max_images))
    video: Path | None = None
    if reasoner.takes_video and redactions == 0:
        video = _main_chunk(settings, db, start, end)
    req = ReasonRequest(task="observe", system=OBSERVE_SYSTEM, timeline=timeline, screen=screen,
                        screen_left_out=left_out, span=(start, end), images=images,
                        video=video, schema=OBSERVATION_SCHEMA)
    return Built(req, redactions, len(rows))


def _main_chunk(settings: Settings, db: Database, start: float, end: float) -> Path | None:
    rel = frames_db.main_chunk_path(db, start, end)
    if rel is None:
        return None
    path = inside(settings.data_dir, rel)
    return path if path.exists() else None


# -- windows ------------------------------------------------------------------------------

def window_spans(db: Database, window: float, until: float | None,
                 flush: bool) -> list[tuple[float, float]]:
    """The complete windows after the last observation, up to ``until``.

    A window starts at the first readable frame after the previous one ends (so idle time
    opens no empty windows) and is complete once analysis read past its end; ``flush`` also
    closes the last, partial one at the last frame (nothing left to read, nothing recording).
    """
    if until is None:
        return []
    last = obs_db.last_end_ts(db)
    cursor = last if last is not None else 0.0
    spans: list[tuple[float, float]] = []
    while True:
        nxt = frames_db.first_readable_ts(db, cursor, until)
        if nxt is None:
            return spans
        start = float(nxt)
        end = start + window
        if end > until:
            if not flush:
                return spans
            end = until + 1e-3
        spans.append((start, end))
        cursor = end
        if end > until:
            return spans


def cut_windows(db: Database, window: float, until: float | None, flush: bool) -> list[int]:
    """Create a pending observation for every complete window; return their ids."""
    created: list[int] = []
    for start, end in window_spans(db, window, until, flush):
        obs_id = obs_db.add_pending(db, start, end)
        if obs_id is not None:
            created.append(obs_id)
    return created


def due(db: Database, *, ignore_backoff: bool) -> list[obs_db.Observation]:
    return obs_db.due(db, ignore_backoff=ignore_backoff)


def run_observation(settings: Settings, db: Database, reasoner: Reasoner,
                    obs: obs_db.Observation) -> dict[str, Any]:
    """Send one pending observation; store the answer or the failure. Never loses it."""
    built = build_observe(settings, db, reasoner, obs.start_ts, obs.end_ts)
    ids = list(obs.request_ids)
    now = time.time()
    try:
        resp = reasoner.execute(built.request)
    except MissingKeyError:
        raise   # the user has to act; the observation stays pending untouched
    except EndpointError as exc:
        attempts = obs.attempts + 1
        retryable = exc.retryable and attempts < MAX_ATTEMPTS
        wait = min(RETRY_MAX, RETRY_BASE * 2 ** (attempts - 1))
        if exc.retry_after is not None:
            wait = max(wait, exc.retry_after)   # the server said how long: honour it
        status = "pending" if retryable else "failed"
        obs_db.mark_retry(db, obs.id, status=status, attempts=attempts,
                          next_try_ts=now + wait if retryable else None, reasoner=reasoner.name,
                          model=reasoner.model, error=exc.message,
                          endpoint_error={"ts": now, "reasoner": reasoner.name,
                                          "base_url": reasoner.base_url, "message": exc.message,
                                          "status": exc.status, "observation_id": obs.id,
                                          "next_try_ts": now + wait if retryable else None})
        return {"id": obs.id, "status": status, "error": exc.message,
                "next_try_ts": now + wait if retryable else None}
    except ReasonerError as exc:
        obs_db.mark_failed(db, obs.id, reasoner=reasoner.name, model=reasoner.model,
                           error=exc.message)
        return {"id": obs.id, "status": "failed", "error": exc.message}
    data = resp.data or {}
    if resp.request_id is not None:
        ids.append(resp.request_id)
    obs_db.mark_done(db, obs.id, reasoner=reasoner.name, model=resp.model or reasoner.model,
                     summary=data.get("summary", ""), activities=data.get("activities", []),
                     task=data.get("task", {}), request_ids=ids)
    return {"id": obs.id, "status": "done", "summary": data.get("summary", ""),
            "redactions": built.redactions, "images": len(built.request.images)}


# -- ask ------------------------------------------------------------------------------------

def keywords(question: str) -> list[str]:
    words = [w.lower() for w in re.findall(r"\w+", strip_times(question))]
    return list(dict.fromkeys(w for w in words
                              if len(w) > 2 and w not in STOP_WORDS and w not in OVERVIEW_WORDS
                              and not is_time_word(w)))


ASK_FRAMES_PER_WINDOW = 12   # key frames with text quoted from each time a question names
ASK_RECENT = 3600.0          # "what was I doing?" with no time named: the last hour
ASK_MEANING_HITS = 5         # moments found by meaning alone quoted to the reasoner
ASK_SESSIONS = 60            # timeline lines in an ask request


def _frames_in(db: Database, start: float, end: float, n: int) -> list[int]:
    """Up to ``n`` key frames with screen text in [start, end], spread evenly over it."""
    ids = text_db.frames_with_text(db, start, end)
    if len(ids) <= n:
        return ids
    return [ids[round(i * (len(ids) - 1) / (n - 1))] for i in range(n)]


def build_ask(settings: Settings, db: Database, question: str, since: float | None,
              until: float | None,
              ) -> tuple[ReasonRequest, list[dict[str, Any]], list[TimeWindow]]:
    # Times the question names ("at 14:00", "yesterday", "last 20 minutes") pick the screen
    # text of those moments, and narrow the word search to them unless --since/--until did.
    windows = [w for w in question_times(question)
               if (since is None or w.end >= since) and (until is None or w.start <= until)]
    if windows and since is None and until is None:
        since, until = min(w.start for w in windows), max(w.end for w in windows)
    words = keywords(question)
    if not words and not windows and since is None and until is None:
        # "what was I doing?", "summarize": no word to look for and no time named; the last
        # hour of activity (up to the last frame seen) is what is asked about.
        last = frames_db.last_frame_ts(db)
        end = min(time.time(), last) if last is not None else time.time()
        windows = [TimeWindow(end - ASK_RECENT, end, "the last hour")]
        since, until = windows[0].start, windows[0].end
    hits: list[dict[str, Any]] = []
    if words:
        # By words and, once the screen text is embedded, by meaning: a question in other
        # words than the screen still finds the moment.
        hits = embed.search(db, question, words=" OR ".join(words), since=since, until=until,
                            limit=20, models_dir=settings.models_dir)
        # Every moment with the words; of those found by meaning alone only the nearest few
        # (a nearest neighbour always exists, relevant or not).
        meaning = [h for h in hits if h.get("matched") == "meaning"][:ASK_MEANING_HITS]
        hits = [h for h in hits if h.get("matched") != "meaning" or h in meaning]
    ids = list(dict.fromkeys([h["frame_id"] for h in hits] + [
        i for w in windows for i in _frames_in(db, w.start, w.end, ASK_FRAMES_PER_WINDOW)]))
    rows = text_db.frame_texts(db, ids)
    t_since = since if since is not None else time.time() - 86400
    if windows:
        # The timeline around the named times, a little either side for context.
        found: dict[float, index.Session] = {}
        for w in windows:
            for s in index.sessions(db, w.start - 600, w.end + 600, drop_excluded=True):
                found.setdefault(s.start_ts, s)
        # A whole day has more windows than fit: keep the longest, shown in time order.
        sess = sorted(sorted(found.values(), key=lambda s: -s.duration)[:ASK_SESSIONS],
                      key=lambda s: s.start_ts)
    else:
        sess = index.sessions(db, t_since, until, drop_excluded=True)[-ASK_SESSIONS:]
    recent = obs_db.recent_summaries(db, t_since,
                                     until if until is not None else time.time() + 86400)
    scrub = Scrub()
    screen, left_out = context.screen_texts(rows, scrub)
    # Say which lines the search found by meaning alone: no word of the question is on them.
    why = {float(h["ts"]): str(h.get("matched", "")) for h in hits}
    screen = [replace(s, matched=why.get(s.ts, "")) for s in screen]
    req = ReasonRequest(task="ask", system=ASK_SYSTEM, timeline=context.timeline(sess, scrub),
                        screen=screen, screen_left_out=left_out,
                        asked=[AskedTime(w.start, w.end, w.label) for w in windows],
                        earlier=context.earlier(reversed(recent), scrub),
                        question=scrub(question.strip()), schema=ASK_SCHEMA)
    return req, hits, windows
