"""Fixtures of the analysis tests: a service over a private store, and real chunks in it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from analyze_chunks import ChunkWriter, Shot, render, write_chunk

from localvideo.service import Service


@pytest.fixture
def svc(data_dir: Path) -> Iterator[Service]:
    # No startup recovery: the tests write chunks "being recorded" themselves.
    s = Service.open(data_dir, recover=False)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def t0() -> float:
    """A start time two hours ago, on a whole second."""
    return float(int(time.time()) - 7200)


def session_shots() -> list[Shot]:
    """A minute of work: a terminal with a failing build, a browser, back to the terminal."""
    term = ["$ make test", "error: test_login failed", "zanzibar-7 build-failed"]
    web = ["Jenkins build 42", "quokka dashboard déjà vu"]
    return [
        Shot(0.0, render(term), "xterm", "~/src/app"),
        Shot(0.5, None, "xterm", "~/src/app"),
        Shot(1.0, None, "xterm", "~/src/app"),
        Shot(4.0, render(web, dark=True), "firefox", "Jenkins - Mozilla Firefox"),
        Shot(4.5, None, "firefox", "Jenkins - Mozilla Firefox"),
        Shot(6.0, render(web + ["contact jane.doe@example.com"], dark=True), "firefox",
             "Contact - Mozilla Firefox"),
        Shot(7.0, render(["secret vault entry hunter2"]), "keepassxc", "Passwords",
             excluded=True),
        Shot(8.0, render(term + ["$ make test", "error: test_login failed again"]), "xterm",
             "~/src/app"),
        Shot(20.0, render(term + ["$ git log", "commit 1234 fix login"]), "xterm",
             "~/src/app"),
    ]


@pytest.fixture
def recorded(svc: Service, data_dir: Path, t0: float) -> ChunkWriter:
    return write_chunk(svc.db, data_dir, t0, session_shots(), name="session")
