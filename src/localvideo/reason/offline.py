"""The offline reasoner: a deterministic analysis by rules, no model, nothing leaves.

It reads the sections of ``ReasonRequest.text`` described in ``base.py``. The same text
always gives the same answer (no clock, no randomness), so the main job works on a fresh
machine with nothing configured and its output can be tested exactly.

Rules for the suggested task, first match wins:

1. FIX: error-like screen text (error, failed, traceback, exception, fatal, panic,
   segmentation fault) seen on two or more lines.
2. AUTOMATE: the same sequence of one to four windows repeated three or more times in a row
   in the timeline (copying between the same windows by hand, for example).
3. NO_TASK otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..units import is_time_word, strip_times
from .base import Reasoner, ReasonRequest, ReasonResponse, fmt_duration

_TIMELINE = re.compile(
    r"^(?:(?P<day>\d{4}-\d\d-\d\d)\s+)?(?P<start>\d\d?:\d\d:\d\d)\s*[–—-]\s*"
    r"(?:\d{4}-\d\d-\d\d\s+)?(?P<end>\d\d?:\d\d:\d\d)\s+(?P<rest>.+?)\s*$")
_DUR = re.compile(r"\s*\((?P<dur>[^()]*)\)$")
_SCREEN = re.compile(
    r"^\[(?:(?P<day>\d{4}-\d\d-\d\d)\s+)?(?P<time>\d\d?:\d\d:\d\d)\]\s+(?P<rest>.*)$")
_WINDOW = re.compile(
    r"^(?P<d1>\d{4}-\d\d-\d\d)\s+(?P<t1>\d\d?:\d\d:\d\d)\s*[–—-]\s*"
    r"(?P<d2>\d{4}-\d\d-\d\d)\s+(?P<t2>\d\d?:\d\d:\d\d)(?:\s+\((?P<label>.*)\))?\s*$")
_DATE = re.compile(r"^(?:local\s+)?date:\s*(\d{4}-\d\d-\d\d)\s*$", re.I)
_ERROR = re.compile(r"\b(error|errors|failed|failure|traceback|exception|fatal|panic|"
                    r"segmentation fault)\b", re.I)
# Question words that mean "something went wrong": they find error-like lines whatever the
# exact wording on screen ("when did the build break?" → "error: test_login failed").
_TROUBLE = frozenset("""break broke broken breaks crash crashed crashes fail failed fails failing
failure error errors bug bugs wrong problem problems""".split())
_WORD = re.compile(r"[\w#.+-]+", re.U)
_STOP = frozenset("""a an and are as at be been but by can did do does doing for from had has
have how i i'm in into is it its me my of on or so that the then there this to up was
were what when where which while who why with you your about after before during""".split())


@dataclass
class _Session:
    start: float       # seconds since the reference midnight (may pass 86400)
    end: float
    app: str
    title: str

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class _Line:
    at: float          # seconds since the reference midnight
    day: str | None
    app: str
    title: str
    text: str
    raw: str


def _secs(hms: str) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


def _split_app_title(rest: str) -> tuple[str, str]:
    app, sep, title = rest.partition(" — ")
    return (app.strip(), title.strip()) if sep else (rest.strip(), "")


def sections(text: str) -> dict[str, list[str]]:
    """Split the request text into its ``## Name`` sections (lower-cased names)."""
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
            out.setdefault(current, [])
        elif line.strip():
            out.setdefault(current, []).append(line.rstrip())
    return out


class _Parsed:
    def __init__(self, text: str) -> None:
        self.sections = sections(text)
        self.day: str | None = None
        for line in self.sections.get("", []):
            m = _DATE.match(line.strip())
            if m:
                self.day = m.group(1)
        if self.day is None:
            # No date line: the first dated screen line (if any) is the reference day.
            for line in self.sections.get("screen text", []):
                m = _SCREEN.match(line.strip())
                if m and m.group("day"):
                    self.day = m.group("day")
                    break
        self.sessions = self._timeline(self.sections.get("timeline", []))
        self.lines = self._screen(self.sections.get("screen text", []), self.day)
        self.windows = self._windows(self.sections.get("times asked about", []), self.day)
        self.question = " ".join(self.sections.get("question", [])).strip()

    def epoch(self, at: float) -> float | None:
        return _epoch(self.day, at)

    @staticmethod
    def _windows(lines: list[str], day: str | None) -> list[tuple[float, float, str]]:
        """``## Times asked about`` → (start, end, label), seconds since the reference day."""
        out = []
        for line in lines:
            m = _WINDOW.match(line.strip())
            if m and day:
                start = _days_between(day, m.group("d1")) * 86400 + _secs(m.group("t1"))
                end = _days_between(day, m.group("d2")) * 86400 + _secs(m.group("t2"))
                out.append((start, end, m.group("label") or ""))
        return out

    @staticmethod
    def _timeline(lines: list[str]) -> list[_Session]:
        out: list[_Session] = []
        offset = 0.0
        for line in lines:
            m = _TIMELINE.match(line.strip())
            if not m:
                continue
            rest = _DUR.sub("", m.group("rest"))
            start, end = _secs(m.group("start")) + offset, _secs(m.group("end")) + offset
            if out and start < out[-1].start - 12 * 3600:
                # The clock went back by half a day: the session crossed midnight.
                offset += 86400
                start, end = start + 86400, end + 86400
            if end < start:
                end += 86400
            app, title = _split_app_title(rest)
            out.append(_Session(start, end, app, title))
        return out

    @staticmethod
    def _screen(lines: list[str], day: str | None) -> list[_Line]:
        out: list[_Line] = []
        offset = 0.0
        for line in lines:
            m = _SCREEN.match(line.strip())
            if not m:
                continue
            at = _secs(m.group("time")) + offset
            if m.group("day") and day:
                # A dated line needs no guessing about midnight.
                at = _days_between(day, m.group("day")) * 86400 + _secs(m.group("time"))
            elif out and at < out[-1].at - 12 * 3600:
                offset += 86400
                at += 86400
            who, _, text = m.group("rest").partition(": ")
            app, title = _split_app_title(who)
            out.append(_Line(at, m.group("day"), app, title, text.strip(), line.strip()))
        return out


def _days_between(ref: str, day: str) -> int:
    return (date.fromisoformat(day) - date.fromisoformat(ref)).days


def _epoch(day: str | None, seconds: float) -> float | None:
    if not day:
        return None
    midnight = datetime.combine(date.fromisoformat(day), datetime.min.time())
    return (midnight + timedelta(seconds=seconds)).timestamp()


def observe(text: str) -> dict[str, Any]:
    p = _Parsed(text)
    by_app: dict[str, float] = {}
    by_window: dict[tuple[str, str], float] = {}
    for s in p.sessions:
        by_app[s.app] = by_app.get(s.app, 0.0) + s.duration
        by_window[(s.app, s.title)] = by_window.get((s.app, s.title), 0.0) + s.duration
    total = sum(by_app.values())

    parts: list[str] = []
    if by_app:
        tops = sorted(by_app.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        parts.append("Mostly in " + ", ".join(
            f"{app or 'unknown'} ({fmt_duration(d)}{f', {round(100 * d / total)}%' if total else ''})"
            for app, d in tops) + ".")
    elif p.lines:
        apps = sorted({ln.app for ln in p.lines})
        parts.append("Seen: " + ", ".join(apps[:3]) + ".")
    read = _distinct([ln.text for ln in p.lines if ln.text])
    if read:
        parts.append("Read: " + "; ".join(f"“{_clip(t, 60)}”" for t in read[:3]) + ".")
    summary = " ".join(parts) or "No activity recorded in this window."

    activities = [f"{app or 'unknown'} — {title or '(no title)'} ({fmt_duration(d)})"
                  for (app, title), d in sorted(by_window.items(),
                                                key=lambda kv: (-kv[1], kv[0]))[:5]]
    if not activities:
        activities = [f"{ln.app} — {ln.title}" for ln in _distinct_windows(p.lines)][:5]
    return {"summary": summary, "activities": activities, "task": _task(p)}


def _task(p: _Parsed) -> dict[str, str]:
    errors = [ln for ln in p.lines if _ERROR.search(ln.text) or _ERROR.search(ln.title)]
    if len(errors) >= 2:
        first = errors[0]
        snippet = _clip(_error_context(first.text or first.title), 70)
        where = f"{first.app} — {first.title}" if first.title else first.app
        quoted = "\n".join(f"- {ln.raw}" for ln in errors[:5])
        return {"verdict": "TASK_FOUND", "category": "FIX",
                "title": f"Fix: {snippet}",
                "description": f"Error text appeared {len(errors)} times, first in {where}:\n"
                               f"{quoted}"}
    repeat = _repeated_sequence([(s.app, s.title) for s in p.sessions])
    if repeat:
        seq, times = repeat
        names = " → ".join(f"{a} ({t})" if t else a for a, t in seq)
        return {"verdict": "TASK_FOUND", "category": "AUTOMATE",
                "title": f"Automate the {' → '.join(a for a, _ in seq)} round trip",
                "description": f"The same sequence of windows was repeated {times} times in a "
                               f"row: {names}. A script could do it."}
    return {"verdict": "NO_TASK", "category": "OTHER", "title": "", "description": ""}


def _error_context(text: str) -> str:
    """The screen line that holds the error (OCR lines arrive joined by ' | ')."""
    for segment in text.split(" | "):
        if _ERROR.search(segment):
            return segment.strip()
    return text


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


def ask(text: str) -> dict[str, Any]:
    p = _Parsed(text)
    keywords = [w for w in _tokens(strip_times(p.question))
                if w not in _STOP and len(w) > 1 and not is_time_word(w)]
    if not keywords and p.windows:
        return _ask_when(p)
    if not keywords:
        return {"answer": "The question has no words to look for; ask about an app, a window, "
                          "words you saw on screen, or a time (at 14:00, yesterday, the last "
                          "20 minutes).", "timestamps": []}
    scored: list[tuple[int, float, str, float, str | None]] = []
    for ln in p.lines:
        hay = set(_tokens(f"{ln.app} {ln.title} {ln.text}"))
        trouble = bool(_ERROR.search(ln.text) or _ERROR.search(ln.title))
        score = sum(1 for k in keywords
                    if any(_match(k, h) for h in hay) or (k in _TROUBLE and trouble))
        if score:
            scored.append((score, ln.at, ln.raw, ln.at, ln.day))
    for s in p.sessions:
        hay = set(_tokens(f"{s.app} {s.title}"))
        score = sum(1 for k in keywords if any(_match(k, h) for h in hay))
        if score:
            raw = f"{_hms(s.start)}–{_hms(s.end)} {s.app} — {s.title} ({fmt_duration(s.duration)})"
            scored.append((score, s.start, raw, s.start, None))
    if not scored and p.windows:
        # "what was I doing at 14:00?" with a word that is on no line: say what was there.
        return _ask_when(p)
    if not scored:
        return {"answer": "Nothing on screen in the searched time matches "
                          f"{', '.join(keywords)}.", "timestamps": []}
    best = max(sc[0] for sc in scored)
    # Keep the lines that match as many words as the best one or one fewer, shown in time order.
    chosen = [sc for sc in scored if sc[0] >= max(1, best - 1)]
    chosen = sorted(chosen, key=lambda sc: (-sc[0], sc[1]))[:6]
    chosen.sort(key=lambda sc: sc[1])
    lines = "\n".join(f"- {sc[2]}" for sc in chosen)
    stamps = []
    for sc in chosen:
        ts = p.epoch(sc[3]) if p.day else _epoch(sc[4], sc[3])
        if ts is not None and ts not in stamps:
            stamps.append(ts)
    answer = (f"Matching what was on screen ({', '.join(keywords)}), "
              f"{len(chosen)} moment{'s' if len(chosen) != 1 else ''}:\n{lines}")
    return {"answer": answer, "timestamps": stamps}


def _ask_when(p: _Parsed) -> dict[str, Any]:
    """Answer a question about times: the windows open then and what their screens said."""
    parts: list[str] = []
    stamps: list[float] = []
    for start, end, label in p.windows:
        head = f"{label} ({_hms(start)[:5]}–{_hms(end)[:5]})" if label else \
            f"{_hms(start)[:5]}–{_hms(end)[:5]}"
        during = [s for s in p.sessions if s.start < end and s.end > start]
        lines = [ln for ln in p.lines if start <= ln.at <= end]
        if len(lines) > 4:
            # Spread over the span (its start, its end and between), not its first minute.
            lines = [lines[round(i * (len(lines) - 1) / 3)] for i in range(4)]
        if not during and not lines:
            parts.append(f"{head}: nothing was recorded then.")
            continue
        # The windows open longest in that time, shown in time order.
        during = sorted(sorted(during, key=lambda s: -(min(s.end, end) - max(s.start, start)))
                        [:5], key=lambda s: s.start)
        out = [f"{head}:"]
        out += [f"- {_hms(s.start)}–{_hms(s.end)} {s.app} — {s.title} "
                f"({fmt_duration(s.duration)})" for s in during]
        out += [f"- {ln.raw}" for ln in lines]
        parts.append("\n".join(out))
        for at in [max(s.start, start) for s in during] + [ln.at for ln in lines]:
            ts = p.epoch(at)
            if ts is not None and ts not in stamps:
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


def _hms(seconds: float) -> str:
    s = int(seconds) % 86400
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    # Cut at a word boundary so a title never shows half a word.
    cut = text[:n - 1].rsplit(" ", 1)[0] if " " in text[:n - 1] else text[:n - 1]
    return cut.rstrip(" |,;:") + "…"


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _distinct_windows(lines: list[_Line]) -> list[_Line]:
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
        data = observe(req.text) if req.task == "observe" else ask(req.text)
        return ReasonResponse(text=json.dumps(data, ensure_ascii=False), data=data,
                              model=self.model, usage={})
