"""A private virtual screen with a small scripted demo, for `--virtual-display`.

It lets `record` and `observe` show the whole path (capture → chunks → OCR → timeline) on a
machine with no desktop: a private Xvfb, openbox so there is a real active window, and two
xterms whose text changes over time (a clock, and notes "typed" line by line), with focus
switching between them every ``switch_every`` seconds.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from types import TracebackType

from ..errors import CaptureError, DependencyError
from ..supervise import stop_processes

_APT = "sudo apt-get install xvfb openbox xterm xdotool"

_CLOCK = ("while :; do printf '\\033[2J\\033[H'; echo 'localvideo demo clock'; echo; "
          "date '+%Y-%m-%d %H:%M:%S'; echo; uptime; sleep 1; done")

_NOTES_LINES = [
    "localvideo demo: this window is recorded from a virtual display",
    "TODO: review the timeline at http://127.0.0.1:8765",
    "error: build failed in step 3 (demo text for the analyzer)",
    "meeting notes: ship the capture backend on Friday",
    "localvideo demo: focus moves to the clock window every few seconds",
]


def _notes_script(lines: list[str], pause: float) -> str:
    # Each line appears a few characters at a time so consecutive frames differ like typing.
    quoted = " ".join("'" + s.replace("'", "'\\''") + "'" for s in lines)
    return ("n=0; while :; do for line in " + quoted + "; do n=$((n+1)); "
            "printf '%d> ' \"$n\"; rest=\"$line\"; "
            "while [ -n \"$rest\" ]; do chunk=$(printf '%s' \"$rest\" | cut -c1-8); "
            "rest=$(printf '%s' \"$rest\" | cut -c9-); printf '%s' \"$chunk\"; sleep 0.25; done; "
            f"echo; sleep {pause}; done; done")


def _die_with_parent() -> None:
    """Runs in each child before exec: SIGTERM it when the starting thread dies.

    A recorder killed with SIGKILL runs no cleanup; without this its Xvfb would outlive it.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # not Linux: stop() is the only cleanup


class VirtualDisplay:
    """Context manager: a private X display with a demo desktop; DISPLAY points at it inside.

    Every child is stopped on exit, also when the body raises, and also (Linux) when this
    process is killed outright. Start and stop it from one thread: the children are tied to
    the thread that started them.
    """

    def __init__(self, width: int = 1920, height: int = 1080, *, demo: bool = True,
                 switch_every: float = 10.0, start_timeout: float = 15.0) -> None:
        self.width, self.height = width, height
        self.demo = demo
        self.switch_every = switch_every
        self.start_timeout = start_timeout
        self.name = ""
        self.windows: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._switcher: threading.Thread | None = None
        self._old_display: str | None = None
        self._active = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> VirtualDisplay:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.name}

    @property
    def pids(self) -> list[int]:
        """Process ids of the children started here (Xvfb, openbox, xterms)."""
        return [p.pid for p in self._procs]

    def start(self) -> None:
        needed = ["Xvfb", "openbox"] + (["xterm", "xdotool"] if self.demo else [])
        missing = [p for p in needed if shutil.which(p) is None]
        if missing:
            raise DependencyError(f"--virtual-display needs {', '.join(missing)}, "
                                  "which is not installed", hint=f"run `{_APT}`")
        try:
            self._start_xvfb()
            self._old_display = os.environ.get("DISPLAY")
            os.environ["DISPLAY"] = self.name
            self._active = True
            self._spawn(["openbox"])
            self._wait(self._wm_ready, "openbox did not start")
            if self.demo:
                self._start_demo()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._stop.set()
        if self._switcher is not None:
            self._switcher.join(timeout=5)
            self._switcher = None
        # Windows first, then the manager, then the server: each exits cleanly that way.
        # SIGTERM to each one's own session: reaches its shell too.
        stop_processes(list(reversed(self._procs)), sig=signal.SIGTERM, timeout=5)
        self._procs.clear()
        self.windows.clear()
        if self._active:
            if self._old_display is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = self._old_display
            self._active = False

    # -- pieces ----------------------------------------------------------------------------

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=_die_with_parent)
        self._procs.append(p)
        return p

    def _start_xvfb(self) -> None:
        # -displayfd: the server picks a free display number and writes it to us, so two
        # virtual displays (or a real one) never race for the same number.
        r, w = os.pipe()
        try:
            p = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-screen", "0",
                 f"{self.width}x{self.height}x24", "-nolisten", "tcp", "-noreset"],
                pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent)
            self._procs.append(p)
        finally:
            os.close(w)
        with os.fdopen(r) as f:
            ready, _, _ = select.select([f], [], [], self.start_timeout)
            num = f.readline().strip() if ready else ""
        if not num.isdigit():
            raise CaptureError("the virtual display (Xvfb) did not start",
                               hint=f"try `Xvfb -displayfd 1` by hand to see why, or reinstall: "
                                    f"`{_APT}`")
        self.name = f":{num}"

    def _wm_ready(self) -> bool:
        from Xlib import display as xdisplay

        try:
            d = xdisplay.Display(self.name)
        except Exception:  # noqa: BLE001 - any failure here just means "not yet"
            return False
        try:
            atom = d.intern_atom("_NET_SUPPORTING_WM_CHECK")
            return d.screen().root.get_full_property(atom, 0) is not None
        finally:
            d.close()

    def _wait(self, cond: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.05)
        raise CaptureError(f"{what} within {self.start_timeout:.0f} s",
                           hint=f"check the install: `{_APT}`")

    def _xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, timeout=10).stdout.strip()

    def _xterm(self, title: str, geometry: str, script: str) -> int:
        self._spawn(["xterm", "-T", title, "-class", "LocalvideoDemo", "-geometry", geometry,
                     "-fa", "DejaVu Sans Mono", "-fs", "16", "-bg", "white", "-fg", "black",
                     "-e", "sh", "-c", script])
        found: list[int] = []

        def mapped() -> bool:
            out = self._xdotool("search", "--onlyvisible", "--name", f"^{title}$")
            found[:] = [int(x) for x in out.split()]
            return bool(found)

        self._wait(mapped, f"the demo window {title!r} did not appear")
        return found[0]

    def _start_demo(self) -> None:
        self.windows.append(self._xterm("localvideo demo - clock", "60x12+80+80", _CLOCK))
        self.windows.append(self._xterm("localvideo demo - notes", "90x24+700+300",
                                        _notes_script(_NOTES_LINES, 2.0)))
        self._xdotool("windowactivate", "--sync", str(self.windows[-1]))
        if self.switch_every > 0:
            self._switcher = threading.Thread(target=self._switch_focus, daemon=True,
                                              name="localvideo-virtual-focus")
            self._switcher.start()

    def _switch_focus(self) -> None:
        i = 0
        while not self._stop.wait(self.switch_every):
            try:
                self._xdotool("windowactivate", str(self.windows[i % len(self.windows)]))
            except (subprocess.SubprocessError, OSError, IndexError):
                return   # the display is going away
            i += 1
