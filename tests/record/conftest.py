"""Fixtures for the recorder tests (helpers live in record_helpers.py)."""

from __future__ import annotations

import os
import subprocess
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




@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MB tmpfs to fill up (needs root, as CI runs; fails rather than skips without)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root; run the tests as root (CI does)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
