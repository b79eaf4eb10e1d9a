"""The recorder lock: one recorder per data dir, and a cheap answer to "is it running?".

``<data-dir>/recorder.lock`` holds the recorder's pid under an exclusive ``fcntl`` lock. The
kernel drops the lock when the process dies (kill -9 included), so a stale pid in the file
never looks alive: liveness is "someone holds the lock", not "the pid exists".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from ..errors import UsageError

LOCK_NAME = "recorder.lock"


class RecorderLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the recorder's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise UsageError(f"a recorder is already running on this data dir (pid {pid})",
                             "stop it first (Ctrl-C in its terminal, or kill "
                             f"{pid}), or pass another --data-dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RecorderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_pid(data_dir: Path) -> int | None:
    """The pid of the live recorder on ``data_dir``, or None when none holds the lock."""
    path = data_dir / LOCK_NAME
    try:
        fh = open(path)  # noqa: SIM115
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None
