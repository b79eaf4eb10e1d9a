"""Generation jobs: queued from the REST API, run one at a time by the serving process.

Liveness is the lock mechanism the recorder uses (store/lock.py): the process that owns a
queue holds ``<data-dir>/locks/jobs-<pid>.lock`` under ``flock`` for its lifetime, and a job
is alive while its owner's lock is held. The kernel drops the lock when the process dies, so
a pid the OS has since given to another program does not look alive (``os.kill(pid, 0)``
would say it does, and on Windows it terminates the process).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LocalVideoError, NotFoundError, UsageError
from ..store import jobs as store
from ..store.lock import PidLock, holder_pid
from .context import Context
from .models import GenerateParams, GenerateRequest, Job
from .synth import SynthArea, check_prompt

INTERRUPTED = {"type": "Interrupted", "message": "the server stopped before this job finished",
               "hint": "submit it again (the same seed gives the same clip)"}


def lock_path(data_dir: Path, pid: int) -> Path:
    return data_dir / "locks" / f"jobs-{pid}.lock"


class JobsLock(PidLock):
    """Held by a process while it owns a job queue (one file per owner pid)."""

    def __init__(self, data_dir: Path, pid: int | None = None) -> None:
        super().__init__(data_dir)
        self.path = lock_path(data_dir, pid if pid is not None else os.getpid())

    def busy(self, pid: str) -> UsageError:
        return UsageError(f"the job queue lock {self.path} is held by pid {pid}",
                          "another process with this pid owns it; try again")


# One jobs lock per data dir per process, whatever the number of Service objects in it
# (a second flock on the same file from this process would refuse the first). Never
# released: the kernel drops it when the process exits.
_HELD: dict[Path, JobsLock] = {}
_HELD_GUARD = threading.Lock()


def _hold(data_dir: Path) -> bool:
    """Hold this process' jobs lock on ``data_dir``; True when this call took it."""
    key = data_dir.resolve()
    with _HELD_GUARD:
        if key in _HELD:
            return False
        lock = JobsLock(key)
        lock.acquire()
        _HELD[key] = lock
        return True


def owner_alive(data_dir: Path, pid: int | None) -> bool:
    """Whether the process that owns jobs of ``pid`` is alive (holds its jobs lock)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    return holder_pid(lock_path(data_dir, pid)) == pid


class _JobQueue:
    """One worker thread per process running generation jobs one at a time.

    One at a time because a generation fills the GPU: two at once would only run out of memory.
    """

    def __init__(self, run: Callable[[int], None]) -> None:
        self._run = run
        self._queue: queue.Queue[int] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, job_id: int) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="localvideo-jobs",
                                                daemon=True)
                self._thread.start()
        self._queue.put(job_id)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                self._run(job_id)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        self._queue.join()


class JobsArea:
    def __init__(self, ctx: Context, synth: SynthArea) -> None:
        self._ctx = ctx
        self._synth = synth
        self._queue: _JobQueue | None = None
        self._guard = threading.Lock()

    # -- owning a queue -------------------------------------------------------------------
    def _own_queue(self) -> _JobQueue:
        """This process' queue; the first call takes the jobs lock for this pid."""
        with self._guard:
            if self._queue is not None:
                return self._queue
            self._queue = _JobQueue(self._run)
            if not _hold(self._ctx.settings.data_dir):
                return self._queue
            # Rows that carry this pid but predate this process' lock belong to a dead
            # process the OS gave the same pid: its queued jobs are ours to run, its running
            # ones died with it.
            for job in store.list_jobs(self._ctx.db, -1):
                if job.pid != os.getpid():
                    continue
                if job.state == "queued":
                    self._queue.put(job.id)
                elif job.state == "running":
                    store.finish_job(self._ctx.db, job.id, "failed", error=INTERRUPTED)
            return self._queue

    # -- the API --------------------------------------------------------------------------
    def submit(self, params: GenerateParams) -> Job:
        """Queue one generation; returns the job at once (state 'queued').

        Weights come from the models folder only: a job arrives over the API, and a path
        parameter of the API must not reach files elsewhere on the machine."""
        req = GenerateRequest.of(**params.model_dump(exclude_none=True))
        self._synth.confine(req)
        check_prompt(req.prompt)
        q = self._own_queue()
        job_id = store.add_job(self._ctx.db, "generate",
                               req.model_dump(mode="json", exclude_defaults=True), os.getpid())
        q.put(job_id)
        return self.get(job_id)

    def resume(self) -> list[int]:
        """Take over the jobs a stopped server had queued but not started; run them here.

        Called when a server starts (observe restarts a dead serve). A job that was already
        running is not re-run: if the generation itself killed the server (host memory), a
        retry would kill it again in a loop. It reads as failed (Interrupted) instead.
        """
        q = self._own_queue()
        taken = []
        for row in store.queued_jobs(self._ctx.db):
            if owner_alive(self._ctx.settings.data_dir, row.pid):
                continue
            # Claim only if no other starting server claimed it first (same old pid).
            if store.claim_job(self._ctx.db, row.id, row.pid, os.getpid()):
                taken.append(row.id)
                q.put(row.id)
        return taken

    def get(self, job_id: int) -> Job:
        job = store.get_job(self._ctx.db, int(job_id))
        if job is None:
            raise NotFoundError(f"no job {job_id}", "list jobs with GET /api/jobs")
        return self._view(job)

    def list(self, limit: int = 50) -> list[Job]:
        """The newest jobs, newest first."""
        return [self._view(j) for j in store.list_jobs(self._ctx.db, int(limit))]

    def wait(self) -> None:
        """Block until this process' queue is empty (used by tests and shutdown)."""
        if self._queue is not None:
            self._queue.join()

    # -- running --------------------------------------------------------------------------
    def _run(self, job_id: int) -> None:
        job = store.get_job(self._ctx.db, job_id)
        if job is None:
            return
        store.start_job(self._ctx.db, job_id)
        last = [0.0]

        def on_progress(event: dict[str, Any]) -> None:
            # Steps can come many times a second; the UI polls once a second.
            now = time.monotonic()
            if now - last[0] < 0.2 and event.get("step") != event.get("steps"):
                return
            last[0] = now
            store.set_job_progress(self._ctx.db, job_id, event)

        try:
            req = GenerateRequest.of(**job.params)
            clip = self._synth.generate(req, on_progress=on_progress)
        except LocalVideoError as exc:
            store.finish_job(self._ctx.db, job_id, "failed", error=exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a job must end recorded, whatever broke
            store.finish_job(self._ctx.db, job_id, "failed",
                             error={"type": type(exc).__name__, "message": str(exc)})
        else:
            store.finish_job(self._ctx.db, job_id, "done",
                             result=clip.public().model_dump(mode="json"))

    def _view(self, job: store.Job) -> Job:
        out = Job(id=job.id, kind=job.kind, params=job.params, state=job.state,
                  progress=job.progress, result=job.result, error=job.error,
                  created_ts=job.created_ts, started_ts=job.started_ts,
                  finished_ts=job.finished_ts)
        alive = owner_alive(self._ctx.settings.data_dir, job.pid)
        if job.state == "queued" and not alive:
            # Not started, so nothing is lost: the next server to start takes it over.
            out.waiting = "for `localvideo serve` (the server that queued it stopped)"
        elif job.state == "running" and not alive:
            # The server that ran it is gone: say so instead of "running" forever.
            store.finish_job(self._ctx.db, job.id, "failed", error=INTERRUPTED)
            out.state, out.error = "failed", dict(INTERRUPTED)
        return out
