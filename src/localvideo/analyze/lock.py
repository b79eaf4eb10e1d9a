"""One analysis loop per data dir: two would read the same frames and send the same window.

``<data-dir>/analyze.lock`` holds the pid under an exclusive ``flock`` (see store/lock.py);
the kernel drops it when the process dies (kill -9 included), so a stale file never blocks
the next run.
"""

from __future__ import annotations

from ..errors import UsageError
from ..store.lock import PidLock


class AnalyzeLock(PidLock):
    name = "analyze.lock"

    def busy(self, pid: str) -> UsageError:
        return UsageError(f"`localvideo analyze` is already running on this data dir "
                          f"(pid {pid})",
                          "let it work (it picks up new chunks with --follow), stop it "
                          f"with Ctrl-C or `kill {pid}`, or pass another --data-dir")
