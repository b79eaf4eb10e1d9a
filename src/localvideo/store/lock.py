"""Pid lock files: one holder per data dir, and a cheap answer to "who holds it?".

``<data-dir>/<name>.lock`` holds the holder's pid under an exclusive ``flock``. The kernel
drops the lock when the process dies (kill -9 included), so a stale pid in the file never
looks alive and never blocks the next run: liveness is "someone holds the lock", not "the pid
exists". The recorder and the analysis loop each subclass :class:`PidLock` for their file
and their "already running" message.

Windows has no ``flock``; ``msvcrt.locking`` (LockFile) gives the same guarantee: the lock
belongs to the open handle and Windows drops it when the process ends. Its locks are
mandatory, so the lock is taken on one byte far past the pid text, which others can then
still read. (Not ``os.kill(pid, 0)`` for liveness anywhere: on Windows that call terminates
the process.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Self

from ..errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: msvcrt below
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

# Where the Windows lock byte sits: past any pid text, so reading the pid never touches it
# (LockFile may lock bytes beyond the end of the file).
WIN_LOCK_OFFSET = 1 << 16


def _try_lock(fh: IO[str], exclusive: bool) -> bool:
    """Take the lock on ``fh`` without waiting; False when another handle holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fh, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    # LockFile has no shared mode: a reader probing for a holder takes it exclusively for a
    # moment, which is harmless (holders never wait: they are told "already running").
    fd = fh.fileno()
    os.lseek(fd, WIN_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return True


def _unlock(fh: IO[str]) -> None:
    if fcntl is not None:
        fcntl.flock(fh, fcntl.LOCK_UN)
        return
    fd = fh.fileno()
    os.lseek(fd, WIN_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.lseek(fd, 0, os.SEEK_SET)


def _can_lock() -> bool:
    return fcntl is not None or msvcrt is not None


class PidLock:
    name = ""  # the file under the data dir; set by each subclass

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / self.name
        self._fh: IO[str] | None = None

    def busy(self, pid: str) -> UsageError:
        """The error for a second holder; ``pid`` is the live holder's, or "?"."""
        raise NotImplementedError

    def acquire(self) -> None:
        if not _can_lock():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the holder's lifetime
        if not _try_lock(fh, exclusive=True):
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
        if self._fh is not None:
            _unlock(self._fh)
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
    if not _can_lock():
        return None
    try:
        fh = open(path)  # noqa: SIM115
    except OSError:
        return None
    with fh:
        if not _try_lock(fh, exclusive=False):
            fh.seek(0)
            text = fh.read().strip()
            return int(text) if text.isdigit() else -1
        _unlock(fh)
        return None
