"""SQLite's locks survive everything this process does to the index between connections.

POSIX drops all of a process's fcntl locks on a file when any descriptor of it is closed. A
peek at the index's header (is it SQLCipher?) each time a thread opened its connection did
that: a CLI command in another process then took itself for the index's last user, deleted
the WAL and SHM at exit, and the server kept reading stale pages until "database disk image
is malformed". Here the server side is this process (a thread's connection comes and goes,
as in the web server's thread pool) and the CLI is a real `localvideo` process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from localvideo.service import Service


def test_a_thread_connection_closing_keeps_the_process_locks(tmp_path: Path) -> None:
    data = tmp_path / "store"
    svc = Service.open(data)
    assert svc.privacy.tokens() == []
    wal = data / "index.sqlite3-wal"
    before = wal.stat().st_ino

    def in_thread() -> None:
        # A worker thread's own connection, closed when the thread ends.
        svc.privacy.check_unlocked()
        svc.db.close()

    for _ in range(3):
        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
    r = subprocess.run([sys.executable, "-m", "localvideo", "token", "create", "agent",
                        "--data-dir", str(data)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # The CLI saw this process still using the index: the WAL is the same file, and the
    # token it wrote is visible here.
    assert wal.exists() and wal.stat().st_ino == before
    assert [t.name for t in svc.privacy.tokens()] == ["agent"]
    assert svc.db.one("PRAGMA integrity_check")[0] == "ok"
    svc.close()
