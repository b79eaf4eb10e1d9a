"""The offline reasoner: a deterministic analysis by rules, no model, nothing leaves.

It reads the request's structure (``timeline``, ``screen``, ``asked``, ``question``; see
``base.py``), never its rendered text. The same request always gives the same answer (no
clock, no randomness), so the main job works on a fresh machine with nothing configured and
its output can be tested exactly.

Rules for the suggested task, first match wins:

1. FIX: error-like screen text (error, failed, traceback, exception, fatal, panic,
   segmentation fault) seen on two or more key frames; the title quotes the screen line
   that holds the first error.
2. AUTOMATE: the same sequence of one to four windows repeated three or more times in a row
   in the timeline (copying between the same windows by hand, for example).
3. NO_TASK otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..units import OVERVIEW_WORDS, STOP_WORDS, is_time_word, strip_times
from .base import (
    Reasoner,
    ReasonRequest,
    ReasonResponse,
    ScreenText,
    WindowSession,
    clock,
    fmt_duration,
    screen_line,
    spans_days,
)

_ERROR = re.compile(r"\b(error|errors|failed|failure|traceback|exception|fatal|panic|"
                    r"segmentation fault)\b", re.I)
# Question words that mean "something went wrong": they find error-like lines whatever the
# exact wording on screen ("when did the build break?" → "error: test_login failed").
_TROUBLE = frozenset("""break broke broken breaks crash crashed crashes fail failed fails failing
failure error errors bug bugs wrong problem problems""".split())
_WORD = re.compile(r"[\w#.+-]+", re.U)


def observe(req: ReasonRequest) -> dict[str, Any]:
    by_app: dict[str, float] = {}
    by_window: dict[tuple[str, str], float] = {}
    for s in req.timeline:
        by_app[s.app] = by_app.get(s.app, 0.0) + s.duration
        by_window[(s.app, s.title)] = by_window.get((s.app, s.title), 0.0) + s.duration
    total = sum(by_app.values())

    parts: list[str] = []
    if by_app:
        tops = sorted(by_app.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        parts.append("Mostly in " + ", ".join(
            f"{app or 'unknown'} ({fmt_duration(d)}{f', {round(100 * d / total)}%' if total else ''})"
            for app, d in tops) + ".")
    elif req.screen:
        apps = sorted({ln.app for ln in req.screen})
        parts.append("Seen: " + ", ".join(apps[:3]) + ".")
    read = _distinct([ln.text for ln in req.screen if ln.text])
    if read:
        parts.append("Read: " + "; ".join(f"“{_clip(t, 60)}”" for t in read[:3]) + ".")
    summary = " ".join(parts) or "No activity recorded in this window."

    activities = [f"{app or 'unknown'} — {title or '(no title)'} ({fmt_duration(d)})"
                  for (app, title), d in sorted(by_window.items(),
                                                key=lambda kv: (-kv[1], kv[0]))[:5]]
    if not activities:
        activities = [f"{ln.app} — {ln.title}" for ln in _distinct_windows(req.screen)][:5]
    return {"summary": summary, "activities": activities, "task": _task(req)}


def _task(req: ReasonRequest) -> dict[str, str]:
    errors = [ln for ln in req.screen if _ERROR.search(ln.text) or _ERROR.search(ln.title)]
    if len(errors) >= 2:
        first = errors[0]
        snippet = _clip(_error_line(first), 70)
        where = f"{first.app} — {first.title}" if first.title else first.app
        dated = spans_days(req)
        quoted = "\n".join(f"- {screen_line(ln, dated)}" for ln in errors[:5])
        return {"verdict": "TASK_FOUND", "category": "FIX",
                "title": f"Fix: {snippet}",
                "description": f"Error text appeared {len(errors)} times, first in {where}:\n"
                               f"{quoted}"}
    repeat = _repeated_sequence([(s.app, s.title) for s in req.timeline])
    if repeat:
        seq, times = repeat
        names = " → ".join(f"{a} ({t})" if t else a for a, t in seq)
        return {"verdict": "TASK_FOUND", "category": "AUTOMATE",
                "title": f"Automate the {' → '.join(a for a, _ in seq)} round trip",
                "description": f"The same sequence of windows was repeated {times} times in a "
                               f"row: {names}. A script could do it."}
    return {"verdict": "NO_TASK", "category": "OTHER", "title": "", "description": ""}


def _error_line(t: ScreenText) -> str:
    """The screen line that holds the error, whole; the title when only the title has one."""
    for line in t.lines:
        if _ERROR.search(line):
            return line.strip()
    return t.title


def _repeated_sequence(items: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int] | None:
    """The shortest window sequence (1–4 long) repeated ≥3 times back to back."""
    # Merge consecutive duplicates first: one window split by the sampler is one visit.
    merged = [x for i, x in enumerate(items) if i == 0 or x != items[i - 1]]
    for length in (2, 3, 4, 1):
        for start in range(len(merged) - length + 1):
            seq = merged[start:start + length]
            if length == 1 or len(set(seq)) < length:
                continue
            times = 1
            pos = start + length
            while merged[pos:pos + length] == seq:
                times += 1
                pos += length
            if times >= 3:
                return seq, times
    return None


def ask(req: ReasonRequest) -> dict[str, Any]:
    keywords = [w for w in _tokens(strip_times(req.question))
                if w not in STOP_WORDS and w not in OVERVIEW_WORDS and len(w) > 1
                and not is_time_word(w)]
    if not keywords and req.asked:
        return _ask_when(req)
    if not keywords:
        return {"answer": "The question has no words to look for; ask about an app, a window, "
                          "words you saw on screen, or a time (at 14:00, yesterday, the last "
                          "20 minutes).", "timestamps": []}
    dated = spans_days(req)
    scored: list[tuple[int, float, str]] = []      # (score, unix time, line quoted)
    for ln in req.screen:
        hay = set(_tokens(f"{ln.app} {ln.title} {ln.text}"))
        trouble = bool(_ERROR.search(ln.text) or _ERROR.search(ln.title))
        score = sum(1 for k in keywords
                    if any(_match(k, h) for h in hay) or (k in _TROUBLE and trouble))
        if score:
            scored.append((score, ln.ts, screen_line(ln, dated)))
    for s in req.timeline:
        hay = set(_tokens(f"{s.app} {s.title}"))
        score = sum(1 for k in keywords if any(_match(k, h) for h in hay))
        if score:
            scored.append((score, s.start_ts, _session_line(s)))
    if not scored and req.asked:
        # "what was I doing at 14:00?" with a word that is on no line: say what was there.
        return _ask_when(req)
    near = [ln for ln in req.screen if ln.matched == "meaning"][:6]
    if not scored and near:
        # No line has the words, yet the search found moments by meaning (it quotes only its
        # nearest few): show them rather than say nothing matched.
        lines = "\n".join(f"- {screen_line(ln, dated)}" for ln in near)
        return {"answer": f"No line on screen has the words {', '.join(keywords)}; the "
                          f"closest in meaning, {len(near)} moment"
                          f"{'s' if len(near) != 1 else ''}:\n{lines}",
                "timestamps": list(dict.fromkeys(ln.ts for ln in near))}
    if not scored:
        return {"answer": "Nothing on screen in the searched time matches "
                          f"{', '.join(keywords)}.", "timestamps": []}
    best = max(sc[0] for sc in scored)
    # Keep the lines that match as many words as the best one or one fewer, shown in time order.
    chosen = [sc for sc in scored if sc[0] >= max(1, best - 1)]
    chosen = sorted(chosen, key=lambda sc: (-sc[0], sc[1]))[:6]
    chosen.sort(key=lambda sc: sc[1])
    lines = "\n".join(f"- {sc[2]}" for sc in chosen)
    stamps = list(dict.fromkeys(sc[1] for sc in chosen))
    answer = (f"Matching what was on screen ({', '.join(keywords)}), "
              f"{len(chosen)} moment{'s' if len(chosen) != 1 else ''}:\n{lines}")
    return {"answer": answer, "timestamps": stamps}


def _session_line(s: WindowSession) -> str:
    return (f"{clock(s.start_ts)}–{clock(s.end_ts)} {s.app} — {s.title} "
            f"({fmt_duration(s.duration)})")


def _ask_when(req: ReasonRequest) -> dict[str, Any]:
    """Answer a question about times: the windows open then and what their screens said."""
    dated = spans_days(req)
    parts: list[str] = []
    stamps: list[float] = []
    for asked in req.asked:
        start, end = asked.start_ts, asked.end_ts
        span = f"{clock(start)[:5]}–{clock(end)[:5]}"
        head = f"{asked.label} ({span})" if asked.label else span
        during = [s for s in req.timeline if s.start_ts < end and s.end_ts > start]
        lines = [ln for ln in req.screen if start <= ln.ts <= end]
        if len(lines) > 4:
            # Spread over the span (its start, its end and between), not its first minute.
            lines = [lines[round(i * (len(lines) - 1) / 3)] for i in range(4)]
        if not during and not lines:
            parts.append(f"{head}: nothing was recorded then.")
            continue
        # The windows open longest in that time, shown in time order.
        longest = sorted(during, key=lambda s: max(s.start_ts, start) - min(s.end_ts, end))
        during = sorted(longest[:5], key=lambda s: s.start_ts)
        out = [f"{head}:"]
        out += [f"- {_session_line(s)}" for s in during]
        out += [f"- {screen_line(ln, dated)}" for ln in lines]
        parts.append("\n".join(out))
        for ts in [max(s.start_ts, start) for s in during] + [ln.ts for ln in lines]:
            if ts not in stamps:
                stamps.append(ts)
    return {"answer": "\n".join(parts), "timestamps": sorted(stamps)}


def _tokens(text: str) -> list[str]:
    return [w.strip(".-").lower() for w in _WORD.findall(text) if w.strip(".-")]


def _match(keyword: str, word: str) -> bool:
    # A cheap stem: "broke" finds "broken", "build" finds "builds"; short words match exactly.
    if len(keyword) < 4 or len(word) < 4:
        return keyword == word
    n = min(len(keyword), len(word), 5)
    return keyword[:n] == word[:n] and abs(len(keyword) - len(word)) <= 3


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    # Cut at a word boundary so a title never shows half a word.
    cut = text[:n - 1].rsplit(" ", 1)[0] if " " in text[:n - 1] else text[:n - 1]
    return cut.rstrip(" |,;:") + "…"


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _distinct_windows(lines: list[ScreenText]) -> list[ScreenText]:
    seen: set[tuple[str, str]] = set()
    out = []
    for ln in lines:
        if (ln.app, ln.title) not in seen:
            seen.add((ln.app, ln.title))
            out.append(ln)
    return out


class OfflineReasoner(Reasoner):
    name = "offline"
    key_env = None
    default_model = "rules-v1"
    takes_images = False

    def _send(self, req: ReasonRequest) -> ReasonResponse:
        data = observe(req) if req.task == "observe" else ask(req)
        return ReasonResponse(text=json.dumps(data, ensure_ascii=False), data=data,
                              model=self.model, usage={})
