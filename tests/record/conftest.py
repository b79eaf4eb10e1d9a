"""Fixtures for the recorder tests (helpers live in record_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localvideo.config import load_settings
from localvideo.service import Service


@pytest.fixture
def make_service(data_dir: Path) -> Iterator[Callable[..., Service]]:
    opened: list[Service] = []

    def make(**record: Any) -> Service:
        record.setdefault("fps", 25.0)
        svc = Service(load_settings(data_dir, {"record": record}))
        svc.record.recover()
        opened.append(svc)
        return svc

    yield make
    for s in opened:
        s.close()


