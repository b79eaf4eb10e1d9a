"""Pid lock files: one holder per data dir, and a cheap answer to "who holds it?".

``<data-dir>/<name>.lock`` holds the holder's pid under an exclusive ``flock``. The kernel
drops the lock when the process dies (kill -9 included), so a stale pid in the file never
looks alive and never blocks the next run: liveness is "someone holds the lock", not "the pid
exists". The recorder and the analysis loop each subclass :class:`PidLock` for their file
and their "already running" message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Self

from ..errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; one holder per data dir is then up to the user
    fcntl = None  # type: ignore[assignment]


class PidLock:
    name = ""  # the file under the data dir; set by each subclass

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / self.name
        self._fh: IO[str] | None = None

    def busy(self, pid: str) -> UsageError:
        """The error for a second holder; ``pid`` is the live holder's, or "?"."""
        raise NotImplementedError

    def acquire(self) -> None:
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the holder's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise self.busy(pid) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None and fcntl is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(path: Path) -> int | None:
    """The pid of the live holder of the lock file ``path`` (-1 when the file has none), or
    None when nobody holds it."""
    if fcntl is None:
        return None
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
