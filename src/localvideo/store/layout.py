"""Where files live under the state root.

``observer-recordings/<device-id>/<YYYY-MM-DD>/chunk_<HHMMSS>_<ms>.mp4`` follows the seed's
recorder (Fazm's ``observer-recordings`` cache), with a date folder so a day can be listed
or deleted with ordinary tools.
"""

from __future__ import annotations

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
