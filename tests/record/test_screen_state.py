"""A locked screen is in the index as such (frames.state), never encoded as video, and the
timeline shows the span — through the real recorder, encoder and SQLite, fed by a scripted
backend that raises what the Windows backend raises on the lock screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from record_helpers import Step, decode_all, glyph, run_scripted, solid

from localvideo.errors import NotFoundError, ScreenLockedError
from localvideo.record import recorder as rec_mod
from localvideo.service import Service


def test_locked_screen_is_indexed_as_locked(make_service: Callable[..., Service],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec_mod, "LOCKED_RETRY", 0.0)   # try again at the next tick
    svc = make_service()
    a = glyph(solid(320, 200), 40, 40)
    b = glyph(a, 80, 40)
    locked = ScreenLockedError("the screen is locked (the secure desktop is in front)")
    steps = [Step(a), Step(a), Step(a, error=locked), Step(a, error=locked),
             Step(a, error=locked), Step(b), Step(b)]
    summary = run_scripted(svc, steps)
    rows = [dict(r) for r in svc.db.query("SELECT * FROM frames ORDER BY ts, id")]
    states = [r["state"] for r in rows]
    assert states == [None, None, "locked", "locked", "locked", None, None], states
    for r in rows:
        if r["state"] == "locked":
            assert r["chunk_id"] is None and r["pts"] is None
            assert r["title"] == "[screen locked]"
    # A moment of the lock has no picture, and says why (not "excluded for privacy").
    with pytest.raises(NotFoundError, match="the screen was locked"):
        svc.record.frame_image(next(r["ts"] for r in rows if r["state"] == "locked"))
    # The chunk ended at the lock and a new one began after it: no video of the lock.
    chunks = svc.record.chunks()
    assert len(chunks) == 2 and summary["frames_encoded"] == 2
    for c in chunks:
        assert len(decode_all(Path(c.abs_path))) >= 1
    spans = [s for s in svc.analyze.timeline() if s.screen]
    assert [s.screen for s in spans] == ["locked"], svc.analyze.timeline()
    assert spans[0].title == "[screen locked]" and spans[0].frames == 3
    # However short, a locked span between two runs of one window stays on the timeline
    # (a glance at another window is folded into the session around it; a lock is not).
    assert [s.title for s in svc.analyze.timeline()] == ["term", "[screen locked]", "term"]
