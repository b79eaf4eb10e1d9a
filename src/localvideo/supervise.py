"""`localvideo observe`'s process supervisor: record + analyze --follow + serve as children.

Why separate processes and not threads: the encoder, OCR and the web server each hold a lot
of memory and native state; one of them crashing (a driver, a codec, tesseract) must not take
the others down, and the OS frees everything a dead child held. The supervisor only starts,
watches, restarts with backoff, and stops.

Children run in their own process group so a terminal Ctrl-C reaches the supervisor only; it
then forwards SIGINT to each child (so the recorder closes its chunk), waits, and kills what
is left. On Linux a child also gets SIGINT if the supervisor itself dies without cleaning up. A child's output goes to ``<data-dir>/logs/<name>.log`` so the status line stays
readable; the last lines are quoted when a child dies.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import UsageError


def stop_processes(procs: Sequence[subprocess.Popen[Any]], *,
                   sig: signal.Signals | None = signal.SIGINT, timeout: float = 10.0,
                   group: bool = True,
                   on_kill: Callable[[subprocess.Popen[Any]], None] | None = None) -> None:
    """Ask processes to stop, wait for them, and kill what is left: the one escalation.

    ``sig`` goes to every process first, in the given order, so they wind down in parallel
    (the recorder closes its chunk on SIGINT); None when the caller already asked in its own
    way (closed a pipe). ``group``: signal the process group (the child was started in its
    own session), so a child's helpers (an ffmpeg, tesseract) stop with it. After
    ``timeout`` seconds for all of them together, SIGKILL (``on_kill`` hears which) and reap.
    """
    def send(p: subprocess.Popen[Any], s: signal.Signals) -> None:
        try:
            if group and hasattr(os, "killpg"):
                os.killpg(p.pid, s)
            elif s == getattr(signal, "SIGKILL", None):
                p.kill()
            else:
                p.send_signal(s)
        except (ProcessLookupError, PermissionError):
            pass  # already gone (or a reused pid that is not ours)

    live = [p for p in procs if p.poll() is None]
    if sig is not None:
        for p in live:
            send(p, sig)
    deadline = time.monotonic() + timeout
    for p in live:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if on_kill is not None:
                on_kill(p)
            send(p, getattr(signal, "SIGKILL", signal.SIGTERM))
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass  # unkillable (uninterruptible sleep): nothing more to do from here


# Restart delays; a part that then stays up for STABLE_AFTER seconds starts again at the first.
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER = 60.0


@dataclass
class Part:
    name: str
    argv: list[str]
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    state: str = "stopped"              # starting | running | restarting | stopping | stopped
    started: float = 0.0
    restarts: int = 0
    failures: int = 0                   # consecutive short lives, for the backoff
    next_start: float = 0.0
    last_exit: int | None = None
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def uptime(self, now: float | None = None) -> float:
        if self.state != "running":
            return 0.0
        return (now or time.monotonic()) - self.started


def _stop_with_supervisor() -> None:
    """Runs in the child between fork and exec: SIGINT it when the supervisor dies.

    The children sit in their own sessions (so a terminal Ctrl-C reaches only the
    supervisor), which also means nothing else would stop them if the supervisor were killed
    outright (SIGKILL, OOM): they would record on with nobody watching. SIGINT, not SIGKILL,
    so the recorder still closes its chunk. Linux only; elsewhere stop() is the cleanup.
    """
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGINT)   # PR_SET_PDEATHSIG


def _load_prctl() -> Any:
    # Resolved once in the parent: the child between fork and exec should not dlopen
    # (another thread may hold the loader's lock at fork time).
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def tail(path: Path | None, lines: int = 3) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 4000))
        text = f.read().decode(errors="replace")
    keep = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(keep[-lines:])


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Supervisor:
    """Starts the parts, restarts any that die (with backoff), stops them all on request."""

    def __init__(self, parts: list[Part], *, env: dict[str, str] | None = None,
                 log_dir: Path | None = None, on_event: Callable[[str], None] | None = None,
                 watch: Path | None = None, restart_on_change: tuple[str, ...] = (),
                 stop_timeout: float = 20.0) -> None:
        self.parts = parts
        self.env = env
        self.log_dir = log_dir
        self.on_event = on_event or (lambda msg: None)
        self.stop_timeout = stop_timeout
        self._watch = watch
        self._watch_mtime = self._mtime()
        self._restart_on_change = restart_on_change
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for part in self.parts:
            self._spawn(part)

    def _spawn(self, part: Part) -> None:
        if self.log_dir is not None:
            part.log_path = self.log_dir / f"{part.name}.log"
            if part._log is None:
                part._log = part.log_path.open("ab")
            part._log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: "
                            f"{' '.join(part.argv)}\n".encode())
            part._log.flush()
        out: Any = part._log if part._log is not None else subprocess.DEVNULL
        part.proc = subprocess.Popen(part.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     preexec_fn=_stop_with_supervisor if sys.platform == "linux"
                                     else None)
        part.state = "running"
        part.started = time.monotonic()

    def poll(self) -> None:
        """One supervision step: notice deaths, schedule and perform restarts."""
        now = time.monotonic()
        if self._config_changed():
            for part in self.parts:
                if part.name in self._restart_on_change and part.state == "running":
                    self.on_event(f"config changed: restarting {part.name}")
                    self._signal_and_wait(part)
                    part.restarts += 1
                    self._spawn(part)
        for part in self.parts:
            if part.state == "running" and part.proc is not None:
                code = part.proc.poll()
                if code is None:
                    if now - part.started > STABLE_AFTER:
                        part.failures = 0
                    continue
                part.last_exit = code
                if self._stopping:
                    part.state = "stopped"
                    continue
                lived = now - part.started
                if not part.restart:
                    part.state = "stopped"
                    self.on_event(f"{part.name} exited with code {code}")
                    continue
                if lived > STABLE_AFTER:
                    part.failures = 0
                delay = BACKOFF[min(part.failures, len(BACKOFF) - 1)]
                part.failures += 1
                part.state = "restarting"
                part.next_start = now + delay
                why = tail(part.log_path)
                self.on_event(f"{part.name} exited with code {code} after {lived:.0f} s; "
                              f"restarting in {delay:.0f} s"
                              + (f" — last output: {why}" if why else ""))
            elif part.state == "restarting" and now >= part.next_start and not self._stopping:
                part.restarts += 1
                self._spawn(part)
                self.on_event(f"{part.name} restarted (pid {part.pid}, restart "
                              f"#{part.restarts})")

    def _mtime(self) -> float | None:
        try:
            return self._watch.stat().st_mtime if self._watch is not None else None
        except OSError:
            return None

    def _config_changed(self) -> bool:
        if self._watch is None:
            return False
        m = self._mtime()
        if m != self._watch_mtime:
            self._watch_mtime = m
            return True
        return False

    def _signal_and_wait(self, part: Part, timeout: float | None = None) -> None:
        proc = part.proc
        if proc is None or proc.poll() is not None:
            return
        part.state = "stopping"
        wait = timeout or self.stop_timeout
        stop_processes([proc], timeout=wait, on_kill=lambda _: self.on_event(
            f"{part.name} did not stop in {wait:.0f} s; killing it"))
        part.last_exit = proc.returncode

    def stop(self) -> None:
        """SIGINT to every child at once, wait (they close files in parallel), then kill."""
        self._stopping = True
        live = {p.proc: p for p in self.parts if p.proc is not None and p.proc.poll() is None}
        for part in live.values():
            part.state = "stopping"
        stop_processes(list(live), timeout=self.stop_timeout, on_kill=lambda proc: self.on_event(
            f"{live[proc].name} did not stop in {self.stop_timeout:.0f} s; killing it"))
        for proc, part in live.items():
            part.last_exit = proc.returncode
        for part in self.parts:
            part.state = "stopped"
            if part._log is not None:
                part._log.close()
                part._log = None

    def run(self, stop: threading.Event, duration: float | None = None,
            tick: Callable[[], None] | None = None, interval: float = 0.5) -> None:
        """Supervise until ``stop`` is set or ``duration`` seconds pass; always stops children."""
        end = time.monotonic() + duration if duration else None
        self.start()
        try:
            while not stop.is_set():
                if end is not None and time.monotonic() >= end:
                    break
                self.poll()
                if tick is not None:
                    tick()
                stop.wait(interval)
        finally:
            self.stop()

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [{"name": p.name, "state": p.state, "pid": p.pid,
                 "uptime": round(p.uptime(now), 1), "restarts": p.restarts,
                 "last_exit": p.last_exit} for p in self.parts]


def tray_possible() -> bool:
    """A desktop to show an icon on and pystray to show it (the [tray] extra)."""
    desktop = platform.system() in ("Darwin", "Windows") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return desktop and importlib.util.find_spec("pystray") is not None


def observe_parts(data_dir: Path, *, host: str, port: int,
                  record_args: list[str] | None = None,
                  analyze_args: list[str] | None = None,
                  python: str | None = None, tray: bool = False) -> list[Part]:
    """The children of `observe`, sharing one data dir: record, analyze, serve and, with
    ``tray`` where a tray is possible, the icon (its Quit stops observe: this process)."""
    if sys.platform == "win32":
        raise UsageError("observe's supervisor needs POSIX process groups and signals, which "
                         "Windows does not have",
                         "run `localvideo record`, `localvideo analyze --follow` and "
                         "`localvideo serve` in three terminals")
    base = [python or sys.executable, "-m", "localvideo"]
    dd = ["--data-dir", str(data_dir)]
    if not port_free(host, port):
        raise UsageError(f"port {port} on {host} is already in use (another localvideo "
                         "serve or observe?)", f"pass --port {port + 1}, or stop the other one")
    parts = [
        Part("record", [*base, "record", *dd, *(record_args or [])]),
        Part("analyze", [*base, "analyze", "--follow", *dd, *(analyze_args or [])]),
        Part("serve", [*base, "serve", *dd, "--host", host, "--port", str(port)]),
    ]
    if tray and tray_possible():
        parts.append(Part("tray", [*base, "tray", *dd, "--quit-pid", str(os.getpid())],
                          restart=False))
    return parts
