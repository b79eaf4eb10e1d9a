"""The tray / menu-bar icon: recording you can see (pystray), thin over the service.

One icon whose picture says what the recorder is doing — recording (a red dot), paused (two
amber bars), excluded (a grey dot struck through: the active window is excluded for privacy,
nothing of it is stored) or failing (a black dot with a red ring: the recorder is not
running, the capture is blind or stalled, or the disk is full) — and whose menu pauses or
resumes, opens the UI and quits ``observe``. ``observe`` starts it as one of its parts when
there is a desktop; ``localvideo tray`` runs it alone.

pystray picks the platform's own mechanism: AppIndicator / GTK / XEmbed on Linux, the menu
bar on macOS, the notification area on Windows. Its plain-X11 (XEmbed) backend has no menus:
there a click on the icon runs the default item, pause/resume.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import webbrowser
from typing import Any, Literal

from PIL import Image, ImageDraw

from .errors import DependencyError, LocalVideoError, NotFoundError
from .service import Service

log = logging.getLogger("localvideo.tray")

TrayState = Literal["recording", "paused", "excluded", "failing"]

# The colours a screenshot test looks for: one per state, distinct from a tray's background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "recording": (220, 30, 30), "paused": (240, 170, 0), "excluded": (128, 128, 128),
    "failing": (20, 20, 20),
}
TITLES = {"recording": "localvideo: recording", "paused": "localvideo: paused",
          "excluded": "localvideo: excluded window (not stored)",
          "failing": "localvideo: not recording"}


def icon_image(state: str, size: int = 64) -> Image.Image:
    """The icon's picture for ``state`` (drawn, so no image files ship with the package)."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    c = COLOURS[state]
    m = size // 8
    if state == "paused":
        w = size // 4
        d.rectangle((m + 2, m, m + 2 + w, size - m), fill=c)
        d.rectangle((size - m - 2 - w, m, size - m - 2, size - m), fill=c)
    else:
        d.ellipse((m, m, size - m, size - m), fill=c)
        if state == "excluded":
            d.line((m + 4, size - m - 4, size - m - 4, m + 4), fill=(255, 255, 255), width=size // 10)
        elif state == "failing":
            d.ellipse((m, m, size - m, size - m), outline=(220, 30, 30), width=size // 12)
    return im


def current_state(svc: Service) -> tuple[TrayState, str]:
    """What the icon shows now, and one line saying why (the icon's tooltip)."""
    rec = svc.record.state()
    r = rec.recorder
    if rec.paused:
        return "paused", TITLES["paused"]
    if not r.running:
        return "failing", f"{TITLES['failing']}: the recorder is not running" + (
            f" ({r.last_error})" if r.last_error else "")
    if r.disk_paused:
        return "failing", f"{TITLES['failing']}: {r.message or 'the disk is full'}"
    if r.health is not None and r.health.state in ("blank", "stalled", "failing"):
        return "failing", f"{TITLES['failing']}: {r.health.message or r.health.state}"
    try:
        if svc.record.frame_info(time.time()).excluded:
            return "excluded", TITLES["excluded"]
    except (NotFoundError, LocalVideoError):
        pass
    return "recording", TITLES["recording"]


class Tray:
    """The icon and a thread that keeps its picture in step with the recorder."""

    def __init__(self, svc: Service, url: str, *, poll: float = 1.0,
                 quit_pid: int | None = None) -> None:
        self.svc = svc
        self.url = url
        self.poll = poll
        self.quit_pid = quit_pid      # observe's pid: Quit stops it (and so every part)
        self.state: TrayState = "failing"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.icon: Any = None

    # -- menu actions ------------------------------------------------------------------
    def toggle(self, *_: Any) -> None:
        with self._lock:
            if self.svc.record.state().paused:
                self.svc.record.resume()
            else:
                self.svc.record.pause()
        self.refresh()

    def open_ui(self, *_: Any) -> None:
        webbrowser.open(self.url)

    def quit(self, *_: Any) -> None:
        self._stop.set()
        if self.quit_pid:
            try:
                os.kill(self.quit_pid, signal.SIGINT)
            except OSError:
                pass
        if self.icon is not None:
            self.icon.stop()

    # -- state --------------------------------------------------------------------------
    def refresh(self) -> None:
        try:
            state, title = current_state(self.svc)
        except LocalVideoError as exc:      # locked store, index busy: say so, keep going
            state, title = "failing", f"{TITLES['failing']}: {exc.message}"
        if self.icon is not None and (state != self.state or self.icon.title != title):
            self.icon.icon = icon_image(state)
            self.icon.title = title
        self.state = state

    def _watch(self, icon: Any) -> None:
        icon.visible = True
        _listen_for_clicks(icon)
        while not self._stop.is_set():
            _dock_when_a_tray_appears(icon)
            self.refresh()
            self._stop.wait(self.poll)

    def run(self) -> None:
        """Show the icon until Quit (or SIGINT/SIGTERM); blocks in the GUI loop."""
        try:
            import pystray
        except ImportError as exc:
            raise DependencyError("the tray icon needs pystray",
                                  "pip install 'localvideo[tray]'") from exc
        except Exception as exc:  # pystray connects to the display on import
            raise DependencyError(f"no tray here: {exc}",
                                  "run it in a desktop session (DISPLAY / WAYLAND_DISPLAY)") from exc
        self.state, title = current_state(self.svc)
        menu = pystray.Menu(
            pystray.MenuItem(lambda _: "Resume" if self.state == "paused" else "Pause",
                             self.toggle, default=True),
            pystray.MenuItem("Open the UI", self.open_ui),
            pystray.MenuItem("Quit", self.quit))
        self.icon = pystray.Icon("localvideo", icon_image(self.state), title, menu)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.quit())
        self.icon.run(setup=lambda icon: threading.Thread(
            target=self._watch, args=(icon,), daemon=True, name="tray-watch").start())


def _listen_for_clicks(icon: Any) -> None:
    """pystray 0.19.5's plain-X11 backend handles ButtonPress but never asks the X server for
    it (its window selects only Exposure and StructureNotify), so a click on the icon in an
    XEmbed tray went to the tray itself. Select it on the icon's window."""
    window, display = getattr(icon, "_window", None), getattr(icon, "_display", None)
    if window is None or display is None or not hasattr(window, "change_attributes"):
        return                          # another backend: it handles clicks itself
    try:
        from Xlib import X

        window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask
                                 | X.ButtonPressMask)
        display.flush()
    except Exception as exc:  # python-xlib raises its own error types
        log.warning("cannot listen for clicks on the tray icon: %s", exc)


def _dock_when_a_tray_appears(icon: Any) -> None:
    """pystray 0.19.5's plain-X11 backend docks once, when the icon is shown: with no tray
    host running then (a panel that starts after us at login, a tray restarted by the user)
    it logs "Failed to dock icon" and never tries again, so the icon stayed invisible for the
    whole session. Ask the tray host again on every poll until one takes the icon."""
    if getattr(icon, "_systray_manager", True) is not None or not hasattr(icon, "_dock_window"):
        return                          # docked already, or another backend
    try:
        icon._dock_window()
    except Exception as exc:  # python-xlib raises its own error types
        log.debug("no tray host to dock in yet: %s", exc)


__all__ = ["COLOURS", "Tray", "current_state", "icon_image"]
