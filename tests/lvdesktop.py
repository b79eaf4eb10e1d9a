"""A real X display for tests: Xvfb with openbox, and real xterm windows placed with xdotool.

Kept out of conftest.py so test modules can import it by a unique name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest


def _need(program: str) -> str:
    path = shutil.which(program)
    if not path:
        pytest.fail(f"{program} is not installed; run the README's test command "
                    f"(scripts/test.sh), which installs it")
    return path


class XDisplay:
    """A private Xvfb (1920×1080) with openbox, and helpers to open real windows on it."""

    def __init__(self, width: int = 1920, height: int = 1080, wm: bool = True) -> None:
        _need("Xvfb")
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            num = f.readline().strip()
        if not num:
            raise RuntimeError("Xvfb did not start")
        self.name = f":{num}"
        self.env = {**os.environ, "DISPLAY": self.name}
        self.wm: subprocess.Popen[bytes] | None = None
        self.windows: list[subprocess.Popen[bytes]] = []
        if wm:
            self.wm = subprocess.Popen(["openbox"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait_for(lambda: self._xprop_root("_NET_SUPPORTING_WM_CHECK"), 10)

    def _xprop_root(self, atom: str) -> bool:
        out = subprocess.run(["xprop", "-root", atom], env=self.env, capture_output=True,
                             text=True).stdout
        return "window id #" in out

    @staticmethod
    def _wait_for(cond, timeout: float) -> None:  # type: ignore[no-untyped-def]
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            time.sleep(0.05)
        raise TimeoutError("condition not met")

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True, check=True).stdout.strip()

    def xterm(self, title: str, text: str = "", *, geometry: str = "80x24+100+100",
              app_class: str = "XTerm", font_size: int = 14, hold: bool = True) -> int:
        """Open a real xterm showing ``text``; return its X window id once mapped."""
        _need("xterm")
        script = f"printf '%s\\n' {_shq(text)}; exec sleep 100000" if hold else "exec sh"
        proc = subprocess.Popen(
            ["xterm", "-T", title, "-class", app_class, "-geometry", geometry,
             "-fa", "DejaVu Sans Mono", "-fs", str(font_size), "-bg", "white", "-fg", "black",
             "-e", "sh", "-c", script],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.windows.append(proc)
        wid = ""
        end = time.time() + 15
        while time.time() < end and not wid:
            try:
                wid = self.xdotool("search", "--sync", "--name", f"^{title}$").split()[0]
            except (subprocess.CalledProcessError, IndexError):
                time.sleep(0.1)
        if not wid:
            raise TimeoutError(f"xterm {title!r} did not appear")
        self.activate(int(wid))
        return int(wid)

    def activate(self, wid: int) -> None:
        subprocess.run(["xdotool", "windowactivate", "--sync", str(wid)], env=self.env,
                       capture_output=True, timeout=10)
        time.sleep(0.15)

    def close_windows(self) -> None:
        for p in self.windows:
            p.terminate()
        for p in self.windows:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.windows.clear()

    def set_resources(self, text: str | None) -> None:
        """Replace the X resources (RESOURCE_MANAGER on the root) as a desktop's settings
        daemon does, through `xrdb`; None removes them."""
        args = ["-remove"] if text is None else ["-load", "-"]
        subprocess.run([_need("xrdb"), "-nocpp", *args], input=text or "", text=True,
                       env=self.env, check=True, timeout=10)

    def stop(self) -> None:
        self.close_windows()
        for p in (self.wm, self.xvfb):
            if p is not None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


def content_rect(env: dict[str, str], wid: int) -> tuple[int, int, int, int]:
    """Where X itself says the window's content is (xwininfo, independent of the code under
    test): x, y of its first pixel inside the border, width, height."""
    out = subprocess.run(["xwininfo", "-id", str(wid)], env=env, capture_output=True,
                         text=True, check=True).stdout

    def num(label: str) -> int:
        m = re.search(rf"{label}:\s+(-?\d+)", out)
        assert m, out
        return int(m.group(1))

    # xwininfo's origin is the outside of the X border; the pixels start inside it.
    border = num("Border width")
    return (num("Absolute upper-left X") + border, num("Absolute upper-left Y") + border,
            num("Width"), num("Height"))


def _shq(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"
