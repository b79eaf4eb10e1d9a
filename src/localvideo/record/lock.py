"""The recorder lock: one recorder per data dir, and a cheap answer to "is it running?".

``<data-dir>/recorder.lock`` holds the recorder's pid under an exclusive ``fcntl`` lock (see
store/lock.py): liveness is "someone holds the lock", not "the pid exists".
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..store.lock import PidLock, holder_pid

LOCK_NAME = "recorder.lock"


class RecorderLock(PidLock):
    name = LOCK_NAME

    def busy(self, pid: str) -> UsageError:
        return UsageError(f"a recorder is already running on this data dir (pid {pid})",
                          "stop it first (Ctrl-C in its terminal, or kill "
                          f"{pid}), or pass another --data-dir")


def running_pid(data_dir: Path) -> int | None:
    """The pid of the live recorder on ``data_dir``, or None when none holds the lock."""
    return holder_pid(data_dir / LOCK_NAME)
