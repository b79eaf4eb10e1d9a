"""Owner-only store, checked as another account would try it: the unprivileged user
``lvtest`` (scripts/setup.sh creates it) runs ``cat`` / ``ls`` against every file and folder
of a store the real CLI made, and is refused each time.

The store sits in a world-traversable folder (0755, not pytest's private 0700 tmp dir), so
only the store's own modes stand between ``lvtest`` and the files.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from localvideo.config import load_settings
from localvideo.doctor import check_privacy
from localvideo.store import layout
from localvideo.store.db import Database

PY = sys.executable
USER = "lvtest"
SETUP_HINT = "run scripts/setup.sh test as root, which creates the user lvtest"


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A 0755 folder under /tmp that ``lvtest`` can enter."""
    if os.geteuid() != 0:
        pytest.fail("this test switches to the user lvtest with runuser, which needs root")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.fail(f"the test user {USER!r} does not exist; {SETUP_HINT}")
    d = Path(tempfile.mkdtemp(prefix="lvpriv-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _as_lvtest(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", USER, "--", *argv], capture_output=True, text=True,
                          timeout=30)


def _entries(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


def _assert_lvtest_refused(root: Path) -> int:
    """Every entry refused to lvtest (cat a file, ls a folder); returns how many were tried."""
    tried = 0
    for p in _entries(root):
        if p.is_symlink():
            continue
        r = _as_lvtest("ls", str(p)) if p.is_dir() else _as_lvtest("cat", str(p))
        assert r.returncode != 0 and "Permission denied" in r.stderr, (p, r.stdout[:200],
                                                                      r.stderr)
        tried += 1
    return tried


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.lstat().st_mode))
            for p in _entries(root)}


def test_a_store_the_recorder_makes_is_closed_to_other_accounts(open_parent: Path) -> None:
    data = open_parent / "store"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LOCALVIDEO_HOME"] = str(data)
    # The user's shell umask, as a fresh account has it: the store must not depend on it.
    r = subprocess.run(["sh", "-c", 'umask 022; exec "$@"', "sh", PY, "-m", "localvideo",
                        "record", "--virtual-display", "--duration", "4", "--chunk-seconds",
                        "2", "--data-dir", str(data)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    names = {p.name for p in data.rglob("*")}
    assert "index.sqlite3" in names and any(n.endswith(".mp4") for n in names), names
    assert any(n.endswith(".log") for n in names) and any(n.endswith(".lock") for n in names)
    # Set at creation: folders 0700, files 0600 (nothing was chmod-ed after the fact, and
    # the WAL / SHM files SQLite makes inherit the index's mode).
    modes = _modes(data)
    for rel, mode in modes.items():
        p = data / rel if rel != "." else data
        assert mode == ("0o700" if p.is_dir() else "0o600"), (rel, mode)
    assert _assert_lvtest_refused(data) == len(modes)
    # And even with the root's door opened, no single file inside answers.
    os.chmod(data, 0o755)
    for p in _entries(data)[1:]:
        if p.is_file():
            r2 = _as_lvtest("cat", str(p))
            assert "Permission denied" in r2.stderr, p


def test_an_old_store_is_repaired_once_and_doctor_says_so(open_parent: Path) -> None:
    data = open_parent / "old"
    db = Database(data / "index.sqlite3")
    db.execute("CREATE TABLE IF NOT EXISTS t(x)")
    db.close()
    (data / "observer-recordings" / "dev" / "2026-01-01").mkdir(parents=True)
    chunk = data / "observer-recordings" / "dev" / "2026-01-01" / "chunk_120000_000.mp4"
    chunk.write_bytes(b"not a real chunk")
    (data / "logs").mkdir()
    (data / "logs" / "recorder.log").write_text("secret words on screen")
    tool = data / "hook.sh"
    tool.write_text("#!/bin/sh\n")
    # As an older version left it: 0755 folders, 0644 files (0755 for an executable), and no
    # record of the repair in the index.
    conn = sqlite3.connect(data / "index.sqlite3")
    conn.execute("DELETE FROM kv WHERE key = ?", (layout.PRIVATE_KEY,))
    conn.commit()
    conn.close()
    for p in _entries(data):
        os.chmod(p, 0o755 if p.is_dir() or p == tool else 0o644)

    assert _as_lvtest("cat", str(data / "logs" / "recorder.log")).stdout.startswith("secret")
    before = check_privacy(data)
    assert not before.ok and "readable or writable by other accounts" in before.detail
    assert before.fix == f"chmod -R go-rwx {data}"
    assert "store folder itself is open" in before.detail

    # Any command opening the store repairs it (here `localvideo chunks`, the CLI path).
    r = subprocess.run([PY, "-m", "localvideo", "chunks", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    modes = _modes(data)
    assert modes["."] == "0o700" and modes["logs"] == "0o700"
    assert modes["logs/recorder.log"] == "0o600" and modes["index.sqlite3"] == "0o600"
    assert modes["hook.sh"] == "0o700"          # the owner's execute bit is kept
    assert _assert_lvtest_refused(data) == len(modes)
    assert check_privacy(data).ok

    # Once per store: a later start does not walk again (a file made wide on purpose since
    # stays as the user left it, and doctor is what reports it).
    os.chmod(data / "logs" / "recorder.log", 0o644)
    db2 = Database(data / "index.sqlite3")
    assert db2.get_kv(layout.PRIVATE_KEY) == layout.PRIVATE_VERSION
    db2.close()
    assert stat.S_IMODE((data / "logs" / "recorder.log").stat().st_mode) == 0o644
    later = check_privacy(data)
    assert not later.ok and "closed to them" in later.detail
    assert later.data and later.data["readable_by_others"] == 1


def test_repair_follows_no_symlink_out_of_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.chmod(outside, 0o644)
    data = tmp_path / "store"
    data.mkdir()
    (data / "link").symlink_to(outside)
    os.chmod(data, 0o755)
    assert layout.make_private(data) == 1             # the root only
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644


def test_settings_and_service_write_owner_only(tmp_path: Path) -> None:
    # In-process use (tests, benches, embedding) goes through Database too.
    data = tmp_path / "inproc"
    s = load_settings(data)
    db = Database(s.db_path)
    db.set_kv("x", 1)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for p in data.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    db.close()
