"""Fixtures of the analysis tests: a service over a private store, and real chunks in it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from analyze_chunks import ChunkWriter, session_shots, write_chunk

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


@pytest.fixture
def recorded(svc: Service, data_dir: Path, t0: float) -> ChunkWriter:
    return write_chunk(svc.db, data_dir, t0, session_shots(), name="session")
