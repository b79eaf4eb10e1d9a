"""Helpers for the API / web UI tests: real windows, a real recording, a real server."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from localvideo.service import Service
from localvideo.web.app import create_app

# Words no other window shows, so a hit proves OCR read *this* window. The error lines
# appear one per second, so several key frames carry them and the offline reasoner (FIX on
# repeated error text) suggests a real task.
WINDOW_TITLE = "Build log"
WORD = "quokka"
WINDOW_LINES = ["quokka deploy 4217", "hello marmalade",
                "error: build failed in step 3", "error: unit tests failed twice",
                "error: lint failed on main.py", "error: build failed again"]


def open_xterm(xdisplay: Any, title: str, lines: list[str], *, every: float = 0.8) -> int:
    """A real xterm whose text grows a line every ``every`` seconds; its window id."""
    body = "; ".join(f"printf '%s\\n' '{ln}'; sleep {every}" for ln in lines)
    proc = subprocess.Popen(
        ["xterm", "-T", title, "-geometry", "72x12+60+60", "-fa", "DejaVu Sans Mono",
         "-fs", "14", "-bg", "white", "-fg", "black", "-e", "sh", "-c",
         f"{body}; exec sleep 100000"],
        env=xdisplay.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    xdisplay.windows.append(proc)  # closed by the fixture with the others
    wid = xdisplay.xdotool("search", "--sync", "--name", f"^{title}$").split()[0]
    xdisplay.activate(int(wid))
    return int(wid)


@dataclass
class Recorded:
    svc: Service
    data_dir: Path
    start: float
    end: float


def record_window(data_dir: Path, xdisplay: Any, *, seconds: float = 6.0,
                  title: str = WINDOW_TITLE, lines: list[str] | None = None) -> Recorded:
    """Record a real xterm for ``seconds`` with the real recorder; returns the open service."""
    svc = Service.open(data_dir, {"analyze": {"keyframe_interval": 1.0, "reasoner": "offline"},
                                  "record": {"fps": 4.0}})
    open_xterm(xdisplay, title, WINDOW_LINES if lines is None else lines)
    start = time.time()
    svc.record.run(duration=seconds)
    return Recorded(svc, data_dir, start, time.time())


class LiveServer:
    """A real uvicorn serving ``create_app(svc)`` on 127.0.0.1, on a socket we bound first
    (port 0: the OS picks a free one, no race with other tests)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(svc)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        end = time.time() + 15
        while not self.server.started:
            if time.time() > end:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    @property
    def token(self) -> str:
        return self.svc.token.get()

    def client(self, *, auth: bool = True, headers: dict[str, str] | None = None,
               **kw: Any) -> httpx.Client:
        headers = {**({"Authorization": f"Bearer {self.token}"} if auth else {}),
                   **(headers or {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


def raw_get(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send a request line exactly as written (no client-side path normalisation)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
