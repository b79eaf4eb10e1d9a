"""wlr-screencopy spoken directly on the Wayland socket: no grim process per frame, and no
copy at all while the screen does not change.

grim costs ~16 ms of CPU for a 720p frame (bench/wayland_capture.py), most of it starting a
process and a Wayland connection every time. This client keeps one connection and one
shared-memory buffer, and asks with ``copy_with_damage``: the compositor fills the buffer
only once something on that output changed, so between changes a grab is one non-blocking
poll of the socket that returns the previous picture (the recorder then sees "unchanged").

The Wayland wire format is small: each message is the object id (uint32), then
``size << 16 | opcode`` (uint32), then the arguments (32-bit ints; strings as length + bytes
+ NUL padded to 4; file descriptors as SCM_RIGHTS ancillary data). Only the requests and
events this capture needs are spoken. The buffer formats XRGB8888/ARGB8888 are B, G, R, X in
memory — the BGRA layout a Frame uses — so no conversion is needed.

Any protocol surprise raises :class:`CaptureError`; the backend then falls back to grim.
"""

from __future__ import annotations

import array
import mmap
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaptureError

WL_SHM_FORMAT_ARGB8888, WL_SHM_FORMAT_XRGB8888 = 0, 1
WL_SHM_FORMAT_ABGR8888, WL_SHM_FORMAT_XBGR8888 = 0x34324241, 0x34324258
FLAG_Y_INVERT = 1


@dataclass
class WlOutput:
    oid: int
    name: str = ""
    scale: int = 1


@dataclass
class _Frame:
    oid: int
    key: tuple[object, ...]              # (output name, region) it was asked for
    fmt: int = -1
    width: int = 0
    height: int = 0
    stride: int = 0
    flags: int = 0
    buffer_done: bool = False
    copying: bool = False
    ready: bool = False
    failed: bool = False
    damage: list[tuple[int, int, int, int]] = field(default_factory=list)


def socket_path(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if os.path.isabs(name):
        return name
    rt = env.get("XDG_RUNTIME_DIR")
    if not rt:
        raise CaptureError("XDG_RUNTIME_DIR is not set, so the Wayland socket "
                           f"{name!r} cannot be found",
                           hint="run inside the session, or give WAYLAND_DISPLAY as an "
                                "absolute socket path")
    return os.path.join(rt, name)


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("=I", len(raw)) + raw + b"\0" * (-len(raw) % 4)


class WlrScreencopy:
    """One connection to the compositor; ``grab(output, region)`` → H×W×4 BGRA."""

    def __init__(self, path: str | None = None, timeout: float = 5.0) -> None:
        self.path = path or socket_path()
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(self.path)
        except OSError as exc:
            self.sock.close()
            raise CaptureError(f"cannot connect to the Wayland socket {self.path}: {exc}",
                               hint="check WAYLAND_DISPLAY") from exc
        self._next_id = 2
        self._buf = b""
        self._globals: dict[str, tuple[int, int]] = {}
        self.outputs: list[WlOutput] = []
        self._callbacks: dict[int, bool] = {}
        self._frames: dict[int, _Frame] = {}
        self._pending: _Frame | None = None
        self._last: tuple[tuple[object, ...], np.ndarray] | None = None
        self._shm_size = 0
        self._shm_fd = -1
        self._shm: mmap.mmap | None = None
        self._pool = self._buffer = 0
        self._buffer_key: tuple[int, int, int, int] | None = None
        self.copies = 0                   # pictures really copied (for tests and benches)
        try:
            self._registry = self._new_id()
            self._send(1, 1, struct.pack("=I", self._registry))      # wl_display.get_registry
            self._roundtrip()
            for iface in ("wl_shm", "zwlr_screencopy_manager_v1"):
                if iface not in self._globals:
                    raise CaptureError(f"the compositor offers no {iface}",
                                       hint="this needs a wlroots compositor (sway, Hyprland, "
                                            "river…)")
            self._shm_id = self._bind("wl_shm", 1)
            self._manager = self._bind("zwlr_screencopy_manager_v1", 3)
            for name, (gname, version) in list(self._globals.items()):
                if name.startswith("wl_output#"):
                    out = WlOutput(self._bind_name(gname, "wl_output", min(version, 4)))
                    self.outputs.append(out)
            self._roundtrip()                 # the outputs' name and scale events
        except BaseException:
            self.close()
            raise

    # -- wire ------------------------------------------------------------------------------
    def _new_id(self) -> int:
        oid, self._next_id = self._next_id, self._next_id + 1
        return oid

    def _send(self, oid: int, opcode: int, args: bytes = b"", fds: tuple[int, ...] = ()) -> None:
        msg = struct.pack("=II", oid, (8 + len(args)) << 16 | opcode) + args
        try:
            if fds:
                self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                           array.array("i", fds).tobytes())])
            else:
                self.sock.sendall(msg)
        except OSError as exc:
            raise CaptureError(f"lost the Wayland connection: {exc}",
                               hint="the compositor may have exited") from exc

    def _bind(self, iface: str, version: int) -> int:
        gname, have = self._globals[iface]
        return self._bind_name(gname, iface, min(version, have))

    def _bind_name(self, gname: int, iface: str, version: int) -> int:
        oid = self._new_id()
        self._send(self._registry, 0, struct.pack("=I", gname) + _string(iface)
                   + struct.pack("=II", version, oid))
        if iface == "zwlr_screencopy_manager_v1":
            self.manager_version = version
        return oid

    def _roundtrip(self) -> None:
        cb = self._new_id()
        self._callbacks[cb] = False
        self._send(1, 0, struct.pack("=I", cb))                       # wl_display.sync
        self._pump(lambda: self._callbacks.get(cb, True), self.timeout)
        self._callbacks.pop(cb, None)

    def _pump(self, done: object, timeout: float) -> bool:
        """Read and dispatch events until ``done()`` or ``timeout`` (0: only what is there)."""
        end = time.monotonic() + timeout
        while not done():  # type: ignore[operator]
            left = end - time.monotonic()
            if left <= 0 and timeout > 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], max(left, 0))
            if not ready:
                if timeout > 0:
                    continue
                return False
            data = self.sock.recv(65536)
            if not data:
                raise CaptureError("the compositor closed the Wayland connection",
                                   hint="the session may have ended")
            self._buf += data
            self._dispatch()
        return True

    def _dispatch(self) -> None:
        while len(self._buf) >= 8:
            oid, word = struct.unpack_from("=II", self._buf)
            size, opcode = word >> 16, word & 0xFFFF
            if len(self._buf) < size:
                return
            body, self._buf = self._buf[8:size], self._buf[size:]
            self._event(oid, opcode, body)

    def _event(self, oid: int, opcode: int, body: bytes) -> None:
        if oid == 1:
            if opcode == 0:                                           # wl_display.error
                obj, code, n = struct.unpack_from("=III", body)
                msg = body[12:12 + n - 1].decode("utf-8", "replace")
                raise CaptureError(f"Wayland protocol error on object {obj} ({code}): {msg}",
                                   hint="falls back to grim")
            return                                                    # delete_id
        if oid == self._registry:
            if opcode == 0:                                           # global
                gname, n = struct.unpack_from("=II", body)
                iface = body[8:8 + n - 1].decode()
                version = struct.unpack_from("=I", body, 8 + n + (-n % 4))[0]
                key = f"wl_output#{gname}" if iface == "wl_output" else iface
                self._globals[key] = (gname, version)
            return
        if oid in self._callbacks:
            self._callbacks[oid] = True
            return
        frame = self._frames.get(oid)
        if frame is not None:
            self._frame_event(frame, opcode, body)
            return
        for out in self.outputs:
            if out.oid == oid:
                if opcode == 3:                                       # scale
                    out.scale = struct.unpack_from("=i", body)[0]
                elif opcode == 4:                                     # name (v4)
                    n = struct.unpack_from("=I", body)[0]
                    out.name = body[4:4 + n - 1].decode()
                return

    def _frame_event(self, f: _Frame, opcode: int, body: bytes) -> None:
        if opcode == 0:                                               # buffer (shm)
            f.fmt, f.width, f.height, f.stride = struct.unpack_from("=IIII", body)
        elif opcode == 1:                                             # flags
            f.flags = struct.unpack_from("=I", body)[0]
        elif opcode == 2:                                             # ready
            f.ready = True
        elif opcode == 3:                                             # failed
            f.failed = True
        elif opcode == 4:                                             # damage
            f.damage.append(struct.unpack_from("=IIII", body))
        elif opcode == 6:                                             # buffer_done (v3)
            f.buffer_done = True

    # -- frames ----------------------------------------------------------------------------
    def _output(self, name: str | None) -> WlOutput:
        if not self.outputs:
            raise CaptureError("the compositor lists no outputs", hint="is a monitor on?")
        if name is None:
            return self.outputs[0]
        for out in self.outputs:
            if out.name == name:
                return out
        raise CaptureError(f"no Wayland output named {name!r} (have "
                           f"{', '.join(o.name or '?' for o in self.outputs)})",
                           hint="the monitor layout changed; restart the recorder")

    def _request(self, out: WlOutput, region: tuple[int, int, int, int] | None,
                 key: tuple[object, ...]) -> _Frame:
        f = _Frame(self._new_id(), key)
        self._frames[f.oid] = f
        if region is None:
            self._send(self._manager, 0, struct.pack("=IiI", f.oid, 0, out.oid))
        else:
            self._send(self._manager, 1, struct.pack("=IiIiiii", f.oid, 0, out.oid, *region))
        # v3 ends the buffer offers with buffer_done; older versions send only `buffer`.
        self._pump(lambda: f.buffer_done if self.manager_version >= 3 else f.stride > 0
                   or f.failed, self.timeout)
        if f.failed or f.stride <= 0:
            self._drop(f)
            raise CaptureError("the compositor refused the screen copy (no shared-memory "
                               "buffer offered)", hint="falls back to grim")
        if f.fmt not in (WL_SHM_FORMAT_ARGB8888, WL_SHM_FORMAT_XRGB8888,
                         WL_SHM_FORMAT_ABGR8888, WL_SHM_FORMAT_XBGR8888):
            self._drop(f)
            raise CaptureError(f"unsupported shm format 0x{f.fmt:08x}", hint="falls back to grim")
        self._ensure_buffer(f)
        # The first copy of a view is unconditional; after that, wait for damage.
        with_damage = self._last is not None and self._last[0] == key \
            and self.manager_version >= 2
        self._send(f.oid, 2 if with_damage else 0, struct.pack("=I", self._buffer))
        f.copying = True
        return f

    def _ensure_buffer(self, f: _Frame) -> None:
        want = (f.width, f.height, f.stride, f.fmt)
        if self._buffer_key == want:
            return
        size = f.stride * f.height
        if size > self._shm_size:
            if self._shm is not None:
                self._shm.close()
                os.close(self._shm_fd)
                self._send(self._pool, 1)                              # wl_shm_pool.destroy
            self._shm_fd = os.memfd_create("lv-screencopy", os.MFD_CLOEXEC)
            os.ftruncate(self._shm_fd, size)
            self._shm = mmap.mmap(self._shm_fd, size)
            self._shm_size = size
            self._pool = self._new_id()
            self._send(self._shm_id, 0, struct.pack("=Ii", self._pool, size),
                       fds=(self._shm_fd,))                          # wl_shm.create_pool
        if self._buffer:
            self._send(self._buffer, 0)                               # wl_buffer.destroy
        self._buffer = self._new_id()
        self._send(self._pool, 0, struct.pack("=IiiiiI", self._buffer, 0, f.width, f.height,
                                              f.stride, f.fmt))       # create_buffer
        self._buffer_key = want

    def _drop(self, f: _Frame) -> None:
        self._send(f.oid, 1)                                          # frame.destroy
        self._frames.pop(f.oid, None)
        if self._pending is f:
            self._pending = None

    def _pixels(self, f: _Frame) -> np.ndarray:
        assert self._shm is not None
        rows = np.frombuffer(self._shm, np.uint8, count=f.stride * f.height)
        px = rows.reshape(f.height, f.stride)[:, :f.width * 4].reshape(f.height, f.width, 4)
        if f.flags & FLAG_Y_INVERT:
            px = px[::-1]
        out = np.array(px)                    # the buffer is reused by the next copy
        if f.fmt in (WL_SHM_FORMAT_ABGR8888, WL_SHM_FORMAT_XBGR8888):
            out[..., [0, 2]] = out[..., [2, 0]]
        if f.fmt != WL_SHM_FORMAT_ARGB8888:
            out[..., 3] = 255
        return out

    def grab(self, output: str | None = None,
             region: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """The output (or the region of it, output-local logical pixels) as BGRA. While
        nothing changed since the last grab of the same view, the same array is returned."""
        out = self._output(output)
        key = (out.name, region)
        f = self._pending
        if f is not None and f.key == key and self._last is not None:
            # Ask once, without waiting: has the compositor copied new damage?
            self._pump(lambda: f.ready or f.failed, 0)
            if not (f.ready or f.failed):
                return self._last[1]
            if f.ready:
                px = self._pixels(f)
                self.copies += 1
                self._drop(f)
                self._last = (key, px)
                self._pending = self._request(out, region, key)
                return px
            self._drop(f)
        elif f is not None:
            self._drop(f)                     # another view now (focus moved): start over
        f = self._request(out, region, key)
        self._pump(lambda: f.ready or f.failed, self.timeout)
        if not f.ready:
            self._drop(f)
            raise CaptureError("the compositor did not copy the screen"
                               + (" (failed)" if f.failed else f" within {self.timeout:g} s"),
                               hint="falls back to grim")
        px = self._pixels(f)
        self.copies += 1
        self._drop(f)
        self._last = (key, px)
        self._pending = self._request(out, region, key)   # damage-gated from here on
        return px

    def close(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._shm_fd >= 0:
            os.close(self._shm_fd)
            self._shm_fd = -1
        self.sock.close()
