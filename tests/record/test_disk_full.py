"""A full disk, for real: the store lives on a small tmpfs mounted for the test (needs root;
failing with the reason otherwise)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import plain
from record_helpers import Step, decode_all, run_scripted, solid

from localvideo.config import load_settings
from localvideo.record.encoder import plan_encoders
from localvideo.service import Service


def _service(data: Path, **record: object) -> Service:
    svc = Service(load_settings(data, {"record": {"fps": 20.0, **record}}))
    svc.record.recover()
    return svc


def test_low_space_pauses_and_resumes_when_space_returns(small_disk: Path) -> None:
    data = small_disk / "lv"
    svc = _service(data, min_free_bytes=6_000_000)
    # Probe the encoders first (once per data dir; a hardware encoder failing in process is
    # also tried through the ffmpeg program): the timing below is about the disk only.
    plan_encoders(data, svc.settings.record.codec)
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * 8_000_000)                    # leaves ~4 MB: below the minimum
    grabbed_at: list[float] = []
    removed_at: list[float] = []

    def free_space() -> None:
        removed_at.append(time.time())
        filler.unlink()

    timer = threading.Timer(1.5, free_space)
    timer.start()
    px = solid(200, 100)
    t0 = time.time()
    summary = run_scripted(svc, [Step(px)] * 3, on_step=lambda i: grabbed_at.append(time.time()))
    timer.join()
    assert removed_at and grabbed_at[0] >= removed_at[0]    # nothing grabbed while paused
    assert grabbed_at[0] - t0 >= 1.4
    assert summary["frames_seen"] == 3 and summary["disk_paused"] is False
    log = (data / "logs" / "recorder.log").read_text()
    assert "recording paused" in log and "below min_free_bytes" in log
    assert "recording resumed" in log
    assert plain.chunks(svc)[0]["frames"] == 2       # one picture + its push-out repeat
    svc.close()


def test_enospc_mid_chunk_keeps_index_and_closed_chunks(small_disk: Path) -> None:
    data = small_disk / "lv"
    svc = _service(data, min_free_bytes=0, chunk_seconds=0.4, quality=0)
    rng = np.random.default_rng(7)
    # Noise at CRF 0 does not compress: ~0.5 MB a frame fills 12 MB within a second or two.
    steps = [Step(rng.integers(0, 255, (360, 480, 4), dtype=np.uint8), screen=(480, 360))
             for _ in range(60)]
    # Once paused the recorder grabs nothing more, so the run ends by its duration.
    summary = run_scripted(svc, steps, timeout=4)
    assert summary["disk_paused"] is True and summary["frames_seen"] < len(steps)
    assert "disk full" in (summary["last_error"] or "")
    # The index is intact and still answers.
    assert svc.db.one("PRAGMA integrity_check")[0] == "ok"
    chunks = plain.chunks(svc)
    closed = [c for c in chunks if c["state"] == "closed" and c["frames"]]
    assert closed, chunks
    for c in closed[:-1]:
        # Every chunk closed before the disk filled decodes completely.
        assert len(decode_all(Path(c["abs_path"]))) == c["frames"]
    svc.close()
    # Space comes back: a later command sees a consistent store and recording works again.
    for c in chunks:
        Path(c["abs_path"]).unlink(missing_ok=True)
    svc2 = _service(data, min_free_bytes=0)
    s2 = run_scripted(svc2, [Step(solid(64, 64))])
    assert s2["frames_encoded"] == 1 and s2["disk_paused"] is False
    svc2.close()
