"""A real session bus, a real PipeWire daemon with a video source, and a stub
xdg-desktop-portal ScreenCast service on that bus — the D-Bus boundary of the portal path.

The stub answers like xdg-desktop-portal 1.16 does (a Request object path per call, the
result in that Request's ``Response`` signal; ``Start`` returns ``streams`` a(ua{sv}) and a
``restore_token``; ``OpenPipeWireRemote`` an fd on the PipeWire daemon), and records what
each call was given. The stream behind it is a real PipeWire node (GStreamer
``videotestsrc ! pipewiresink``), so frames really cross PipeWire. What no real GNOME or KDE
desktop checks here: the dialog, and their portal backends.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from lvsway import need
from waiting import wait_for

from localvideo.supervise import stop_processes

BUS_NAME = "org.freedesktop.portal.Desktop"
OBJECT = "/org/freedesktop/portal/desktop"


class PipeWireSession:
    """dbus-daemon + pipewire + wireplumber in a private XDG_RUNTIME_DIR."""

    def __init__(self) -> None:
        for p in ("dbus-daemon", "pipewire", "wireplumber", "gst-launch-1.0", "pw-dump"):
            need(p)
        self.rt = Path(tempfile.mkdtemp(prefix="lvpw-"))
        os.chmod(self.rt, 0o700)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.rt)}
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        try:
            bus = self._spawn(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                               "--print-address=1"], stdout=subprocess.PIPE)
            assert bus.stdout is not None
            self.bus = bus.stdout.readline().decode().strip()
            if not self.bus:
                pytest.fail("dbus-daemon --session printed no address")
            self.env["DBUS_SESSION_BUS_ADDRESS"] = self.bus
            self._spawn(["pipewire"])
            wait_for((self.rt / "pipewire-0").exists, 15, "PipeWire's socket")
            self._spawn(["wireplumber"])
            self.source: subprocess.Popen[bytes] | None = None
        except BaseException:
            self.stop()
            raise

    def _spawn(self, argv: list[str], stdout: Any = subprocess.DEVNULL
               ) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=stdout,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def video_source(self, bgr: tuple[int, int, int], size: tuple[int, int] = (320, 240)
                     ) -> int:
        """A live solid-colour video node (what a compositor's screen cast is); returns
        its node id. One consumer per source: a new one is made for each stream."""
        if self.source is not None:
            self.source.terminate()
            self.source.wait(5)
        name = "lvscreen-" + secrets.token_hex(3)
        argb = 0xFF000000 | (bgr[2] << 16) | (bgr[1] << 8) | bgr[0]
        self.source = self._spawn([
            "gst-launch-1.0", "-q", "videotestsrc", "pattern=solid-color",
            f"foreground-color={argb}", "is-live=true", "!",
            f"video/x-raw,format=BGRx,width={size[0]},height={size[1]},framerate=10/1", "!",
            "pipewiresink", "mode=provide",
            f"stream-properties=p,media.class=Video/Source,node.name={name},node.driver=true,"
            "priority.driver=2000"])

        def node() -> int | None:
            out = subprocess.run(["pw-dump"], env=self.env, capture_output=True).stdout
            try:
                objs = json.loads(out or b"[]")
            except ValueError:
                return None
            for o in objs:
                props = (o.get("info") or {}).get("props") or {}
                if str(o.get("type", "")).endswith("Node") and props.get("node.name") == name:
                    return int(o["id"])
            return None

        found: int = wait_for(node, 15, f"PipeWire node {name}")
        return found

    def stop(self) -> None:
        # The project's one TERM → wait → KILL escalation, newest process first.
        stop_processes(list(reversed(self.procs)), sig=signal.SIGTERM, timeout=5)
        import shutil

        shutil.rmtree(self.rt, ignore_errors=True)


class StubPortal:
    """org.freedesktop.portal.Desktop's ScreenCast on the session bus, in a thread."""

    def __init__(self, pw: PipeWireSession, size: tuple[int, int] = (320, 240)) -> None:
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_return, new_signal
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection

        self._addr, self._mt, self._hf = DBusAddress, MessageType, HeaderFields
        self._ret, self._sig = new_method_return, new_signal
        self.pw = pw
        self.size = size
        self.node: int | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed: list[str] = []
        self.respond = 0                    # 1 = the user pressed Cancel in the dialog
        self.token = "restore-" + secrets.token_hex(4)
        self.conn = open_dbus_connection(bus=pw.bus, enable_fds=True)
        reply = Proxy(message_bus, self.conn).RequestName(BUS_NAME, 4)  # DO_NOT_QUEUE
        assert reply == (1,), f"cannot own {BUS_NAME}: {reply}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.1)
            except TimeoutError:
                continue
            except (OSError, ValueError):
                return
            if msg.header.message_type != self._mt.method_call:
                continue
            f = msg.header.fields
            try:
                self._handle(msg, f.get(self._hf.member), f.get(self._hf.sender))
            except Exception as exc:  # noqa: BLE001 - a stub reports, the test reads it
                self.calls.append(("error", {"error": repr(exc)}))

    def _request(self, msg: Any, sender: str, options: dict[str, Any], method: str,
                 results: dict[str, Any], code: int = 0) -> None:
        token = options["handle_token"][1]
        path = f"{OBJECT}/request/{sender.lstrip(':').replace('.', '_')}/{token}"
        self.conn.send(self._ret(msg, "o", (path,)))
        emitter = self._addr(path, interface="org.freedesktop.portal.Request")
        self.conn.send(self._sig(emitter, "Response", "ua{sv}", (code, results)))
        self.calls.append((method, {k: v[1] for k, v in options.items()}))

    def _handle(self, msg: Any, member: str, sender: str) -> None:
        body = msg.body
        if member == "CreateSession":
            session = f"{OBJECT}/session/{sender.lstrip(':').replace('.', '_')}/" \
                      f"{body[0]['session_handle_token'][1]}"
            self._request(msg, sender, body[0], member, {"session_handle": ("s", session)})
        elif member == "SelectSources":
            self._request(msg, sender, body[1], member, {})
        elif member == "Start":
            if self.respond:
                self._request(msg, sender, body[2], member, {}, code=self.respond)
                return
            self.node = self.pw.video_source((0, 0, 255), self.size)
            streams = [(self.node, {"size": ("(ii)", self.size), "source_type": ("u", 1),
                                    "position": ("(ii)", (0, 0))})]
            self._request(msg, sender, body[2], member,
                          {"streams": ("a(ua{sv})", streams),
                           "restore_token": ("s", self.token)})
        elif member == "OpenPipeWireRemote":
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(self.pw.rt / "pipewire-0"))
            try:
                self.conn.send(self._ret(msg, "h", (s.fileno(),)))
            finally:
                s.close()
            self.calls.append((member, {}))
        elif member == "Close":
            self.closed.append(msg.header.fields.get(self._hf.path))
            self.conn.send(self._ret(msg, "", ()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()
