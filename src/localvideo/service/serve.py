"""Service operations for the serve area: API token, generation job queue, act, doctor,
autostart.

Everything here is what the REST API, the web UI, the MCP server and the CLI share; none of
it knows about HTTP.
"""

from __future__ import annotations

import hmac
import os
import platform
import plistlib
import queue
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigError,
    LocalVideoError,
    NotFoundError,
    UsageError,
)
from ..store import jobs as jobs_db
from .base import ServiceBase

TOKEN_ENV = "LOCALVIDEO_API_TOKEN"
TOKEN_FILE = "api-token"
SYSTEMD_UNIT = "localvideo.service"
LAUNCHD_LABEL = "dev.localvideo.observe"
# How much of an agent's output the actions log keeps: enough to see what it did.
OUTPUT_TAIL_CHARS = 4000
# An agent working on a task may take a while; past this it is stopped and the log says so.
ACT_TIMEOUT = 1800.0
# Generation arguments a caller may queue; anything else is refused before it is stored.
GENERATE_ARGS = frozenset({
    "prompt", "model", "model_path", "image", "frames", "height", "width", "fps", "steps",
    "guidance", "seed", "negative", "backend", "comfy_url", "workflow", "max_vram", "cache",
    "compile", "attention", "device",
})


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class ServeOps(ServiceBase):
    # -- API token -----------------------------------------------------------------------
    @property
    def token_path(self) -> Path:
        return self.settings.data_dir / TOKEN_FILE

    def api_token(self) -> str:
        """The bearer token of the local API; created (mode 0600) on first use."""
        env = os.environ.get(TOKEN_ENV, "").strip()
        if env:
            return env
        path = self.token_path
        try:
            token = path.read_text().strip()
            if token:
                return token
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot read the API token {path}: {exc}",
                              f"remove {path}; `localvideo token` makes a new one") from exc
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        # O_EXCL: two processes starting at once must agree on one token, not overwrite.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token

    def rotate_token(self) -> str:
        """Replace the token; every browser and client holding the old one is locked out at
        once (the server reads the file on each request)."""
        if os.environ.get(TOKEN_ENV, "").strip():
            raise UsageError(f"the token comes from {TOKEN_ENV}, so there is no file to rotate",
                             f"change {TOKEN_ENV} instead")
        self.token_path.unlink(missing_ok=True)
        return self.api_token()

    def check_token(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.api_token().encode())

    # -- generation jobs -----------------------------------------------------------------
    @property
    def _jobs_queue(self) -> _JobQueue:
        q = self.__dict__.get("_lv_job_queue")
        if q is None:
            q = self.__dict__.setdefault("_lv_job_queue", _JobQueue(self._run_job))
        return q  # type: ignore[no-any-return]

    def submit_generate(self, **kwargs: Any) -> dict[str, Any]:
        """Queue one generation; returns the job at once (state 'queued')."""
        unknown = sorted(set(kwargs) - GENERATE_ARGS)
        if unknown:
            raise UsageError(f"unknown generation argument(s): {', '.join(unknown)}",
                             f"known: {', '.join(sorted(GENERATE_ARGS))}")
        params = {k: v for k, v in kwargs.items() if v is not None}
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError("a generation needs a prompt",
                             'e.g. localvideo generate "a red fox running through snow"')
        if not hasattr(self, "generate"):
            raise LocalVideoError("video generation is not part of this build",
                                  "install the synth extra: pip install 'localvideo[synth]'")
        job_id = jobs_db.add_job(self.db, "generate", params, os.getpid())
        self._jobs_queue.put(job_id)
        return self.job(job_id)

    def resume_jobs(self) -> list[int]:
        """Take over the jobs a stopped server had queued but not started; run them here.

        Called when a server starts (observe restarts a dead serve). A job that was already
        running is not re-run: if the generation itself killed the server (host memory), a
        retry would kill it again in a loop. It reads as failed (Interrupted) instead.
        """
        taken = []
        for row in jobs_db.queued_jobs(self.db):
            if _pid_alive(row.pid):
                continue
            # Claim only if no other starting server claimed it first (same old pid).
            if jobs_db.claim_job(self.db, row.id, row.pid, os.getpid()):
                taken.append(row.id)
                self._jobs_queue.put(row.id)
        return taken

    def _run_job(self, job_id: int) -> None:
        row = jobs_db.get_job(self.db, job_id)
        if row is None:
            return
        params = row.params
        jobs_db.start_job(self.db, job_id)
        last = [0.0]

        def on_progress(event: dict[str, Any]) -> None:
            # Steps can come many times a second; the UI polls once a second.
            now = time.monotonic()
            if now - last[0] < 0.2 and event.get("step") != event.get("steps"):
                return
            last[0] = now
            jobs_db.set_job_progress(self.db, job_id, event)

        # generate() comes from SynthOps, a sibling mixin of the composed Service.
        svc: Any = self
        try:
            result = svc.generate(**params, on_progress=on_progress)
        except LocalVideoError as exc:
            self._finish_job(job_id, "failed", error=exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a job must end recorded, whatever broke
            self._finish_job(job_id, "failed",
                             error={"type": type(exc).__name__, "message": str(exc)})
        else:
            self._finish_job(job_id, "done", result=result)

    def _finish_job(self, job_id: int, state: str, *, result: Any = None,
                    error: dict[str, str] | None = None) -> None:
        jobs_db.finish_job(self.db, job_id, state, result=result, error=error)

    def _job_dict(self, row: jobs_db.Job) -> dict[str, Any]:
        job = {
            "id": row.id, "kind": row.kind, "params": row.params,
            "state": row.state, "progress": row.progress,
            "result": row.result, "error": row.error,
            "created_ts": row.created_ts, "started_ts": row.started_ts,
            "finished_ts": row.finished_ts,
        }
        if job["state"] == "queued" and not _pid_alive(row.pid):
            # Not started, so nothing is lost: the next server to start takes it over.
            job["waiting"] = "for `localvideo serve` (the server that queued it stopped)"
        elif job["state"] == "running" and not _pid_alive(row.pid):
            # The server that ran it is gone: say so instead of "running" forever.
            err = {"type": "Interrupted",
                   "message": "the server stopped before this job finished",
                   "hint": "submit it again (the same seed gives the same clip)"}
            jobs_db.finish_job(self.db, row.id, "failed", error=err)
            job.update(state="failed", error=err)
        return job

    def job(self, job_id: int) -> dict[str, Any]:
        row = jobs_db.get_job(self.db, int(job_id))
        if row is None:
            raise NotFoundError(f"no job {job_id}", "list jobs with GET /api/jobs")
        return self._job_dict(row)

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        return [self._job_dict(r) for r in jobs_db.list_jobs(self.db, int(limit))]

    def wait_jobs(self) -> None:
        """Block until this process' queue is empty (used by tests and shutdown)."""
        q = self.__dict__.get("_lv_job_queue")
        if q is not None:
            q.join()

    # -- act on a suggested task ---------------------------------------------------------
    def _agent_argv(self) -> list[str]:
        command = (self.settings.serve.agent_command or "").strip()
        if not command:
            raise ConfigError(
                "no agent command is configured, so nothing can act on a suggestion",
                f'add to {self.settings.config_path}: [serve] agent_command = "claude -p" '
                "(or set LOCALVIDEO_SERVE_AGENT_COMMAND)")
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"cannot parse agent_command {command!r}: {exc}",
                              "fix the quoting of [serve] agent_command in config.toml") from exc
        if shutil.which(argv[0]) is None:
            raise ConfigError(f"agent command {argv[0]!r} is not on PATH",
                              "install it or point [serve] agent_command at its full path")
        return argv

    def act_task_text(self, obs: dict[str, Any]) -> str:
        """The hand-off: the suggested task plus the context an agent needs to do it."""
        from ..units import format_ts

        task = obs.get("task") or {}
        lines = [
            f"Task suggested by localvideo from the user's screen activity "
            f"(observation {obs.get('id')}, {format_ts(obs['start_ts'])} – "
            f"{format_ts(obs['end_ts'])}):",
            "",
            f"Title: {task.get('title') or '(untitled)'}",
        ]
        if task.get("category"):
            lines.append(f"Category: {task['category']}")
        if task.get("description"):
            lines += ["", str(task["description"])]
        if obs.get("summary"):
            lines += ["", "What the user was doing:", str(obs["summary"])]
        if obs.get("activities"):
            lines += ["", "Activities:"] + [f"- {a}" for a in obs["activities"]]
        lines += ["", "The localvideo MCP server (`localvideo mcp`) can search the screen "
                      "history and fetch frames of these moments if you need more context."]
        return "\n".join(lines) + "\n"

    def act(self, observation_id: int, *, background: bool = False,
            timeout: float = ACT_TIMEOUT) -> dict[str, Any]:
        """Hand an observation's suggested task to the configured agent command.

        Nothing runs without ``[serve] agent_command``. The task goes on stdin, or in place of
        ``{task}`` when the command contains it. Every hand-off is logged in ``actions``.
        """
        argv = self._agent_argv()
        svc: Any = self  # observation() comes from AnalyzeOps
        obs = svc.observation(int(observation_id))
        task = obs.get("task") or {}
        if task.get("verdict") != "TASK_FOUND":
            raise UsageError(f"observation {observation_id} has no suggested task",
                             "list the ones that do with `localvideo observations`")
        text = self.act_task_text(obs)
        use_stdin = not any("{task}" in a for a in argv)
        argv = [a.replace("{task}", text) for a in argv]
        action_id = jobs_db.add_action(self.db, int(observation_id),
                                       self.settings.serve.agent_command or "", text)
        if background:
            threading.Thread(target=self._run_action, args=(action_id, argv, text, use_stdin,
                                                            timeout),
                             name=f"localvideo-act-{action_id}", daemon=True).start()
        else:
            self._run_action(action_id, argv, text, use_stdin, timeout)
        return self.action(action_id)

    def _run_action(self, action_id: int, argv: list[str], text: str, use_stdin: bool,
                    timeout: float) -> None:
        try:
            proc = subprocess.run(argv, input=text if use_stdin else None,
                                  stdin=None if use_stdin else subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout,
                                  cwd=str(Path.home()))
            output = (proc.stdout or "") + (proc.stderr or "")
            code: int | None = proc.returncode
            state = "done" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            output = (out.decode(errors="replace") if isinstance(out, bytes) else out)
            output += f"\n[localvideo: stopped after {timeout:.0f} s]"
            code, state = None, "failed"
        except OSError as exc:
            output, code, state = f"[localvideo: could not start {argv[0]}: {exc}]", None, \
                "failed"
        jobs_db.finish_action(self.db, action_id, state=state, exit_code=code,
                              output_tail=output[-OUTPUT_TAIL_CHARS:])

    def _action_dict(self, row: jobs_db.Action) -> dict[str, Any]:
        action = row.to_dict()
        if action["state"] == "running" and time.time() - action["ts"] > ACT_TIMEOUT + 60:
            # Longer than any hand-off may run: the process that ran it is gone.
            action.update(state="failed", output_tail=(action["output_tail"] or "")
                          + "\n[localvideo: the process that ran this hand-off stopped]")
            jobs_db.set_action_state(self.db, action["id"], action["state"],
                                     action["output_tail"])
        return action

    def action(self, action_id: int) -> dict[str, Any]:
        row = jobs_db.get_action(self.db, int(action_id))
        if row is None:
            raise NotFoundError(f"no action {action_id}", "list them with `localvideo actions`")
        return self._action_dict(row)

    def actions(self, limit: int = 50) -> list[dict[str, Any]]:
        return [self._action_dict(r) for r in jobs_db.list_actions(self.db, int(limit))]

    # -- doctor --------------------------------------------------------------------------
    def doctor(self) -> dict[str, Any]:
        """Check this machine and say which job it suits, at what settings, and what to install."""
        from ..doctor import run_checks

        svc: Any = self  # plan() and models() come from SynthOps
        return run_checks(self.settings, plan=getattr(svc, "plan", None),
                          models=getattr(svc, "models", None))

    # -- autostart -----------------------------------------------------------------------
    def _service_target(self, home: Path | None, system: str | None) -> tuple[str, Path]:
        system = system or platform.system()
        home = Path(home) if home is not None else Path.home()
        if system == "Linux":
            return system, home / ".config" / "systemd" / "user" / SYSTEMD_UNIT
        if system == "Darwin":
            return system, home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        raise UsageError(f"autostart is not supported on {system} yet",
                         "start `localvideo observe` from your login items instead")

    def service_file(self, *, python: str | None = None, system: str | None = None) -> str:
        """The unit (systemd) or agent (launchd) text that runs ``localvideo observe``."""
        system = system or platform.system()
        python = python or sys.executable
        data_dir = str(self.settings.data_dir)
        if system == "Linux":
            exec_start = " ".join(shlex.quote(a) for a in
                                  [python, "-m", "localvideo", "observe", "--data-dir", data_dir])
            # graphical-session.target: capture needs the user's display, which systemd
            # only knows once the desktop session has imported DISPLAY/WAYLAND_DISPLAY.
            return (
                "[Unit]\n"
                "Description=localvideo: record, analyze and serve your screen history\n"
                "PartOf=graphical-session.target\n"
                "After=graphical-session.target\n\n"
                "[Service]\n"
                "Type=simple\n"
                f"ExecStart={exec_start}\n"
                "Restart=on-failure\n"
                "RestartSec=10\n"
                # observe forwards SIGINT to its children and waits for chunks to close.
                "KillSignal=SIGINT\n"
                "TimeoutStopSec=30\n\n"
                "[Install]\n"
                "WantedBy=graphical-session.target\n"
            )
        if system == "Darwin":
            logs = Path(data_dir) / "logs"
            plist = {
                "Label": LAUNCHD_LABEL,
                "ProgramArguments": [python, "-m", "localvideo", "observe", "--data-dir",
                                     data_dir],
                "RunAtLoad": True,
                "KeepAlive": {"SuccessfulExit": False},
                "ProcessType": "Interactive",
                "StandardOutPath": str(logs / "observe.out.log"),
                "StandardErrorPath": str(logs / "observe.err.log"),
            }
            return plistlib.dumps(plist).decode()
        raise UsageError(f"autostart is not supported on {system} yet",
                         "start `localvideo observe` from your login items instead")

    def service_install(self, *, home: Path | None = None, system: str | None = None,
                        python: str | None = None) -> dict[str, Any]:
        """Write the autostart file; returns its path and the command that enables it."""
        system, path = self._service_target(home, system)
        text = self.service_file(python=python, system=system)
        path.parent.mkdir(parents=True, exist_ok=True)
        if system == "Darwin":
            (self.settings.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        if system == "Linux":
            enable = "systemctl --user daemon-reload && systemctl --user enable --now " \
                     f"{SYSTEMD_UNIT}"
        else:
            enable = f"launchctl bootstrap gui/$(id -u) {shlex.quote(str(path))}"
        return {"system": system, "path": str(path), "enable_command": enable}

    def service_uninstall(self, *, home: Path | None = None,
                          system: str | None = None) -> dict[str, Any]:
        system, path = self._service_target(home, system)
        removed = []
        if system == "Linux":
            # `systemctl disable` refuses once the unit file is gone, so drop the
            # enablement links ourselves; what is left is stopping the running copy.
            for link in path.parent.glob(f"*.wants/{SYSTEMD_UNIT}"):
                link.unlink(missing_ok=True)
                removed.append(str(link))
            stop = f"systemctl --user stop {SYSTEMD_UNIT}; systemctl --user daemon-reload"
        else:
            # bootout works by label, with or without the plist on disk.
            stop = f"launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}"
        if path.exists():
            path.unlink()
            removed.insert(0, str(path))
        return {"system": system, "path": str(path), "removed": removed,
                "stop_command": stop}
