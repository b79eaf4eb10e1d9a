"""Which window is in front on Hyprland: ``hyprctl activewindow -j`` and ``hyprctl monitors -j``.

Hyprland reports window positions (``at``, ``size``) and monitor positions (``x``, ``y``) in
logical layout pixels, but a monitor's ``width``/``height`` in its real mode pixels, so the
logical size is ``width / scale``. The monitor list changes rarely and is re-read only when
a window names a monitor id it does not have.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from ..errors import CaptureError, DependencyError
from .base import WindowInfo
from .sway import FocusedWindow, Output


class Hyprctl:
    def __init__(self, program: str | None = None, timeout: float = 2.0) -> None:
        found = program or shutil.which("hyprctl")
        if not found:
            raise DependencyError("Hyprland's `hyprctl` is not on PATH, so the window in front "
                                  "cannot be asked for",
                                  hint="run localvideo inside the Hyprland session (hyprctl "
                                       "ships with Hyprland), or use `--mode display`")
        self.program = found
        self.timeout = timeout
        self._monitors: dict[int, Output] = {}
        self._order: list[Output] = []

    def _json(self, *args: str) -> Any:
        try:
            out = subprocess.run([self.program, *args, "-j"], capture_output=True, text=True,
                                 timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CaptureError(f"`hyprctl {' '.join(args)} -j` failed: {exc}",
                               hint="is Hyprland still running?") from exc
        if out.returncode != 0:
            raise CaptureError(f"`hyprctl {' '.join(args)} -j` exited {out.returncode}: "
                               f"{(out.stderr or out.stdout).strip()[:200]}",
                               hint="HYPRLAND_INSTANCE_SIGNATURE must name the running session")
        text = out.stdout.strip()
        try:
            return json.loads(text) if text else {}
        except ValueError as exc:
            # Hyprland answers "Invalid" (not JSON) to some requests when nothing is focused.
            if "invalid" in text.lower() or "no window" in text.lower():
                return {}
            raise CaptureError(f"`hyprctl {' '.join(args)} -j` printed no JSON: {text[:120]!r}",
                               hint="update Hyprland; localvideo reads hyprctl's -j output") \
                from exc

    def _load_monitors(self) -> None:
        self._monitors.clear()
        self._order.clear()
        for m in self._json("monitors"):
            scale = float(m.get("scale") or 1.0)
            out = Output(str(m.get("name", "")), int(m.get("x", 0)), int(m.get("y", 0)),
                         round(int(m.get("width", 0)) / scale),
                         round(int(m.get("height", 0)) / scale), scale)
            self._monitors[int(m.get("id", len(self._order)))] = out
            self._order.append(out)

    def outputs(self) -> list[Output]:
        if not self._order:
            self._load_monitors()
        return list(self._order)

    def active(self) -> FocusedWindow | None:
        w = self._json("activewindow")
        if not isinstance(w, dict) or not w.get("address") or not w.get("mapped", True) \
                or w.get("hidden"):
            return None
        at, size = w.get("at") or [0, 0], w.get("size") or [0, 0]
        pid = w.get("pid")
        address = str(w.get("address", "0"))
        info = WindowInfo(app=str(w.get("class") or w.get("initialClass") or ""),
                          title=str(w.get("title") or ""), x=int(at[0]), y=int(at[1]),
                          w=int(size[0]), h=int(size[1]),
                          pid=int(pid) if isinstance(pid, int) and pid > 0 else None,
                          window_id=int(address, 16) if address.startswith("0x") else None)
        mon = w.get("monitor")
        if isinstance(mon, int) and mon not in self._monitors:
            self._load_monitors()
        return FocusedWindow(info, self._monitors.get(mon) if isinstance(mon, int) else None)

    def close(self) -> None:
        """Nothing held open: every question is one hyprctl run."""
