"""A real headless sway for tests, run as an unprivileged user, with real foot windows.

sway refuses to start as root ("Unable to drop root"), so under root (CI) it runs as the
user ``lvtest`` that scripts/setup.sh creates, through ``runuser``; as any other user it
runs as that user. The code under test may stay root: root reaches the user's Wayland
socket and sway IPC socket by absolute path (WAYLAND_DISPLAY may be one).

Every process started here — sway, its dbus-daemon and Xwayland, each foot — carries this
session's private XDG_RUNTIME_DIR in its environment; ``stop()`` ends each of them by pid.
Nothing is skipped: a sway that cannot start fails the test with its own log.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from localvideo.capture.sway import SwayIPC
from localvideo.supervise import stop_processes

USER = "lvtest"
SETUP_HINT = "run the README's test command (scripts/test.sh → scripts/setup.sh test)"


def need(program: str) -> str:
    path = shutil.which(program)
    if not path:
        pytest.fail(f"{program} is not installed; {SETUP_HINT}, which installs it")
    return path




class SwaySession:
    """``WLR_BACKENDS=headless`` sway (pixman renderer, no GPU) with Xwayland on demand."""

    def __init__(self, width: int = 1280, height: int = 720, xwayland: bool = True) -> None:
        for p in ("sway", "dbus-run-session", "foot", "grim", *(("xhost",) if xwayland else ())):
            need(p)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.pw = pwd.getpwnam(USER)
            except KeyError:
                pytest.fail(f"sway refuses to run as root and the test user {USER!r} does not "
                            f"exist; {SETUP_HINT}, which creates it (useradd)")
        else:
            self.pw = pwd.getpwuid(os.geteuid())
        self.rt = Path(tempfile.mkdtemp(prefix="lvsway-"))
        os.chmod(self.rt, 0o700)
        self.log = self.rt / "sway.log"
        self.display_file = self.rt / "xdisplay"
        cfg = self.rt / "sway.cfg"
        lines = [f"output HEADLESS-1 resolution {width}x{height}", "default_border none",
                 "focus_follows_mouse no"]
        if xwayland:
            # sway exports DISPLAY to what it execs: that is how the test learns it.
            # Xwayland admits only its own user: the recorder under test may be root.
            lines += ["xwayland force",
                      f"exec sh -c 'xhost +si:localuser:root >/dev/null 2>&1; "
                      f"echo $DISPLAY > {self.display_file}'"]
        else:
            lines.append("xwayland disable")
        cfg.write_text("\n".join(lines) + "\n")
        if self.as_root:
            for p in (self.rt, cfg):
                os.chown(p, self.pw.pw_uid, self.pw.pw_gid)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.pw.pw_dir,
                         "USER": self.pw.pw_name, "XDG_RUNTIME_DIR": str(self.rt),
                         "LANG": "C.UTF-8"}
        env = {**self.base_env, "WLR_BACKENDS": "headless", "WLR_LIBINPUT_NO_DEVICES": "1",
               "WLR_RENDERER": "pixman"}
        self.sway = self._spawn(["dbus-run-session", "--", "sway", "-c", str(cfg)], env,
                                open(self.log, "wb"))  # noqa: SIM115 - the child keeps it
        try:
            self.wayland = wait_for(self._wayland_socket, 20, "sway's Wayland socket",
                                    self.tail)
            self.swaysock = wait_for(self._ipc_socket, 10, "sway's IPC socket", self.tail)
            ipc = SwayIPC(self.swaysock)
            try:
                assert ipc.message(7)["variant"] == "sway"
            finally:
                ipc.close()
            self.xdisplay = ""
            if xwayland:
                self.xdisplay = wait_for(
                    lambda: self.display_file.exists() and self.display_file.read_text().strip(),
                    20, "sway's Xwayland DISPLAY", self.tail)
                xsock = Path(f"/tmp/.X11-unix/X{self.xdisplay.lstrip(':')}")
                wait_for(xsock.exists, 20, f"Xwayland's socket {xsock}", self.tail)
        except BaseException:
            self.stop()
            raise

    # -- processes -------------------------------------------------------------------------
    def _spawn(self, argv: list[str], env: dict[str, str], out: Any = None
               ) -> subprocess.Popen[bytes]:
        if self.as_root:
            argv = ["runuser", "-u", USER, "--", "env", "-i",
                    *(f"{k}={v}" for k, v in env.items()), *argv]
            env = {}
        # cwd "/": the checkout may sit in a 0700 folder (mktemp -d, as CI clones) that
        # lvtest cannot enter, and foot then exits before it opens a window.
        proc = subprocess.Popen(argv, env=env or None, stdin=subprocess.DEVNULL,
                                stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd="/")
        self.procs.append(proc)
        return proc

    def _wayland_socket(self) -> str | None:
        if self.sway.poll() is not None:
            pytest.fail(f"sway exited ({self.sway.returncode}) before its socket appeared\n"
                        f"{self.tail()}")
        found = sorted(p for p in self.rt.glob("wayland-*") if not p.name.endswith(".lock"))
        return str(found[0]) if found else None

    def _ipc_socket(self) -> str | None:
        found = list(self.rt.glob("sway-ipc.*.sock"))
        return str(found[0]) if found else None

    def tail(self) -> str:
        try:
            return "sway log:\n" + "\n".join(self.log.read_text(errors="replace")
                                             .splitlines()[-25:])
        except OSError:
            return "(no sway log)"

    def env(self, display: bool = False) -> dict[str, str]:
        """What a client (the recorder) needs: only WAYLAND_DISPLAY and SWAYSOCK, as
        absolute paths; DISPLAY (sway's Xwayland) only when asked for."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SWAYSOCK", "I3SOCK",
                            "HYPRLAND_INSTANCE_SIGNATURE", "XDG_CURRENT_DESKTOP")}
        env["WAYLAND_DISPLAY"], env["SWAYSOCK"] = self.wayland, self.swaysock
        if display:
            env["DISPLAY"] = self.xdisplay
        return env

    def ipc(self) -> SwayIPC:
        return SwayIPC(self.swaysock)

    def swaymsg(self, command: str) -> Any:
        ipc = self.ipc()
        try:
            return ipc.message(0, command)     # RUN_COMMAND
        finally:
            ipc.close()

    # -- windows ---------------------------------------------------------------------------
    def foot(self, title: str, text: str, app_id: str = "lvfoot", size: int = 22,
             script: str | None = None) -> int:
        """A native Wayland terminal showing ``text`` in black on white (or running
        ``script``); returns its con id once sway has focused it."""
        script = script or f"printf '%s\\n' '{text}'; exec sleep 100000"
        self._spawn(["foot", "-T", title, "-a", app_id, "-f", f"DejaVu Sans Mono:size={size}",
                     "-o", "colors.background=ffffff", "-o", "colors.foreground=000000",
                     "-o", "main.locked-title=yes", "sh", "-c", script],
                    {**self.base_env, "WAYLAND_DISPLAY": Path(self.wayland).name})

        def focused() -> int | None:
            ipc = self.ipc()
            try:
                fw = ipc.active()
            finally:
                ipc.close()
            return fw.info.window_id if fw and fw.info.title == title else None

        con: int = wait_for(focused, 20, f"foot window {title!r} focused", self.tail)
        time.sleep(0.4)                   # its first frame with the text is drawn by now
        return con

    def type(self, text: str) -> None:
        """Type ``text`` into the focused window (wtype: a virtual keyboard)."""
        need("wtype")
        p = self._spawn(["wtype", text], {**self.base_env,
                                          "WAYLAND_DISPLAY": Path(self.wayland).name})
        if p.wait(10) != 0:
            pytest.fail(f"wtype exited {p.returncode}")

    def stop(self) -> None:
        # The project's one TERM → wait → KILL escalation, newest process first.
        stop_processes(list(reversed(self.procs)), sig=signal.SIGTERM, timeout=5)
        # Xwayland and the session bus may have left the process group: find them by the
        # private runtime dir in their environment, and end each by pid.
        for pid in self._stragglers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.rt, ignore_errors=True)

    def _stragglers(self) -> list[int]:
        marker = b"\0" + f"XDG_RUNTIME_DIR={self.rt}".encode() + b"\0"
        found = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid():
                try:
                    if marker in b"\0" + (d / "environ").read_bytes() + b"\0":
                        found.append(int(d.name))
                except OSError:
                    continue
        return found
