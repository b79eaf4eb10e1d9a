"""supervise.stop_processes: the one terminate → wait → kill escalation, on real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from localvideo.supervise import stop_processes

# Exits 0 on SIGINT (after saying so), like the recorder closing its chunk.
POLITE = ("import signal, sys, time\n"
          "signal.signal(signal.SIGINT, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
          "print('up', flush=True)\n"
          "while True: time.sleep(0.05)\n")
# Ignores SIGINT and SIGTERM: only SIGKILL ends it.
STUBBORN = ("import signal, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('up', flush=True)\n"
            "while True: time.sleep(0.05)\n")


def start(code: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "up"
    return p


def test_polite_stop_escalates_only_for_the_stubborn() -> None:
    polite, stubborn = start(POLITE), start(STUBBORN)
    killed: list[int] = []
    t = time.monotonic()
    stop_processes([polite, stubborn], timeout=1.5, on_kill=lambda p: killed.append(p.pid))
    took = time.monotonic() - t
    assert polite.returncode == 0
    assert polite.stdout is not None and polite.stdout.read().strip() == "bye"
    assert stubborn.returncode == -signal.SIGKILL
    assert killed == [stubborn.pid]
    assert 1.4 <= took < 6


def test_no_signal_means_wait_then_kill_and_gone_processes_are_fine() -> None:
    stubborn = start(STUBBORN)
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stop_processes([done, stubborn], sig=None, timeout=0.5, group=False)
    assert stubborn.returncode == -signal.SIGKILL
    assert done.returncode == 0
