"""X11 capture: mss (XShmGetImage) for pixels, python-xlib for which window is in front.

Finding the window, cheapest first:

1. ``_NET_ACTIVE_WINDOW`` on the root window (any EWMH window manager sets it; ~1 ms).
2. No EWMH manager: ``get_input_focus``; when focus is PointerRoot/None/the root itself,
   ``query_pointer`` names the top-level window under the pointer.
3. Steps 2 can land on a child widget or a frame, so walk up to the nearest window with
   ``WM_CLASS`` and, failing that, down from the top-level to the client that has it.

The content rectangle comes from ``translate_coords`` of the client window to the root,
which excludes the manager's decoration (``xdotool getwindowgeometry`` includes it).

Each python-xlib request is a round trip and ~0.2 ms of Python, and the recorder asks ~5 of
them per frame. Two of the answers change rarely and X announces every change: the active
window (``_NET_ACTIVE_WINDOW`` on the root) and the window's title (``_NET_WM_NAME`` /
``WM_NAME``). The backend listens for PropertyNotify on the root and on the active window and
asks again only after one arrived; the server sends it for every ChangeProperty, so a cached
answer is never older than the events already delivered. Position, size and map state are
asked every frame: a window manager moving a frame tells the client only by convention.

Pixels: mss reads the window into a shared-memory segment (XShmGetImage: the X server
copies, not this process) and then copies it again into a fresh bytearray per grab — 1.1 ms
of CPU and 8 MB per 1080p frame, 33 MB at 4K. A caller that asks ``share_pixels()`` (the
recorder) gets a read-only view of that segment instead (0.08 ms measured); this reads mss's
segment through the same XCB call mss makes, and falls back to mss's copying grab whenever
those internals are not what this code expects (another mss version) or the call fails.

The display's scale (pixels per point) is ``Xft.dpi`` / 96 from the root's
``RESOURCE_MANAGER`` — what GNOME, KDE, Xfce and ``xrdb`` set for HiDPI — so a 4K screen at
200 % is recorded on a canvas sized for its text (record/canvas.py), not at 3840 px.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import mss
import numpy as np
from mss.exception import ScreenShotError
from Xlib import X, Xatom
from Xlib import display as xdisplay
from Xlib import error as xerror
from Xlib.xobject.drawable import Window

from ..errors import CaptureError, NoDisplayError, UsageError
from .base import (
    CaptureBackend,
    Frame,
    WindowInfo,
    check_display_exists,
    clip_to_screen,
    window_extra,
)
from .registry import check_display, check_mode

T = TypeVar("T")
log = logging.getLogger(__name__)

# X errors that mean "that window went away or changed under us": pass, try again later.
_GONE = (xerror.BadWindow, xerror.BadDrawable, xerror.BadMatch, xerror.BadValue)
_LOST = (xerror.ConnectionClosedError, ConnectionError, BrokenPipeError, OSError)


TITLE_WORDS = 256    # a window title of up to 1 KB arrives in one request

# Xft.dpi at 100 % scaling; the resources list is read in one request up to this many words.
BASE_DPI = 96.0
RESOURCE_WORDS = 16384


class _SharedSegment:
    """mss's MIT-SHM segment, read in place: ``grab`` returns a view of it (see the module
    docstring). Built only from an mss object whose shared-memory path has already worked;
    raises LookupError when its internals are not the ones this was written against."""

    def __init__(self, sct: Any) -> None:
        from mss.linux import xcb
        from mss.linux.base import ALL_PLANES

        impl = getattr(sct, "_impl", sct)
        status = getattr(getattr(impl, "shm_status", None), "name", "")
        buf, seg = getattr(impl, "_buf", None), getattr(impl, "_shmseg", None)
        if status != "AVAILABLE" or buf is None or seg is None or not hasattr(xcb, "shm_get_image"):
            raise LookupError("mss's shared-memory segment is not available")
        self._xcb, self._planes, self._impl, self._seg = xcb, ALL_PLANES, impl, seg
        self.view = np.frombuffer(buf, np.uint8)   # read-only: the mapping is PROT_READ

    def grab(self, left: int, top: int, width: int, height: int) -> np.ndarray:
        n = width * height * 4
        if n > self.view.size:
            raise LookupError("the region is larger than the segment (the screen grew)")
        impl = self._impl
        reply = self._xcb.shm_get_image(impl.conn, impl.drawable, left, top, width, height,
                                        self._planes, self._xcb.ImageFormat.ZPixmap, self._seg, 0)
        if reply.depth != impl.drawable_depth:
            raise LookupError(f"the server sent depth {reply.depth}")
        return self.view[:n].reshape(height, width, 4)


def _close_mss(sct: Any) -> None:
    """Close an mss object even while a frame still holds a view of its segment: the
    mapping then stays until the last view is gone (mmap refuses to close under an exported
    buffer), and the X connection is closed all the same."""
    try:
        sct.close()
    except BufferError:
        impl = getattr(sct, "_impl", sct)
        impl._buf = None       # leave the mapping to the views that hold it
        sct.close()


def _quiet(*_: object) -> None:
    """onerror for requests without a reply about a window that may have closed."""


def scale_from_resources(resources: str) -> float:
    """Pixels per point from an X resources string (``RESOURCE_MANAGER``): ``Xft.dpi`` / 96,
    1.0 when it is missing, unreadable or below 96 (a display never records below its size)."""
    for line in resources.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "Xft.dpi":
            try:
                dpi = float(value.strip())
            except ValueError:
                return 1.0
            return max(1.0, dpi / BASE_DPI) if math.isfinite(dpi) else 1.0
    return 1.0


def _open_mss(display_name: str) -> Any:
    # mss 10.x prefers mss.MSS (mss.mss() warns); 9.x only has mss.mss. Both default to the
    # XShmGetImage path on Linux in 10.x.
    factory = getattr(mss, "MSS", None) or mss.mss
    return factory(display=display_name)


class X11Backend(CaptureBackend):
    name = "x11"

    def __init__(self, mode: str = "active-window", display: str = "1",
                 display_name: str | None = None) -> None:
        mode, display = check_mode(mode), check_display(display)
        super().__init__(mode=mode, display=display)
        self.display_name = display_name or os.environ.get("DISPLAY", "")
        try:
            self._xd = xdisplay.Display(self.display_name or None)
        except (xerror.DisplayError, *_LOST) as exc:
            raise NoDisplayError(f"cannot connect to the X display {self.display_name!r}: {exc}",
                                 hint="check DISPLAY (and XAUTHORITY), or run "
                                      "`localvideo record --virtual-display`") from exc
        self._root = self._xd.screen().root
        atom = self._xd.intern_atom
        self._net_active = atom("_NET_ACTIVE_WINDOW")
        self._net_wm_name = atom("_NET_WM_NAME")
        self._net_wm_pid = atom("_NET_WM_PID")
        self._utf8 = atom("UTF8_STRING")
        self._wm_state = atom("WM_STATE")
        # Answers kept until X says they changed (see the module docstring): the active
        # window's id (None: not known yet, or no EWMH manager to announce changes), the
        # titles of the windows being watched, and the display's scale.
        self._active: int | None = None
        self._active_known = False
        self._titles: dict[int, str] = {}
        self._watched: int | None = None
        self._scale: float | None = None
        self._share = False                       # share_pixels() asked, and it works
        self._segment: _SharedSegment | None = None
        self._x(lambda: self._root.change_attributes(event_mask=X.PropertyChangeMask))
        # WM_CLASS never changes for a window's lifetime; titles do, so only classes are cached.
        self._class_cache: dict[int, str] = {}
        self._pid_cache: dict[int, int | None] = {}
        try:
            self._sct = _open_mss(self.display_name)
            self._monitors = list(self._sct.monitors)
        except ScreenShotError as exc:
            self._xd.close()
            raise CaptureError(f"cannot read pixels from X display {self.display_name!r}: {exc}",
                               hint="install the X client libraries: "
                                    "`apt-get install libxcb1 libx11-6`") from exc
        try:
            check_display_exists(display, len(self._monitors) - 1, "this X screen")
        except UsageError:
            self.close()
            raise

    # -- window lookup ---------------------------------------------------------------------

    def _x(self, call: Callable[[], T]) -> T:
        """Run one X request, turning a dead connection into CaptureError."""
        try:
            return call()
        except xerror.XError:
            raise           # a protocol error about one window: the caller decides
        except _LOST as exc:
            raise CaptureError(f"lost the connection to X display {self.display_name!r}: {exc}",
                               hint="the X server stopped; start the session again, or run "
                                    "`localvideo record --virtual-display`") from exc

    def _events(self) -> None:
        """Read the PropertyNotify events X has sent (no round trip) and forget what they
        say changed. Read before any cached answer is used."""
        xd = self._xd
        while self._x(xd.pending_events):
            ev = xd.next_event()
            if ev.type != X.PropertyNotify:
                continue
            wid = ev.window.id if hasattr(ev.window, "id") else int(ev.window)
            if wid == self._root.id:
                if ev.atom == self._net_active:
                    self._active_known = False
                elif ev.atom == Xatom.RESOURCE_MANAGER:
                    self._scale = None
            elif ev.atom in (self._net_wm_name, Xatom.WM_NAME):
                self._titles.pop(wid, None)

    def _active_id(self) -> int | None:
        if self._active_known:
            return self._active
        prop = self._x(lambda: self._root.get_full_property(self._net_active, Xatom.WINDOW))
        if prop is not None and len(prop.value):
            wid = int(prop.value[0])
            # The manager announces every change of it: keep the answer until it does.
            self._active, self._active_known = wid or None, True
            return self._active   # None: the manager says nothing is active (desktop focused)
        return self._focus_fallback()   # no EWMH manager: nothing announces focus changes

    def _watch(self, w: Window) -> None:
        """Listen for property changes on ``w`` (its title) instead of the window before."""
        if self._watched == w.id:
            return
        old, self._watched = self._watched, None
        if old is not None:
            self._titles.pop(old, None)
            try:
                # No reply comes to this request: a window already closed would report
                # BadWindow later, to python-xlib's default handler (stderr), so say none.
                self._x(lambda: self._xd.create_resource_object("window", old)
                        .change_attributes(event_mask=X.NoEventMask, onerror=_quiet))
            except _GONE:
                pass      # closed: nothing to stop listening to
        # Listen first, then read: a change after the read is announced.
        self._x(lambda: w.change_attributes(event_mask=X.PropertyChangeMask, onerror=_quiet))
        self._watched = w.id

    def scale(self) -> float:
        """The display's pixels per point (``Xft.dpi`` / 96; 1 when unset)."""
        if self._scale is None:
            prop = self._x(lambda: self._root.get_full_property(
                Xatom.RESOURCE_MANAGER, Xatom.STRING, sizehint=RESOURCE_WORDS))
            text = bytes(prop.value).decode("latin-1") if prop is not None and prop.value else ""
            self._scale = scale_from_resources(text)
        return self._scale

    def _focus_fallback(self) -> int | None:
        focus = self._x(lambda: self._xd.get_input_focus()).focus
        fid = focus if isinstance(focus, int) else focus.id
        if fid in (X.NONE, X.PointerRoot) or fid == self._root.id:
            child = self._x(lambda: self._root.query_pointer()).child
            cid = child if isinstance(child, int) else child.id
            if cid in (X.NONE, X.PointerRoot):
                return None
            fid = cid
        return self._client_of(fid)

    def _client_of(self, wid: int) -> int | None:
        """The top-level client window (the one with WM_CLASS) that owns ``wid``."""
        w = self._xd.create_resource_object("window", wid)
        while True:
            if self._x(w.get_wm_class) is not None:
                return w.id
            tree = self._x(w.query_tree)
            parent = tree.parent
            pid = parent if isinstance(parent, int) else parent.id
            if pid in (X.NONE, self._root.id):
                break
            w = self._xd.create_resource_object("window", pid)
        # A top-level without WM_CLASS is a manager's frame: the client is inside it.
        pending = list(reversed(self._x(w.query_tree).children))   # topmost first
        while pending:
            c = pending.pop(0)
            if self._x(c.get_wm_class) is not None:
                return int(c.id)
            pending.extend(reversed(self._x(c.query_tree).children))
        return None

    def _title(self, w: Window) -> str:
        title = self._titles.get(w.id)
        if title is None:
            self._watch(w)
            title = self._titles[w.id] = self._read_title(w)
        return title

    def _read_title(self, w: Window) -> str:
        # sizehint in 32-bit units: python-xlib's default (10) fetches 40 bytes and asks again
        # for the rest, so a browser tab's title cost two round trips on every grab.
        prop = self._x(lambda: w.get_full_property(self._net_wm_name, self._utf8,
                                                   sizehint=TITLE_WORDS))
        if prop is not None and prop.value:
            return bytes(prop.value).decode("utf-8", "replace")
        prop = self._x(lambda: w.get_full_property(Xatom.WM_NAME, X.AnyPropertyType,
                                                   sizehint=TITLE_WORDS))
        if prop is None or not prop.value:
            return ""
        raw = bytes(prop.value)
        # STRING is Latin-1 by definition, yet many tools (xdotool among them) store UTF-8 in
        # it; text that decodes as UTF-8 almost never was meant as Latin-1.
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def _app(self, w: Window) -> str:
        app = self._class_cache.get(w.id)
        if app is None:
            cls = self._x(w.get_wm_class)
            app = (cls[1] or cls[0]) if cls else ""
            if len(self._class_cache) > 512:
                self._class_cache.clear()
            self._class_cache[w.id] = app
        return app

    def _pid(self, w: Window) -> int | None:
        if w.id not in self._pid_cache:      # a window's process never changes either
            prop = self._x(lambda: w.get_full_property(self._net_wm_pid, Xatom.CARDINAL))
            if len(self._pid_cache) > 512:
                self._pid_cache.clear()
            self._pid_cache[w.id] = (int(prop.value[0]) if prop is not None and len(prop.value)
                                     else None)
        return self._pid_cache[w.id]

    def _window_info(self) -> WindowInfo | None:
        self._events()
        wid = self._active_id()
        if wid is None:
            return None
        w = self._xd.create_resource_object("window", wid)
        if self._x(w.get_attributes).map_state != X.IsViewable:
            return None          # minimised / withdrawn: nothing of it is on screen
        geom = self._x(w.get_geometry)
        pos = self._x(lambda: self._root.translate_coords(w, 0, 0))
        return WindowInfo(app=self._app(w), title=self._title(w), x=int(pos.x), y=int(pos.y),
                          w=int(geom.width), h=int(geom.height), pid=self._pid(w), window_id=wid)

    def active_window(self) -> WindowInfo | None:
        # A window can close between two requests (BadWindow); by then something else may be
        # in front, so ask once more before saying "nothing".
        for _ in range(2):
            try:
                return self._window_info()
            except _GONE as exc:
                gone = getattr(exc, "resource_id", -1)
                self._class_cache.pop(gone, None)
                self._pid_cache.pop(gone, None)
                self._titles.pop(gone, None)
                self._active_known = False
                if self._watched == gone:
                    self._watched = None
        return None

    # -- pixels ----------------------------------------------------------------------------

    def share_pixels(self) -> bool:
        self._segment = self._shared_segment()
        self._share = self._segment is not None
        return self._share

    def _shared_segment(self) -> _SharedSegment | None:
        """mss's segment to lend frames from; None: mss's copying grab (no MIT-SHM, another
        mss version). mss judges its shared memory on its first grab, which it copies out:
        a 1×1 one here, so no full-size copy (33 MB at 4K) is ever made."""
        try:
            self._sct.grab({"left": 0, "top": 0, "width": 1, "height": 1})
            return _SharedSegment(self._sct)
        except (ScreenShotError, LookupError, ImportError, AttributeError) as exc:
            log.info("shared-memory grab not used (%s): mss's copying grab", exc)
            return None

    def _grab_region(self, left: int, top: int, width: int, height: int) -> np.ndarray:
        if self._segment is not None:
            try:
                return self._segment.grab(left, top, width, height)
            except Exception as exc:  # noqa: BLE001 - the screen grew, or any surprise
                # mss's own grab decides this frame (and reopens on a new screen size); the
                # segment is judged again for the next one.
                log.info("shared-memory grab failed (%s): mss's copying grab this time", exc)
                self._segment = None
        elif self._share:
            self._segment = self._shared_segment()
        region = {"left": left, "top": top, "width": width, "height": height}
        try:
            shot = self._sct.grab(region)
        except ScreenShotError:
            # The usual cause is a screen resize (mss sized its shared buffer for the old
            # screen): reopen once, then give up loudly.
            try:
                self._segment = None
                _close_mss(self._sct)
                self._sct = _open_mss(self.display_name)
                self._monitors = list(self._sct.monitors)
                shot = self._sct.grab(region)
            except ScreenShotError as exc:
                raise CaptureError(f"cannot read pixels from X display {self.display_name!r}: "
                                   f"{exc}", hint="check that the X server is still running") from exc
        # A view on mss's fresh per-grab bytearray: no copy.
        return np.asarray(shot)

    def _monitor_of(self, win: WindowInfo) -> tuple[int, dict[str, int]]:
        """The 1-based monitor holding the window's centre (the first one if none does)."""
        cx, cy = win.x + win.w // 2, win.y + win.h // 2
        for i, m in enumerate(self._monitors[1:], start=1):
            if m["left"] <= cx < m["left"] + m["width"] and m["top"] <= cy < m["top"] + m["height"]:
                return i, m
        return 1, self._monitors[1]

    def grab(self) -> Frame | None:
        ts = self.now()
        win = self.active_window()
        if self.mode == "display":
            idx = 0 if self.display == "all" else int(self.display)
            mon = self._monitors[idx]
            pixels = self._grab_region(mon["left"], mon["top"], mon["width"], mon["height"])
            return Frame(pixels=pixels, ts=ts, app=win.app if win else "",
                         title=win.title if win else "", x=mon["left"], y=mon["top"],
                         w=mon["width"], h=mon["height"], display=self.display,
                         screen_w=mon["width"], screen_h=mon["height"],
                         extra={**window_extra(win), "scale": self.scale()})
        if win is None:
            return None
        # Clip to the whole X screen: a window dragged partly off-screen has no pixels there,
        # and asking X for them is an error.
        rect = clip_to_screen(win, self._monitors[0])
        if rect is None:
            return None
        x, y, w, h = rect
        pixels = self._grab_region(x, y, w, h)
        idx, mon = self._monitor_of(win)
        extra = window_extra(win)
        extra["clipped"] = rect != (win.x, win.y, win.w, win.h)
        extra["scale"] = self.scale()
        return Frame(pixels=pixels, ts=ts, app=win.app, title=win.title, x=x, y=y,
                     w=w, h=h, display=str(idx), screen_w=mon["width"],
                     screen_h=mon["height"], extra=extra)

    @property
    def monitors(self) -> list[dict[str, int]]:
        """mss's monitor list: index 0 is the whole X screen, 1..N the monitors."""
        return [dict(m) for m in self._monitors]

    def close(self) -> None:
        sct, self._sct = getattr(self, "_sct", None), None
        self._segment = None
        if sct is not None:
            _close_mss(sct)
        xd = getattr(self, "_xd", None)
        if xd is not None:
            try:
                xd.close()
            except _LOST:
                pass   # the server is already gone; nothing left to release
            self._xd = None  # type: ignore[assignment]
