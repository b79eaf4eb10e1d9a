"""The analyze area: read the screen, search it, reason over it.

The work lives in ``localvideo.analyze``; this area wires settings, the reasoner and the
index together and returns the typed models.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .. import runtime
from ..analyze import index
from ..analyze.lock import AnalyzeLock
from ..analyze.ocr import check_tesseract
from ..errors import NotFoundError, UsageError
from ..reason.base import Reasoner, ReasonRequest, describe_request, get_reasoner
from ..store import frames as frames_db
from ..store import observations as obs_db
from ..store import text as text_db
from ..units import parse_duration
from .context import Context, Progress, check_limit, maybe_moment
from .models import (
    AnalysisStatus,
    AnalyzeRequest,
    AnalyzeSummary,
    Answer,
    AskPreview,
    AskQuestion,
    AskRequest,
    Observation,
    ReindexSummary,
    SearchHit,
    Segment,
    TimeSpan,
    When,
)

MIN_WINDOW = 5.0
STATUSES = ("pending", "done", "failed")

# Imported where used, not above, because every CLI command imports this module:
# analyze.observations and analyze.loop decode key frames (numpy and PyAV, about half of the CLI's
# start-up) and analyze.embed loads numpy; only analyze, ask and search pay for them.


class AnalyzeArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # -- the loop -------------------------------------------------------------------------
    def run(self, req: AnalyzeRequest | None = None, *, stop: threading.Event | None = None,
            on_progress: Progress | None = None) -> AnalyzeSummary:
        """Read every chunk not read yet and reason over each complete window of activity.

        With ``follow`` it keeps going (chunks being written included) until ``stop`` is set.
        ``dry_run`` reads and indexes locally but sends nothing: the requests that would be
        sent are returned under ``requests`` (and passed to ``on_progress`` as events).
        """
        req = req or AnalyzeRequest()
        settings = self._ctx.settings
        window = req.window if req.window is not None else settings.analyze.window
        win = parse_duration(window, what="--window")
        if win < MIN_WINDOW:
            raise UsageError(f"--window must be at least {MIN_WINDOW:.0f}s (got {req.window})",
                             "use e.g. --window 30s, 5m or 1h")
        check_tesseract(settings.analyze.ocr_engine)
        with AnalyzeLock(settings.data_dir):
            return self._run(req, win, stop or threading.Event(), on_progress)

    def _run(self, req: AnalyzeRequest, win: float, stop: threading.Event,
             on_progress: Progress | None) -> AnalyzeSummary:
        from ..analyze import observations  # numpy + PyAV: see the note at the top
        from ..analyze.loop import ChunkReader, PassStats

        settings, db = self._ctx.settings, self._ctx.db
        emit = on_progress or (lambda _e: None)
        rsn = get_reasoner(req.reasoner, settings=settings, db=db, model=req.model,
                           base_url=req.base_url, key=req.key)
        reader = ChunkReader(settings, db, on_progress=on_progress, stop=stop)
        total = PassStats()
        results: list[dict[str, Any]] = []
        requests: list[dict[str, Any]] = []
        described: set[tuple[float, float]] = set()   # --dry-run --follow: each window once
        started = time.time()
        first = True
        frozen = False
        while True:
            total.add(reader.run_pass())
            if stop.is_set():
                break
            if req.follow and not frozen:
                # Hours of passes ahead, over what start-up and the first pass loaded (the
                # embedding model, tesseract): keep the collector off those objects.
                runtime.freeze_startup()
                frozen = True
            until, flush = index.analysed_until(db)
            if req.dry_run:
                requests += self._dry_run(rsn, win, until, flush, emit, described)
            else:
                observations.cut_windows(db, win, until, flush)
                # An explicit run retries everything pending; the follow loop honours backoff.
                for obs in observations.due(db, ignore_backoff=first):
                    if stop.is_set():
                        break
                    res = observations.run_observation(settings, db, rsn, obs)
                    results.append(res)
                    emit({"event": "observation", **res})
            first = False
            if not req.follow or stop.wait(req.poll):
                break
        summary: dict[str, Any] = {
            **total.to_dict(), "reasoner": rsn.name, "model": rsn.model,
            "seconds": round(time.time() - started, 2), "stopped": stop.is_set(),
            "observations": results, "status": self.status()}
        if req.dry_run:
            summary["requests"] = requests
        return AnalyzeSummary.model_validate(summary)

    def _dry_run(self, rsn: Reasoner, win: float, until: float | None, flush: bool,
                 emit: Progress, described: set[tuple[float, float]]) -> list[dict[str, Any]]:
        """Describe the requests of pending and complete windows without storing anything."""
        from ..analyze import observations  # numpy + PyAV: see the note at the top

        settings, db = self._ctx.settings, self._ctx.db
        out: list[dict[str, Any]] = []
        spans = [(r.start_ts, r.end_ts) for r in observations.due(db, ignore_backoff=True)]
        spans += observations.window_spans(db, win, until, flush)
        for start, end in spans:
            if (start, end) in described:
                continue
            described.add((start, end))
            built = observations.build_observe(settings, db, rsn, start, end)
            desc = {"start_ts": start, "end_ts": end, "redactions": built.redactions,
                    **describe_request(built.request, rsn)}
            out.append(desc)
            emit({"event": "dry_run", **desc})
        return out

    # -- status -----------------------------------------------------------------------------
    def status(self) -> AnalysisStatus:
        """Chunks analysed / pending, key frames read, lag, observations and endpoint errors."""
        db = self._ctx.db
        counts = text_db.analysis_counts(db)
        obs = obs_db.status_counts(db)
        latest = frames_db.last_frame_ts(db)
        until, _ = index.analysed_until(db)
        lag = max(0.0, latest - until) if latest is not None and until is not None else 0.0
        err = db.get_kv(obs_db.ENDPOINT_ERROR_KEY)
        total = counts.chunks
        done = counts.chunks_done
        pending_obs = obs.get("pending", 0)
        line = (f"{done}/{total} chunks analysed, {counts.frames_read} key frames read, "
                f"{obs.get('done', 0)} observations done, {pending_obs} pending, "
                f"{obs.get('failed', 0)} failed")
        if err and pending_obs:
            line += (f"; last endpoint error ({err.get('reasoner')}): {err.get('message')} — "
                     "retried on the next `localvideo analyze`")
        return AnalysisStatus(
            chunks_total=total, chunks_analysed=done, chunks_pending=total - done,
            frames_read=counts.frames_read,
            ocr_ms_avg=round(counts.ocr_ms_avg, 1) if counts.ocr_ms_avg else None,
            analysed_until=until, lag_seconds=round(lag, 2),
            observations_done=obs.get("done", 0), observations_pending=pending_obs,
            observations_failed=obs.get("failed", 0), last_endpoint_error=err,
            next_retry_ts=obs_db.next_retry_ts(db), line=line)

    # -- reading back ---------------------------------------------------------------------
    def search(self, query: str, app: str | None = None, since: When | None = None,
               until: When | None = None, limit: int = 50,
               mode: str | None = None) -> list[SearchHit]:
        """Moments something was on screen: by its words (FTS5 over OCR text, app and window
        title), its meaning (embeddings) or both fused; ``mode`` keyword | semantic | hybrid,
        default hybrid once `analyze` has embedded anything, else keyword."""
        from ..analyze import embed

        check_limit(limit)
        hits = embed.search(self._ctx.db, query, mode=mode, app=app,
                            since=maybe_moment(since, "--since"),
                            until=maybe_moment(until, "--until"), limit=limit,
                            models_dir=self._ctx.settings.models_dir)
        return [SearchHit.model_validate(h) for h in hits]

    def reindex(self, *, force: bool = False, stop: threading.Event | None = None,
                on_progress: Progress | None = None) -> ReindexSummary:
        """Embed every key frame read so far with the configured model (``analyze.embed_model``)
        and make it the one searched; after a model change the old vectors are replaced.

        ``force`` re-embeds what this model already embedded. Holds the analysis lock, so it
        never runs beside `analyze`."""
        from ..analyze import embed
        from ..analyze.lock import AnalyzeLock

        settings = self._ctx.settings
        emb = embed.get_embedder(settings.analyze.embed_model, settings.models_dir)
        with AnalyzeLock(settings.data_dir):
            res = embed.reindex(self._ctx.db, emb, force=force, on_progress=on_progress,
                                stop=stop)
        return ReindexSummary.model_validate(res)

    def timeline(self, since: When | None = None, until: When | None = None) -> list[Segment]:
        """Time per app and window, merged across short interruptions."""
        return [Segment.model_validate(s.to_dict())
                for s in index.sessions(self._ctx.db, maybe_moment(since, "--since"),
                                        maybe_moment(until, "--until"))]

    def observations(self, since: When | None = None, limit: int = 50,
                     status: str | None = None) -> list[Observation]:
        """The newest observations (oldest first), optionally only one status."""
        if status not in (None, *STATUSES):
            raise UsageError(f"unknown status {status!r}", "use --status pending, done or failed")
        rows = obs_db.latest(self._ctx.db, since=maybe_moment(since, "--since"), status=status,
                             limit=limit)
        return [Observation.model_validate(o.to_dict()) for o in rows]

    def observation(self, obs_id: int) -> Observation:
        row = obs_db.get(self._ctx.db, obs_id)
        if row is None:
            raise NotFoundError(f"no observation {obs_id}",
                                "list them with `localvideo observations`")
        return Observation.model_validate(row.to_dict())

    def _ask(self, req: AskQuestion
             ) -> tuple[Reasoner, ReasonRequest, list[SearchHit], list[TimeSpan]]:
        from ..analyze.observations import build_ask  # numpy + PyAV: see the note at the top

        if not req.question.strip():
            raise UsageError("the question is empty",
                             'ask something, e.g. `localvideo ask "what was I doing at 14:00?"`')
        full = req if isinstance(req, AskRequest) else AskRequest(**req.model_dump())
        settings, db = self._ctx.settings, self._ctx.db
        rsn = get_reasoner(full.reasoner, settings=settings, db=db, model=full.model,
                           base_url=full.base_url, key=full.key)
        request, hits, windows = build_ask(settings, db, req.question,
                                           maybe_moment(req.since, "--since"),
                                           maybe_moment(req.until, "--until"))
        # How the question was placed in time, so a caller can show what was looked at.
        times = [TimeSpan(start_ts=w.start, end_ts=w.end, label=w.label) for w in windows]
        return rsn, request, [SearchHit.model_validate(h) for h in hits], times

    def ask(self, req: AskQuestion) -> Answer:
        """Answer a question from the screen history, citing the moments it used.

        A plain :class:`AskQuestion` (what the REST API and MCP take) uses the configured
        reasoner; an :class:`AskRequest` may pick another."""
        rsn, request, hits, times = self._ask(req)
        resp = rsn.execute(request)
        data = resp.data or {}
        return Answer(answer=data.get("answer", resp.text),
                      timestamps=[float(t) for t in data.get("timestamps", [])],
                      sources=hits, times=times, reasoner=rsn.name,
                      model=resp.model or rsn.model, request_id=resp.request_id)

    def preview_ask(self, req: AskQuestion) -> AskPreview:
        """What :meth:`ask` would send (``ask --dry-run``); sends nothing."""
        rsn, request, hits, times = self._ask(req)
        return AskPreview(request=describe_request(request, rsn), sources=hits, times=times)
