"""Which window is in front on sway (and i3): the i3 IPC protocol, spoken directly.

The protocol is tiny — ``b"i3-ipc"``, a native-endian uint32 payload length, a uint32
message type, then JSON — so one persistent UNIX socket replaces a ``swaymsg -t get_tree``
subprocess per tick (measured in tests/capture/test_wayland_sway.py's cost test: the socket
is several times cheaper in CPU than the subprocess).

Coordinates in the tree are *logical* (layout) pixels; an output with ``scale 2`` shows a
1280×720 logical rectangle with 2560×1440 real pixels, so the output's scale travels with
the window to the pixel grabber.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CaptureError
from .base import WindowInfo

MAGIC = b"i3-ipc"
HEADER = struct.Struct("=6sII")
GET_WORKSPACES, GET_TREE, GET_OUTPUTS, GET_VERSION = 1, 4, 3, 7


@dataclass(frozen=True)
class Output:
    """One monitor as the compositor lays it out (logical rectangle) and its scale."""

    name: str
    x: int
    y: int
    w: int
    h: int
    scale: float = 1.0


@dataclass(frozen=True)
class FocusedWindow:
    info: WindowInfo            # logical content rectangle
    output: Output | None       # the output the window sits on


def find_socket(env: dict[str, str] | None = None) -> str | None:
    """$SWAYSOCK / $I3SOCK, else the newest live ``sway-ipc.<uid>.<pid>.sock`` next to the
    Wayland socket (a recorder started from a service manager does not inherit SWAYSOCK)."""
    env = dict(os.environ) if env is None else env
    for key in ("SWAYSOCK", "I3SOCK"):
        if env.get(key):
            return env[key]
    wayland = env.get("WAYLAND_DISPLAY", "")
    folders = [os.path.dirname(wayland)] if os.path.isabs(wayland) else []
    if env.get("XDG_RUNTIME_DIR"):
        folders.append(env["XDG_RUNTIME_DIR"])
    for folder in folders:
        found = []
        for path in glob.glob(os.path.join(glob.escape(folder), "sway-ipc.*.sock")):
            pid = path.rsplit(".", 2)[-2]
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                found.append((os.path.getmtime(path), path))
        if found:
            return max(found)[1]
    return None


class SwayIPC:
    """One connection to sway's IPC socket; reconnects once when sway drops it."""

    def __init__(self, path: str, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._connect()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise CaptureError(f"cannot connect to the sway IPC socket {self.path}: {exc}",
                               hint="is sway still running? SWAYSOCK must name its socket "
                                    "(`swaymsg -t get_version` checks it)") from exc
        self._sock = sock

    def _recv(self, n: int) -> bytes:
        assert self._sock is not None
        buf = bytearray()
        while len(buf) < n:
            part = self._sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("sway closed the IPC socket")
            buf += part
        return bytes(buf)

    def _roundtrip(self, kind: int, payload: bytes) -> Any:
        assert self._sock is not None
        self._sock.sendall(HEADER.pack(MAGIC, len(payload), kind) + payload)
        magic, length, reply = HEADER.unpack(self._recv(HEADER.size))
        if magic != MAGIC or reply != kind:
            raise ConnectionError(f"unexpected IPC reply {magic!r} type {reply}")
        return json.loads(self._recv(length))

    def message(self, kind: int, payload: str = "") -> Any:
        data = payload.encode()
        for attempt in range(2):
            if self._sock is None:
                self._connect()
            try:
                return self._roundtrip(kind, data)
            except (OSError, ConnectionError, ValueError) as exc:
                self.close()
                if attempt:
                    raise CaptureError(f"sway IPC request failed on {self.path}: {exc}",
                                       hint="sway may have exited; start the session again") \
                        from exc
        raise AssertionError("unreachable")

    def tree(self) -> dict[str, Any]:
        return dict(self.message(GET_TREE))

    def outputs(self) -> list[Output]:
        """Active outputs in sway's order (``--display N`` counts in it)."""
        return [_output(o) for o in self.message(GET_OUTPUTS) if o.get("active", True)]

    def active(self) -> FocusedWindow | None:
        return focused(self.tree())

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _output(node: dict[str, Any]) -> Output:
    r = node.get("rect") or {}
    return Output(str(node.get("name", "")), int(r.get("x", 0)), int(r.get("y", 0)),
                  int(r.get("width", 0)), int(r.get("height", 0)),
                  float(node.get("scale") or 1.0))


def focused(tree: dict[str, Any]) -> FocusedWindow | None:
    """The focused window in a ``get_tree`` reply, or None when a workspace (or nothing)
    has focus — an empty workspace is focused when its last window closes."""
    stack: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(tree, None)]
    while stack:
        node, out = stack.pop()
        if node.get("type") == "output":
            out = node
        if node.get("focused"):
            if node.get("type") not in ("con", "floating_con"):
                return None
            return FocusedWindow(_window(node), _output(out) if out else None)
        for child in (*node.get("nodes", ()), *node.get("floating_nodes", ())):
            stack.append((child, out))
    return None


def _window(node: dict[str, Any]) -> WindowInfo:
    rect, inner = node.get("rect") or {}, node.get("window_rect") or {}
    # rect includes the border and title bar; window_rect is the content inside it.
    if inner.get("width") and inner.get("height"):
        x, y = rect.get("x", 0) + inner.get("x", 0), rect.get("y", 0) + inner.get("y", 0)
        w, h = inner["width"], inner["height"]
    else:
        x, y, w, h = rect.get("x", 0), rect.get("y", 0), rect.get("width", 0), rect.get("height", 0)
    props = node.get("window_properties") or {}
    # Native Wayland clients have app_id; XWayland ones have an X11 class instead.
    app = node.get("app_id") or props.get("class") or props.get("instance") or ""
    pid = node.get("pid")
    return WindowInfo(app=str(app), title=str(node.get("name") or ""), x=int(x), y=int(y),
                      w=int(w), h=int(h), pid=int(pid) if pid else None,
                      window_id=int(node["id"]) if node.get("id") is not None else None)
