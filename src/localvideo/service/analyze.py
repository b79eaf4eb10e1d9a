"""Service operations for the analyze area: read the screen, search it, reason over it.

The work lives in ``localvideo.analyze``; this mixin only wires settings, the reasoner and
the index together and returns plain data (see docs/SERVICE-API.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import NotFoundError, UsageError
from ..store import frames as frames_db
from ..store import observations as obs_db
from ..store import text as text_db
from ..units import parse_duration, parse_time
from .base import ServiceBase

Progress = Callable[[dict[str, Any]], None]

FOLLOW_POLL = 2.0          # seconds between passes in --follow (the recorder flushes per frame)
MIN_WINDOW = 5.0


def _time(value: str | float | None, what: str) -> float | None:
    return None if value in (None, "") else parse_time(value, what=what)  # type: ignore[arg-type]


class AnalyzeOps(ServiceBase):
    # -- the loop -------------------------------------------------------------------------
    def analyze(self, follow: bool = False, stop: threading.Event | None = None,
                on_progress: Progress | None = None, dry_run: bool = False,
                window: str | float | None = None, reasoner: str | None = None,
                model: str | None = None, base_url: str | None = None,
                key: str | None = None, poll: float = FOLLOW_POLL) -> dict[str, Any]:
        """Read every chunk not read yet and reason over each complete window of activity.

        With ``follow`` it keeps going (chunks being written included) until ``stop`` is set.
        ``dry_run`` reads and indexes locally but sends nothing: the requests that would be
        sent are returned under ``requests`` (and passed to ``on_progress``).
        """
        from ..analyze.lock import AnalyzeLock
        from ..analyze.ocr import check_tesseract

        win = parse_duration(window if window is not None else self.settings.analyze.window,
                             what="--window")
        if win < MIN_WINDOW:
            raise UsageError(f"--window must be at least {MIN_WINDOW:.0f}s (got {window})",
                             "use e.g. --window 30s, 5m or 1h")
        check_tesseract()
        with AnalyzeLock(self.settings.data_dir):
            return self._analyze(follow, stop, on_progress, dry_run, win, reasoner, model,
                                 base_url, key, poll)

    def _analyze(self, follow: bool, stop: threading.Event | None, on_progress: Progress | None,
                 dry_run: bool, win: float, reasoner: str | None, model: str | None,
                 base_url: str | None, key: str | None, poll: float) -> dict[str, Any]:
        from ..analyze import observe
        from ..analyze.loop import ChunkReader, PassStats, analysed_until
        from ..reason.base import get_reasoner

        stop = stop or threading.Event()
        emit = on_progress or (lambda _e: None)
        rsn = get_reasoner(reasoner, settings=self.settings, db=self.db, model=model,
                           base_url=base_url, key=key)
        reader = ChunkReader(self.settings, self.db, on_progress=on_progress, stop=stop)
        total = PassStats()
        results: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []
        described: set[tuple[float, float]] = set()   # --dry-run --follow: each window once
        started = time.time()
        first = True
        while True:
            total.add(reader.run_pass())
            if stop.is_set():
                break
            until, flush = analysed_until(self.db)
            if dry_run:
                requests += self._dry_run(rsn, win, until, flush, emit, described)
            else:
                observe.cut_windows(self.db, win, until, flush)
                # An explicit run retries everything pending; the follow loop honours backoff.
                for obs in observe.due(self.db, ignore_backoff=first):
                    if stop.is_set():
                        break
                    res = observe.run_observation(self.settings, self.db, rsn, obs)
                    results.append(res)
                    emit({"event": "observation", **res})
            first = False
            if not follow or stop.wait(poll):
                break
        summary: dict[str, Any] = {**total.to_dict(), "reasoner": rsn.name, "model": rsn.model,
                                   "seconds": round(time.time() - started, 2),
                                   "stopped": stop.is_set(),
                                   "observations": results, "status": self.analysis_status()}
        if dry_run:
            summary["requests"] = requests
        return summary

    def _dry_run(self, rsn: Any, win: float, until: float | None, flush: bool,
                 emit: Progress, described: set[tuple[float, float]]) -> list[dict[str, Any]]:
        """Describe the requests of pending and complete windows without storing anything."""
        from ..analyze import observe
        from ..reason.base import describe_request

        out: list[dict[str, Any]] = []
        spans = [(r.start_ts, r.end_ts) for r in observe.due(self.db, ignore_backoff=True)]
        spans += observe.window_spans(self.db, win, until, flush)
        for start, end in spans:
            if (start, end) in described:
                continue
            described.add((start, end))
            built = observe.build_observe(self.settings, self.db, rsn, start, end)
            desc = {"start_ts": start, "end_ts": end, "redactions": built.redactions,
                    **describe_request(built.request, rsn)}
            out.append(desc)
            emit({"event": "dry_run", **desc})
        return out

    # -- status -----------------------------------------------------------------------------
    def analysis_status(self) -> dict[str, Any]:
        from ..analyze.loop import analysed_until

        db = self.db
        counts = text_db.analysis_counts(db)
        obs = obs_db.status_counts(db)
        latest = frames_db.last_frame_ts(db)
        until, _ = analysed_until(db)
        lag = max(0.0, latest - until) if latest is not None and until is not None else 0.0
        err = db.get_kv(obs_db.ENDPOINT_ERROR_KEY)
        nxt = obs_db.next_retry_ts(db)
        total = counts.chunks
        done = counts.chunks_done
        pending_obs = obs.get("pending", 0)
        line = (f"{done}/{total} chunks analysed, {counts.frames_read} key frames read, "
                f"{obs.get('done', 0)} observations done, {pending_obs} pending, "
                f"{obs.get('failed', 0)} failed")
        if err and pending_obs:
            line += (f"; last endpoint error ({err.get('reasoner')}): {err.get('message')} — "
                     "retried on the next `localvideo analyze`")
        return {"chunks_total": total, "chunks_analysed": done, "chunks_pending": total - done,
                "frames_read": counts.frames_read, "ocr_ms_avg": round(counts.ocr_ms_avg, 1)
                if counts.ocr_ms_avg else None, "analysed_until": until, "lag_seconds": round(lag, 2),
                "observations_done": obs.get("done", 0), "observations_pending": pending_obs,
                "observations_failed": obs.get("failed", 0), "last_endpoint_error": err,
                "next_retry_ts": nxt, "line": line}

    # -- reading back ---------------------------------------------------------------------
    def search(self, query: str, app: str | None = None, since: str | float | None = None,
               until: str | float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        from ..analyze import index

        return index.search(self.db, query, app=app, since=_time(since, "--since"),
                            until=_time(until, "--until"), limit=limit)

    def timeline(self, since: str | float | None = None,
                 until: str | float | None = None) -> list[dict[str, Any]]:
        from ..analyze import index

        return [s.to_dict() for s in index.sessions(self.db, _time(since, "--since"),
                                                    _time(until, "--until"))]

    def observations(self, since: str | float | None = None, limit: int = 50,
                     status: str | None = None) -> list[dict[str, Any]]:
        if status not in (None, "pending", "done", "failed"):
            raise UsageError(f"unknown status {status!r}", "use --status pending, done or failed")
        return [o.to_dict() for o in obs_db.latest(self.db, since=_time(since, "--since"),
                                                   status=status, limit=limit)]

    def observation(self, id: int) -> dict[str, Any]:
        row = obs_db.get(self.db, id)
        if row is None:
            raise NotFoundError(f"no observation {id}",
                                "list them with `localvideo observations`")
        return row.to_dict()

    def ask(self, question: str, since: str | float | None = None, reasoner: str | None = None,
            model: str | None = None, base_url: str | None = None, key: str | None = None,
            until: str | float | None = None, dry_run: bool = False) -> dict[str, Any]:
        from ..analyze.observe import build_ask
        from ..reason.base import describe_request, get_reasoner

        if not question or not question.strip():
            raise UsageError("the question is empty",
                             'ask something, e.g. `localvideo ask "what was I doing at 14:00?"`')
        rsn = get_reasoner(reasoner, settings=self.settings, db=self.db, model=model,
                           base_url=base_url, key=key)
        req, hits, windows = build_ask(self.settings, self.db, question,
                                       _time(since, "--since"), _time(until, "--until"))
        # How the question was placed in time, so a caller can show what was looked at.
        times = [{"start_ts": w.start, "end_ts": w.end, "label": w.label} for w in windows]
        if dry_run:
            return {"request": describe_request(req, rsn), "sources": hits, "times": times}
        resp = rsn.execute(req)
        data = resp.data or {}
        return {"answer": data.get("answer", resp.text),
                "timestamps": [float(t) for t in data.get("timestamps", [])],
                "sources": hits, "times": times, "reasoner": rsn.name,
                "model": resp.model or rsn.model, "request_id": resp.request_id}

    # -- keys -----------------------------------------------------------------------------
    def keys_set(self, name: str, value: str) -> dict[str, Any]:
        from ..reason.keys import KeyStore

        KeyStore(self.settings.data_dir).set(name, value)
        return {"name": name.strip().lower(), "stored": True}

    def keys_list(self) -> list[dict[str, Any]]:
        from ..reason.keys import KeyStore

        return list(KeyStore(self.settings.data_dir).list())

    def keys_delete(self, name: str) -> dict[str, Any]:
        from ..reason.keys import KeyStore

        if not KeyStore(self.settings.data_dir).delete(name):
            raise NotFoundError(f"no stored key named {name!r}",
                                "see the stored keys with `localvideo keys list`")
        return {"name": name.strip().lower(), "deleted": True}
