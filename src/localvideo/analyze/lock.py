"""One analysis loop per data dir: two would read the same frames and send the same window.

``<data-dir>/analyze.lock`` holds the pid under an exclusive ``flock``; the kernel drops it
when the process dies (kill -9 included), so a stale file never blocks the next run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from ..errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; one loop per data dir is then up to the user
    fcntl = None  # type: ignore[assignment]


class AnalyzeLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "analyze.lock"
        self._fh: IO[str] | None = None

    def __enter__(self) -> AnalyzeLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the loop's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise UsageError(f"`localvideo analyze` is already running on this data dir "
                             f"(pid {pid})",
                             "let it work (it picks up new chunks with --follow), stop it "
                             f"with Ctrl-C or `kill {pid}`, or pass another --data-dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None and fcntl is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
