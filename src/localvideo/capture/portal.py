"""Wayland pixels through xdg-desktop-portal ScreenCast → PipeWire (GNOME, KDE, any portal).

The portal is the sanctioned path where the compositor offers no wlr-screencopy. The flow,
spoken over the session bus with jeepney (pure Python, receives the PipeWire fd):

1. ``CreateSession`` → a session handle;
2. ``SelectSources`` (monitors, one stream, ``persist_mode`` 2 and the saved
   ``restore_token``: the user is asked once, then never again while the token is valid);
3. ``Start`` → the stream's PipeWire node id and size, and a new restore token (saved under
   ``<data-dir>/state/portal-screencast.token``, 0600);
4. ``OpenPipeWireRemote`` → a file descriptor on the user's PipeWire daemon.

Each call answers with a Request object path; the result arrives later as its ``Response``
signal, so the match rule is added before the call. The frames are read by one
``gst-launch-1.0 pipewiresrc fd=N path=NODE ! videoconvert ! BGRx ! fdsink`` child, rate
limited, whose newest frame a reader thread keeps; the D-Bus connection stays open while
recording (the portal ends the session when its client leaves the bus).

The portal names no window, so this path records whole monitors with the title unknown.
Verified here only against a stub portal on a real session bus and a real PipeWire daemon
(tests/capture/test_wayland_portal.py); unverified on real GNOME and KDE desktops.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaptureError, DependencyError
from .base import CaptureBackend, Frame

log = logging.getLogger("localvideo.capture")

BUS_NAME = "org.freedesktop.portal.Desktop"
OBJECT = "/org/freedesktop/portal/desktop"
SCREENCAST = "org.freedesktop.portal.ScreenCast"
MONITOR, WINDOW = 1, 2
PERSIST_UNTIL_REVOKED = 2
TOKEN_NAME = "portal-screencast.token"
MAX_RATE = 4          # frames per second gst hands over at most (the recorder takes ≤ 2)


def _jeepney() -> Any:
    try:
        import jeepney
        from jeepney.io import blocking
    except ImportError as exc:
        raise DependencyError(f"the xdg-desktop-portal path needs jeepney: {exc}",
                              hint="run `pip install jeepney`") from exc
    return jeepney, blocking


class PortalError(CaptureError):
    """The portal refused or failed (user cancelled, no portal backend, …)."""


class PortalSession:
    """One ScreenCast session; ``start()`` returns (pipewire fd, node id, (w, h))."""

    def __init__(self, token_file: Path | None, timeout: float = 60.0,
                 source_types: int = MONITOR) -> None:
        jeepney, blocking = _jeepney()
        self._j, self._blocking = jeepney, blocking
        self.token_file = token_file
        self.timeout = timeout
        self.source_types = source_types
        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            raise PortalError("no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set",
                              hint="run inside the desktop session, where the portal lives")
        try:
            self.conn = blocking.open_dbus_connection(bus="SESSION", enable_fds=True)
        except Exception as exc:   # noqa: BLE001 - jeepney raises several kinds here
            raise PortalError(f"cannot reach the D-Bus session bus: {exc}",
                              hint="run inside the desktop session (DBUS_SESSION_BUS_ADDRESS "
                                   "must be set)") from exc
        self.portal = jeepney.DBusAddress(OBJECT, bus_name=BUS_NAME, interface=SCREENCAST)
        self.session: str | None = None
        self.restore_token_used = False

    # -- requests --------------------------------------------------------------------------
    def _request(self, method: str, signature: str, args: tuple[Any, ...],
                 options: dict[str, Any]) -> dict[str, Any]:
        j = self._j
        token = "lv" + secrets.token_hex(6)
        options = {**options, "handle_token": ("s", token)}
        sender = self.conn.unique_name.lstrip(":").replace(".", "_")
        path = f"{OBJECT}/request/{sender}/{token}"
        rule = j.MatchRule(type="signal", interface="org.freedesktop.portal.Request",
                           member="Response", path=path)
        bus = self._blocking.Proxy(j.message_bus, self.conn)
        bus.AddMatch(rule)
        with self.conn.filter(rule) as queue:
            msg = j.new_method_call(self.portal, method, signature + "a{sv}", (*args, options))
            reply = self.conn.send_and_get_reply(msg, timeout=10)
            if reply.header.message_type == j.MessageType.error:
                raise PortalError(f"the portal refused {method}: {reply.body}",
                                  hint=_PORTAL_HINT)
            try:
                signal = self.conn.recv_until_filtered(queue, timeout=self.timeout)
            except TimeoutError as exc:
                raise PortalError(f"the portal did not answer {method} within "
                                  f"{self.timeout:g} s (a dialog left open?)",
                                  hint=_PORTAL_HINT) from exc
        code, results = signal.body
        if code != 0:
            raise PortalError(f"the portal's {method} ended with "
                              f"{'cancelled by the user' if code == 1 else f'response {code}'}",
                              hint="allow the screen share when asked, or " + _PORTAL_HINT)
        return {k: v[1] for k, v in results.items()}

    def start(self) -> tuple[int, int, tuple[int, int] | None]:
        j = self._j
        res = self._request("CreateSession", "", (),
                            {"session_handle_token": ("s", "lv" + secrets.token_hex(6))})
        self.session = str(res["session_handle"])
        select: dict[str, Any] = {"types": ("u", self.source_types), "multiple": ("b", False),
                                  "persist_mode": ("u", PERSIST_UNTIL_REVOKED)}
        saved = self._load_token()
        if saved:
            select["restore_token"] = ("s", saved)
            self.restore_token_used = True
        self._request("SelectSources", "o", (self.session,), select)
        res = self._request("Start", "os", (self.session, ""), {})
        streams = res.get("streams") or []
        if not streams:
            raise PortalError("the portal started a screen cast with no stream",
                              hint=_PORTAL_HINT)
        node, props = streams[0]
        size = props.get("size")
        if res.get("restore_token"):
            self._save_token(str(res["restore_token"]))
        msg = j.new_method_call(self.portal, "OpenPipeWireRemote", "oa{sv}", (self.session, {}))
        reply = self.conn.send_and_get_reply(msg, timeout=10)
        if reply.header.message_type == j.MessageType.error:
            raise PortalError(f"the portal refused OpenPipeWireRemote: {reply.body}",
                              hint=_PORTAL_HINT)
        fd = reply.body[0].to_raw_fd()
        return fd, int(node), (int(size[1][0]), int(size[1][1])) if size else None

    # -- the restore token -----------------------------------------------------------------
    def _load_token(self) -> str | None:
        try:
            return (self.token_file.read_text().strip() or None) if self.token_file else None
        except OSError:
            return None

    def _save_token(self, token: str) -> None:
        if self.token_file is None:
            return
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.token_file.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.replace(tmp, self.token_file)

    def close(self) -> None:
        j = self._j
        if self.session:
            try:
                addr = j.DBusAddress(self.session, bus_name=BUS_NAME,
                                     interface="org.freedesktop.portal.Session")
                self.conn.send_and_get_reply(j.new_method_call(addr, "Close"), timeout=2)
            except Exception:  # noqa: BLE001, S110 - closing: the bus may be gone already
                pass
            self.session = None
        self.conn.close()


_PORTAL_HINT = ("check that xdg-desktop-portal and your desktop's backend (-gnome, -kde, "
                "-wlr) are installed and running; `localvideo doctor` shows what is missing")


class PipeWireReader:
    """``gst-launch-1.0 pipewiresrc`` as a child writing raw BGRx frames; keeps the newest."""

    def __init__(self, fd: int, node: int, size: tuple[int, int]) -> None:
        gst = shutil.which("gst-launch-1.0")
        if not gst:
            os.close(fd)
            raise DependencyError("reading the portal's PipeWire stream needs gst-launch-1.0 "
                                  "and GStreamer's PipeWire plugin",
                                  hint="install them: `apt-get install gstreamer1.0-tools "
                                       "gstreamer1.0-pipewire gstreamer1.0-plugins-base`")
        self.size = size
        w, h = size
        self.frame_bytes = w * h * 4
        self.proc = subprocess.Popen(
            [gst, "-q", "pipewiresrc", f"fd={fd}", f"path={node}", "always-copy=true", "!",
             "videorate", "drop-only=true", f"max-rate={MAX_RATE}", "!", "videoconvert", "!",
             "videoscale", "!", f"video/x-raw,format=BGRx,width={w},height={h}", "!",
             "fdsink", "fd=1", "sync=false"],
            pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(fd)                          # the child holds it now
        self._latest: np.ndarray | None = None
        self._ts = 0.0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="pipewire-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        h, w = self.size[1], self.size[0]
        while True:
            buf = bytearray(self.frame_bytes)
            view, got = memoryview(buf), 0
            while got < self.frame_bytes:
                try:
                    n = os.readv(fd, [view[got:]])
                except OSError:
                    n = 0
                if not n:
                    with self._cond:
                        self._cond.notify_all()
                    return
                got += n
            px = np.frombuffer(buf, np.uint8).reshape(h, w, 4)
            px[..., 3] = 255                  # BGRx: the fourth byte is padding
            with self._cond:
                self._latest, self._ts = px, time.time()
                self._cond.notify_all()

    def latest(self, wait: float = 0.0) -> np.ndarray | None:
        with self._cond:
            if self._latest is None and wait > 0:
                self._cond.wait_for(lambda: self._latest is not None
                                    or self.proc.poll() is not None, timeout=wait)
            if self._latest is None and self.proc.poll() is not None:
                err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.stderr \
                    else ""
                raise CaptureError(f"the PipeWire reader (gst-launch-1.0) exited "
                                   f"{self.proc.returncode}: {err.strip()[-300:]}",
                                   hint="install gstreamer1.0-pipewire; is PipeWire running?")
            return self._latest

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self._thread.join(5)


class PortalBackend(CaptureBackend):
    """Whole-monitor capture through the portal; the window in front is unknown."""

    name = "wayland"

    def __init__(self, mode: str = "display", display: str = "1", *,
                 token_file: Path | None = None, timeout: float = 60.0) -> None:
        super().__init__(mode="display", display=display)
        self.path = "xdg-desktop-portal ScreenCast → PipeWire (gst-launch-1.0 pipewiresrc)"
        self.session = PortalSession(token_file, timeout=timeout)
        try:
            fd, node, size = self.session.start()
            if size is None:
                raise PortalError("the portal's stream has no size", hint=_PORTAL_HINT)
            self.reader = PipeWireReader(fd, node, size)
        except BaseException:
            self.session.close()
            raise
        self.node = node
        self.why = ("the portal names no window: recording the whole monitor, title unknown"
                    if mode == "active-window" else "")
        if self.session.restore_token_used:
            self.why = "; ".join(w for w in (self.why, "reusing the saved restore token") if w)

    def active_window(self) -> None:
        return None

    def grab(self) -> Frame | None:
        px = self.reader.latest(wait=5.0)
        if px is None:
            return None
        h, w = px.shape[:2]
        return Frame(pixels=px, ts=self.now(), x=0, y=0, w=w, h=h, display=self.display,
                     screen_w=w, screen_h=h, extra={"pipewire_node": self.node})

    def close(self) -> None:
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.close()
        self.session.close()
