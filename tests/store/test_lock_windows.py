"""Lock holders on Windows (issue 9, items 5 and 7): msvcrt byte-range locks at the boundary.

Windows has no fcntl. Before, every lock there was a no-op and ``holder_pid`` answered "no
holder", so start-up recovery marked the live recorder's chunk crashed and a job's owner
never looked alive. ``os.kill(pid, 0)`` is no way out: on Windows it terminates the process.

``msvcrt`` exists only on Windows, so it is a fake here that answers like the real
``msvcrt.locking`` (LockFile underneath): a lock belongs to one open handle and covers the
bytes from the handle's current position; a second handle is refused (OSError, errno
EDEADLOCK) whichever process it is in; the OS drops a handle's locks when it is closed or its
process ends; locks are *mandatory*, so a lock over the pid text would make it unreadable —
the fake refuses reads of locked bytes the way ReadFile does (PermissionError).
The files, handles and the recovery run against them are real.
"""

from __future__ import annotations

import builtins
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localvideo.store import lock as lockmod


class FakeMsvcrt:
    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self) -> None:
        # (dev, inode) → list of (fd, start, length) held
        self.held: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        self.calls: list[tuple[int, int]] = []

    def closed(self, fd: int) -> None:
        """The OS drops the locks of a handle when it is closed (or its process ends)."""
        for key, spans in self.held.items():
            self.held[key] = [span for span in spans if span[0] != fd]

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        start = os.lseek(fd, 0, os.SEEK_CUR)
        spans = self.held.setdefault(key, [])
        self.calls.append((mode, start))
        if mode == self.LK_UNLCK:
            if (fd, start, nbytes) not in spans:
                raise PermissionError(errno.EACCES, "Permission denied")
            spans.remove((fd, start, nbytes))
            return
        if any(s < start + nbytes and start < s + n for _, s, n in spans):
            raise OSError(errno.EDEADLOCK, "Resource deadlock avoided")
        spans.append((fd, start, nbytes))

    def readable(self, path: str, fd_reading: int | None) -> bool:
        """Whether ReadFile from another handle would be refused on the file's start."""
        st = os.stat(path)
        size = max(1, st.st_size)
        return not any(fd != fd_reading and s < size
                       for fd, s, _ in self.held.get((st.st_dev, st.st_ino), []))


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> FakeMsvcrt:
    fake = FakeMsvcrt()
    monkeypatch.setattr(lockmod, "fcntl", None)
    monkeypatch.setattr(lockmod, "msvcrt", fake, raising=False)
    # Mandatory locks: opening is fine, reading locked bytes is not.
    real_open = builtins.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        fh = real_open(file, mode, *args, **kw)
        if str(file).endswith(".lock"):
            read = fh.read

            def read_checked(*a: Any) -> Any:
                if not fake.readable(str(file), fh.fileno()):
                    raise PermissionError(errno.EACCES, "The process cannot access the file "
                                          "because another process has locked a portion of it")
                return read(*a)

            fh.read = read_checked
            close = fh.close
            fd = fh.fileno()

            def close_and_unlock() -> None:
                if not fh.closed:
                    fake.closed(fd)
                close()

            fh.close = close_and_unlock
        return fh

    monkeypatch.setattr(builtins, "open", guarded_open)
    return fake


def test_recorder_holder_is_found_on_windows(windows: FakeMsvcrt, tmp_path: Path) -> None:
    from localvideo.errors import UsageError
    from localvideo.record.lock import RecorderLock, running_pid

    assert running_pid(tmp_path) is None
    lock = RecorderLock(tmp_path)
    lock.acquire()
    assert windows.calls, "no msvcrt lock was taken"
    assert running_pid(tmp_path) == os.getpid()          # the holder, pid readable
    with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
        RecorderLock(tmp_path).acquire()                 # a second recorder is refused
    lock.release()
    assert running_pid(tmp_path) is None


def test_a_dead_holder_is_not_alive(windows: FakeMsvcrt, tmp_path: Path) -> None:
    from localvideo.record.lock import RecorderLock, running_pid

    lock = RecorderLock(tmp_path)
    lock.acquire()
    assert lock._fh is not None
    lock._fh.close()                                     # the process died: no unlock
    lock._fh = None
    assert running_pid(tmp_path) is None                 # its pid is still in the file
    assert (tmp_path / "recorder.lock").read_text() == str(os.getpid())


def test_job_owner_liveness_on_windows(windows: FakeMsvcrt, tmp_path: Path) -> None:
    from localvideo.service.jobs import JobsLock, lock_path

    owner = JobsLock(tmp_path)
    owner.acquire()
    assert lockmod.holder_pid(lock_path(tmp_path, os.getpid())) == os.getpid()
    owner.release()
    assert lockmod.holder_pid(lock_path(tmp_path, os.getpid())) is None


def test_recovery_leaves_the_live_chunk_alone_on_windows(
        windows: FakeMsvcrt, make_live_chunk: Callable[[], tuple[Any, int]]) -> None:
    from localvideo.record.lock import RecorderLock

    svc, chunk_id = make_live_chunk()
    with RecorderLock(svc.settings.data_dir):
        svc.record.recover()                             # what every command runs first
        (state,) = svc.db.query("SELECT state FROM chunks WHERE id = ?", (chunk_id,))[0]
    assert state == "recording"                          # not marked crashed


@pytest.fixture
def make_live_chunk(data_dir: Path) -> Any:
    from localvideo.config import load_settings
    from localvideo.service import Service
    from localvideo.store import frames as frames_db

    opened: list[Any] = []

    def make() -> tuple[Any, int]:
        svc = Service(load_settings(data_dir, {}))
        opened.append(svc)
        rel = "recordings/dev/2026/12/01/live.mp4"
        (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / rel).write_bytes(b"")
        chunk_id = frames_db.open_chunk(svc.db, path=rel, device_id="dev", start_ts=1.0,
                                        codec="h264", encoder="libx264", width=64, height=64)
        return svc, chunk_id

    yield make
    for s in opened:
        s.close()
