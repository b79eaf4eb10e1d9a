"""Fixtures for the API / web UI tests (helpers live in web_helpers.py).

``recorded`` records a real xterm on the session's Xvfb with the real recorder, then reads it
with the real analyzer (tesseract OCR, offline reasoner), once per session. ``live`` serves
it with a real uvicorn on 127.0.0.1 in a thread, so tests speak real HTTP to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web_helpers import LiveServer, Recorded, record_window

from localvideo.service import Service
from localvideo.service.models import AnalyzeRequest


@pytest.fixture(scope="session")
def recorded(xdisplay: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    rec = record_window(tmp_path_factory.mktemp("web-store"), xdisplay)
    try:
        rec.svc.analyze.run(AnalyzeRequest(window="5s", reasoner="offline"))
        yield rec
    finally:
        xdisplay.close_windows()
        rec.svc.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Service], LiveServer]]:
    started: list[LiveServer] = []

    def start(svc: Service) -> LiveServer:
        server = LiveServer(svc).__enter__()
        started.append(server)
        return server

    yield start
    for s in started:
        s.__exit__()


@pytest.fixture(scope="session")
def live(recorded: Recorded) -> Iterator[LiveServer]:
    with LiveServer(recorded.svc) as server:
        yield server
