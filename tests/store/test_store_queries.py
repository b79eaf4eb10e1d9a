"""The store's query modules on a real SQLite index: what the service tests do not reach.

The service tests cover most of these functions end to end; these pin the parts a caller
relies on without seeing them there: newest-N ordering, that a claim is won once, that a
caller's transaction rolls every write back together, that retries leave and clear the
endpoint error, and that JSON columns come back decoded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from localvideo.store import frames, jobs, observations, requests, text
from localvideo.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "index.sqlite3")


def _chunk(db: Database, path: str, start: float) -> int:
    return frames.open_chunk(db, path=path, device_id="dev", start_ts=start, codec="h264",
                             encoder="libx264", width=640, height=480)


def _frame(chunk_id: int | None, ts: float, app: str = "xterm", title: str = "t",
           excluded: int = 0) -> frames.FrameInsert:
    pts = None if chunk_id is None else ts % 60
    return (chunk_id, ts, pts, app, title, 0, 0, 10, 10, ":1", 1, excluded)


def test_chunks_newest_n_oldest_first_with_apps_in_first_seen_order(db: Database) -> None:
    ids = [_chunk(db, f"c{i}.mp4", 1000.0 + 60 * i) for i in range(4)]
    with db.tx() as conn:
        frames.insert_frames(conn, [_frame(ids[3], 1180.0, "b", "two"),
                                    _frame(ids[3], 1181.0, "a", "one"),
                                    _frame(ids[3], 1182.0, "b", "two")])
    got = frames.list_chunks(db, limit=2)
    assert [c.id for c in got] == ids[2:]
    assert [c.id for c in frames.list_chunks(db, since=1060.0, until=1120.0)] == ids[1:3]
    assert frames.apps_per_chunk(db, [ids[3]]) == [
        frames.AppTitles(ids[3], "b", "two", 2), frames.AppTitles(ids[3], "a", "one", 1)]
    assert frames.apps_per_chunk(db, []) == []


def test_a_failed_transaction_writes_none_of_its_rows(db: Database) -> None:
    cid = _chunk(db, "c.mp4", 1000.0)
    with pytest.raises(RuntimeError), db.tx() as conn:
        frames.insert_frames(conn, [_frame(cid, 1000.5), _frame(cid, 1001.0)])
        frames.update_chunk_progress(conn, cid, end_ts=1001.0, frames=2, size=99)
        raise RuntimeError("killed between the writes")
    assert frames.frame_count(db) == 0
    chunk = frames.get_chunk(db, cid)
    assert chunk is not None and (chunk.frames, chunk.bytes, chunk.end_ts) == (0, 0, 1000.0)


def test_frame_at_is_the_last_at_or_before_and_dropping_a_chunk_keeps_its_frames(
        db: Database) -> None:
    cid = _chunk(db, "c.mp4", 1000.0)
    with db.tx() as conn:
        frames.insert_frames(conn, [_frame(cid, 1000.0, title="first"),
                                    _frame(cid, 1002.0, title="second")])
    assert frames.frame_at(db, 999.0) is None
    hit = frames.frame_at(db, 1001.9)
    assert hit is not None and (hit.title, hit.chunk_path) == ("first", "c.mp4")
    frames.drop_chunk(db, cid)
    assert frames.get_chunk(db, cid) is None
    kept = frames.frame_at(db, 1002.0)
    assert kept is not None and (kept.title, kept.chunk_id, kept.pts) == ("second", None, None)
    assert frames.delete_unchunked_frames(db, 999.0, 1001.0) == 1
    assert frames.frame_count(db) == 1


def test_a_queued_job_is_claimed_once(db: Database) -> None:
    job = jobs.add_job(db, "generate", {"prompt": "a fox"}, pid=1)
    assert jobs.claim_job(db, job, old_pid=1, new_pid=os.getpid())
    assert not jobs.claim_job(db, job, old_pid=1, new_pid=os.getpid() + 1)
    row = jobs.get_job(db, job)
    assert row is not None and row.pid == os.getpid() and row.params == {"prompt": "a fox"}
    jobs.finish_job(db, job, "failed", error={"type": "Interrupted", "message": "m"})
    row = jobs.get_job(db, job)
    assert row is not None and (row.state, row.error, row.result) == (
        "failed", {"type": "Interrupted", "message": "m"}, None)


def test_retry_records_the_endpoint_error_and_success_clears_it(db: Database) -> None:
    first = observations.add_pending(db, 1000.0, 1060.0)
    assert first is not None
    assert observations.add_pending(db, 1000.0, 1060.0) is None     # one window, one row
    later = time.time() + 3600
    observations.mark_retry(db, first, status="pending", attempts=1, next_try_ts=later,
                            reasoner="openai", model="m", error="429",
                            endpoint_error={"message": "429", "observation_id": first})
    assert db.get_kv(observations.ENDPOINT_ERROR_KEY) == {"message": "429",
                                                          "observation_id": first}
    assert observations.due(db, ignore_backoff=False) == []
    assert [o.id for o in observations.due(db, ignore_backoff=True)] == [first]
    assert observations.next_retry_ts(db) == later
    observations.mark_done(db, first, reasoner="openai", model="m", summary="s",
                           activities=["coding"], task={"verdict": "NO_TASK"}, request_ids=[7])
    assert db.get_kv(observations.ENDPOINT_ERROR_KEY) is None
    done = observations.get(db, first)
    assert done is not None
    assert (done.status, done.attempts, done.activities, done.task, done.request_ids) == (
        "done", 2, ["coding"], {"verdict": "NO_TASK"}, [7])
    assert observations.status_counts(db) == {"done": 1}
    assert observations.delete_overlapping(db, 1059.0, 2000.0) == 1


def test_progress_adds_counts_and_a_done_chunk_leaves_the_pending_list(db: Database) -> None:
    cid = _chunk(db, "c.mp4", 1000.0)
    assert [c.id for c in text.pending_chunks(db)] == [cid]
    for done in (False, True):
        with db.tx() as conn:
            text.save_progress(conn, cid, 2.0, done=done, frames=3, keyframes=1, key_ts=1002.0,
                               key_app="xterm", key_title="t", key_thumb=b"\x01")
    assert text.pending_chunks(db) == [] and text.first_pending_chunk(db) is None
    assert text.analysis_counts(db) == text.AnalysisCounts(1, 1, 0, None)
    prev = text.previous_done_chunk(db, cid + 1, 1060.0)
    assert prev is not None and (prev.key_app, prev.key_thumb) == ("xterm", b"\x01")


def test_request_log_comes_back_decoded_newest_first(db: Database) -> None:
    for status in ("error:429", "ok"):
        requests.add_request(db, reasoner="openai", model="m", base_url=None, task="observe",
                             payload={"messages": [status]}, response=None,
                             usage={"in": 3} if status == "ok" else None, status=status,
                             error=None, duration_ms=12.345)
    newest, oldest = requests.recent(db)
    assert (newest.status, newest.request, newest.usage, newest.duration_ms) == (
        "ok", {"messages": ["ok"]}, {"in": 3}, 12.3)
    assert (oldest.status, oldest.usage) == ("error:429", None)
