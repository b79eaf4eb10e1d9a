"""Hand an observation's suggested task to the user's agent command (``[serve] agent_command``).

Nothing runs without that setting. The task goes on stdin, or in place of ``{task}`` when the
command contains it. Every hand-off is logged in the ``actions`` table.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

from ..errors import ConfigError, NotFoundError, UsageError
from ..store import jobs as store
from ..units import format_ts
from .analyze import AnalyzeArea
from .context import Context
from .models import Action, Observation

# How much of an agent's output the actions log keeps: enough to see what it did.
OUTPUT_TAIL_CHARS = 4000
# An agent working on a task may take a while; past this it is stopped and the log says so.
ACT_TIMEOUT = 1800.0


class ActArea:
    def __init__(self, ctx: Context, analyze: AnalyzeArea) -> None:
        self._ctx = ctx
        self._analyze = analyze

    def _agent_argv(self) -> list[str]:
        settings = self._ctx.settings
        command = (settings.serve.agent_command or "").strip()
        if not command:
            raise ConfigError(
                "no agent command is configured, so nothing can act on a suggestion",
                f'add to {settings.config_path}: [serve] agent_command = "claude -p" '
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

    @staticmethod
    def task_text(obs: Observation) -> str:
        """The hand-off: the suggested task plus the context an agent needs to do it."""
        task = obs.task
        lines = [
            f"Task suggested by localvideo from the user's screen activity "
            f"(observation {obs.id}, {format_ts(obs.start_ts)} – {format_ts(obs.end_ts)}):",
            "",
            f"Title: {(task.title if task else None) or '(untitled)'}",
        ]
        if task and task.category:
            lines.append(f"Category: {task.category}")
        if task and task.description:
            lines += ["", str(task.description)]
        if obs.summary:
            lines += ["", "What the user was doing:", str(obs.summary)]
        if obs.activities:
            lines += ["", "Activities:"] + [f"- {a}" for a in obs.activities]
        lines += ["", "The localvideo MCP server (`localvideo mcp`) can search the screen "
                      "history and fetch frames of these moments if you need more context."]
        return "\n".join(lines) + "\n"

    def run(self, observation_id: int, *, background: bool = False,
            timeout: float = ACT_TIMEOUT) -> Action:
        """Hand the observation's suggested task to the agent command; returns the logged
        action (still 'running' when ``background``)."""
        argv = self._agent_argv()
        obs = self._analyze.observation(int(observation_id))
        if obs.task is None or obs.task.verdict != "TASK_FOUND":
            raise UsageError(f"observation {observation_id} has no suggested task",
                             "list the ones that do with `localvideo observations`")
        text = self.task_text(obs)
        use_stdin = not any("{task}" in a for a in argv)
        argv = [a.replace("{task}", text) for a in argv]
        action_id = store.add_action(self._ctx.db, int(observation_id),
                                     self._ctx.settings.serve.agent_command or "", text)
        if background:
            threading.Thread(target=self._run, args=(action_id, argv, text, use_stdin, timeout),
                             name=f"localvideo-act-{action_id}", daemon=True).start()
        else:
            self._run(action_id, argv, text, use_stdin, timeout)
        return self.get(action_id)

    def _run(self, action_id: int, argv: list[str], text: str, use_stdin: bool,
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
            output, code, state = (f"[localvideo: could not start {argv[0]}: {exc}]", None,
                                   "failed")
        store.finish_action(self._ctx.db, action_id, state=state, exit_code=code,
                            output_tail=output[-OUTPUT_TAIL_CHARS:])

    def _view(self, row: store.Action) -> Action:
        action = Action.model_validate(row.to_dict())
        if action.state == "running" and time.time() - action.ts > ACT_TIMEOUT + 60:
            # Longer than any hand-off may run: the process that ran it is gone.
            action.state = "failed"
            action.output_tail = ((action.output_tail or "")
                                  + "\n[localvideo: the process that ran this hand-off stopped]")
            store.set_action_state(self._ctx.db, action.id, action.state, action.output_tail)
        return action

    def get(self, action_id: int) -> Action:
        row = store.get_action(self._ctx.db, int(action_id))
        if row is None:
            raise NotFoundError(f"no action {action_id}", "list them with `localvideo actions`")
        return self._view(row)

    def list(self, limit: int = 50) -> list[Action]:
        """The newest hand-offs, newest first."""
        return [self._view(r) for r in store.list_actions(self._ctx.db, int(limit))]
