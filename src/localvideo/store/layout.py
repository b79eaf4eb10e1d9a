"""Where files live under the state root.

``observer-recordings/<device-id>/<YYYY-MM-DD>/chunk_<HHMMSS>_<ms>.mp4`` follows the seed's
recorder (Fazm's ``observer-recordings`` cache), with a date folder so a day can be listed
or deleted with ordinary tools.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import UsageError


def chunk_path(recordings_dir: Path, device_id: str, start_ts: float) -> Path:
    dt = datetime.fromtimestamp(start_ts)
    name = f"chunk_{dt:%H%M%S}_{int(start_ts * 1000) % 1000:03d}.mp4"
    return recordings_dir / device_id / f"{dt:%Y-%m-%d}" / name


def inside(root: Path, candidate: Path | str) -> Path:
    """Resolve ``candidate`` against ``root``; refuse anything that escapes it."""
    root = root.resolve()
    p = (root / candidate).resolve()
    if p != root and root not in p.parents:
        raise UsageError(f"path {candidate!s} is outside the store {root}")
    return p


# -- owner-only store -------------------------------------------------------------------------
# A screen history holds everything that was ever on screen (messages, bank pages, passwords
# shown in the clear), so the store is private to its owner: folders 0700, files 0600.
# The umask does it at creation, for every file any of our threads or children (FFmpeg, the
# observe supervisor's recorder/analyze/serve) makes; `make_private` repairs a store an older
# version made with the default umask (0755 / 0644), once per store.

PRIVATE_UMASK = 0o077
PRIVATE_KEY = "owner_only"      # kv marker: the store has been walked and repaired
PRIVATE_VERSION = 1


def private_umask() -> None:
    """Make every file this process (and every child it starts) creates owner-only.

    Process-wide and set once, never restored: a umask set and reset around single writes
    races with the other threads (the recorder's writer, the analysis loop, the web server)."""
    if os.name == "posix":
        os.umask(PRIVATE_UMASK)


def open_root(root: Path) -> None:
    """Where a process opens the store: the owner-only umask, and the root made 0700."""
    private_umask()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass
class Exposure:
    """Entries under a store that another account could read or write."""

    root: Path
    root_mode: int
    count: int = 0
    examples: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def root_open(self) -> bool:
        """Others can enter the root: the per-file modes are then all that protects them."""
        return bool(self.root_mode & 0o077)


def _walk(root: Path, limit: int | None = None) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under ``root`` (root first), never through a symlink, never onto another
    filesystem (a user's mount inside the store is not ours to change)."""
    try:
        top = os.lstat(root)
    except OSError:
        return
    yield root, top
    seen = 1
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            p = Path(dirpath) / name
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_dev != top.st_dev:
                dirnames.remove(name)
                continue
            yield p, st
            seen += 1
            if limit is not None and seen >= limit:
                return


def exposure(root: Path, *, limit: int = 200_000, examples: int = 5) -> Exposure:
    """What in the store others can read (for `doctor`): the root's mode, how many entries
    grant group/other any access, and a few of them."""
    try:
        mode = stat.S_IMODE(os.lstat(root).st_mode)
    except OSError:
        return Exposure(root, 0o700)
    out = Exposure(root, mode)
    for p, st in _walk(root, limit):
        out.checked += 1
        if stat.S_IMODE(st.st_mode) & 0o077:
            out.count += 1
            if len(out.examples) < examples:
                out.examples.append(f"{oct(stat.S_IMODE(st.st_mode))[2:]} {p}")
    return out


def make_private(root: Path) -> int:
    """Take group and other access off every entry of the store we own (the owner's own bits,
    executables included, stay); returns how many entries changed. Symlinks are not
    followed, other filesystems not entered, other users' files left alone."""
    if os.name != "posix":
        return 0
    me = os.geteuid()
    changed = 0
    for p, st in _walk(root):
        mode = stat.S_IMODE(st.st_mode)
        if not mode & 0o077 or st.st_uid != me:
            continue
        try:
            os.chmod(p, mode & ~0o077)
            changed += 1
        except OSError:
            continue
    return changed
