"""The analysis loop on real chunks: key frames, restarts, a chunk still being written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import plain
import pytest
from analyze_chunks import ChunkWriter, Shot, render, write_chunk

from localvideo.analyze.loop import ChunkReader
from localvideo.analyze.sampler import FrameRow, Sampler
from localvideo.service import Service

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]


def switching_shots(n: int) -> list[Shot]:
    """n windows one after the other, each showing its own word: n key frames."""
    shots = []
    for i in range(n):
        word = WORDS[i % len(WORDS)] + str(i)
        shots.append(Shot(i * 1.0, render([f"window {word}"]), f"app{i % 3}", f"doc {i}"))
        shots.append(Shot(i * 1.0 + 0.5, None, f"app{i % 3}", f"doc {i}"))
    return shots


@contextmanager
def following(svc: Service, poll: float) -> Iterator[dict[str, Any]]:
    """``analyze --follow`` in a thread for the length of the block; then stopped and
    joined, and the dict holds what it returned."""
    stop = threading.Event()
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(
        plain.analyze(svc, follow=True, stop=stop, reasoner="offline", poll=poll)))
    t.start()
    try:
        yield result
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive(), "the follow loop did not stop"


def keyframes(svc: Service) -> list[tuple[float, str]]:
    return [(r["ts"], r["text"]) for r in svc.db.query(
        "SELECT f.ts, t.text FROM frame_text t JOIN frames f ON f.id = t.frame_id ORDER BY f.ts")]


def row(i: int, ts: float, app: str = "a", title: str = "t", excluded: bool = False) -> FrameRow:
    return FrameRow(i, ts, ts, app, title, 0, 0, 100, 100, excluded)


def test_sampler_picks_switches_large_changes_and_a_cadence() -> None:
    s = Sampler(interval=10.0)
    blank = np.full((60, 160), 255, np.uint8)
    one_line = blank.copy()
    one_line[10:14, 5:60] = 0                       # a small edit
    half = blank.copy()
    half[:30] = 0                                   # half the window changed
    assert s.decide(row(1, 0.0), blank) == "start"
    assert s.decide(row(2, 1.0), one_line) is None          # small, too soon
    assert s.decide(row(3, 2.0), half) == "change"
    assert s.decide(row(4, 3.0, title="other"), half) == "switch"
    assert s.decide(row(5, 4.0, title="other"), half) is None   # nothing moved
    assert s.decide(row(6, 14.0, title="other"), half) is None  # quiet: no cadence
    edited = half.copy()
    edited[40:44, 5:60] = 0
    assert s.decide(row(7, 13.5, title="other"), edited) == "cadence"
    assert s.decide(row(8, 14.0, title="other", excluded=True), blank) is None
    assert s.decide(row(9, 15.0, title="other"), edited) == "switch"   # back from excluded
    # End of a chunk: the last edit is read even when it was small.
    edited2 = edited.copy()
    edited2[50:54, 5:60] = 0
    assert s.decide(row(10, 16.0, title="other"), edited2) is None
    assert s.settle(row(10, 16.0, title="other"), edited2) == "end"
    assert s.settle(row(10, 16.0, title="other"), edited2) is None


def test_whole_chunk_reads_each_window_once_and_crops(svc: Service, data_dir: Path,
                                                      t0: float) -> None:
    box = (100, 60, 300, 120)
    outside = render(["outside words"], box=box)
    # Text outside the window rectangle must not be read: draw some there.
    from analyze_chunks import FONT
    from PIL import ImageDraw, ImageFont
    ImageDraw.Draw(outside).text((5, 300), "leakedword", fill="white",
                                 font=ImageFont.truetype(FONT, 20))
    write_chunk(svc.db, data_dir, t0, [Shot(0, outside, "term", "t", box=box),
                                       Shot(1, None, "term", "t", box=box)])
    res = plain.analyze(svc, reasoner="offline")
    assert res["keyframes"] == 1 and res["chunks_done"] == 1
    # By words: the index holds no word from outside the window (by meaning the nearest
    # text is always found, so the keyword index is what tells).
    assert plain.search(svc, "outside", mode="keyword")
    assert not plain.search(svc, "leakedword", mode="keyword")
    again = plain.analyze(svc, reasoner="offline")
    assert again["keyframes"] == 0 and again["frames"] == 0


def test_stop_midway_then_rerun_nothing_twice_nothing_skipped(
        svc: Service, data_dir: Path, t0: float, tmp_path: Path) -> None:
    shots = switching_shots(8)
    # Reference: the same chunk analysed in one go in another store.
    ref = Service.open(tmp_path / "ref", recover=False)
    write_chunk(ref.db, ref.settings.data_dir, t0, shots)
    plain.analyze(ref, reasoner="offline")
    expected = keyframes(ref)
    assert len(expected) == 8

    write_chunk(svc.db, data_dir, t0, shots)
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def on_progress(ev: dict[str, Any]) -> None:
        if ev["event"] == "keyframe":
            seen.append(ev)
            if len(seen) == 3:
                stop.set()

    first = plain.analyze(svc, reasoner="offline", stop=stop, on_progress=on_progress)
    assert first["stopped"] and first["keyframes"] == 3
    assert plain.analysis_status(svc)["chunks_pending"] == 1
    plain.analyze(svc, reasoner="offline", on_progress=on_progress)
    assert keyframes(svc) == expected
    read = [ev["frame_id"] for ev in seen]
    assert len(read) == len(set(read)) == 8          # every key frame OCR'd exactly once


@pytest.mark.parametrize("how", ["kill-9", "ctrl-c"])
def test_killed_process_resumes_where_it_stopped(data_dir: Path, t0: float,
                                                 tmp_path: Path, how: str) -> None:
    shots = switching_shots(16)
    ref = Service.open(tmp_path / "ref", recover=False)
    write_chunk(ref.db, ref.settings.data_dir, t0, shots)
    ChunkReader(ref.settings, ref.db).run_pass()
    expected = keyframes(ref)

    svc = Service.open(data_dir, recover=False)
    write_chunk(svc.db, data_dir, t0, shots)
    cmd = [sys.executable, "-m", "localvideo", "analyze", "--data-dir", str(data_dir),
           "--reasoner", "offline"]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches tesseract too.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    end = time.time() + 60
    while time.time() < end and proc.poll() is None:
        if svc.db.one("SELECT COUNT(*) FROM frame_text")[0] >= 3:
            break
        time.sleep(0.02)
    if how == "kill-9":
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    else:
        os.killpg(proc.pid, signal.SIGINT)
        out_, err_ = proc.communicate(timeout=30)
        assert proc.returncode == 0, err_
        assert "(stopped)" in out_
    done_before = svc.db.one("SELECT COUNT(*) FROM frame_text")[0]
    assert 3 <= done_before < len(expected), "the kill should land mid-chunk"
    ids_before = {r[0] for r in svc.db.query("SELECT frame_id FROM frame_text")}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert keyframes(svc) == expected
    # The rerun read only what the killed run had not: its count adds up exactly.
    rerun = plain.analysis_status(svc)
    assert rerun["chunks_pending"] == 0 and rerun["frames_read"] == len(expected)
    assert ids_before <= {r[0] for r in svc.db.query("SELECT frame_id FROM frame_text")}
    svc.close()


def test_follow_reads_past_unindexed_copies_of_a_still_picture(svc: Service,
                                                             data_dir: Path) -> None:
    """The recorder re-encodes a still picture once (no index row) so the muxer writes it
    out; follow mode must step over such a copy, not wait at it for the chunk to close."""
    start = time.time() - 30
    writer = ChunkWriter(svc.db, data_dir, start, name="copies")
    writer.add(Shot(0.0, render(["first words nectarine"]), "xterm", "one"))
    writer.add(Shot(0.5, None, "xterm", "one"))
    writer.push_out(0.5)                       # the unindexed copy
    writer.add(Shot(4.0, render(["later words guanabana"]), "xterm", "two"))
    writer.add(Shot(4.5, render(["later words guanabana_"]), "xterm", "two"))
    writer.push_out(5.0)
    try:
        with following(svc, poll=0.2):
            deadline = time.time() + 20
            while time.time() < deadline and not plain.search(svc, "guanabana", mode="keyword"):
                time.sleep(0.1)
            assert plain.search(svc, "guanabana", mode="keyword"), \
                "follow mode stopped at the unindexed copy"
            assert plain.search(svc, "nectarine", mode="keyword")
            row = svc.db.one("SELECT done FROM analysis_progress WHERE chunk_id = ?",
                             (writer.chunk_id,))
            assert row is not None and row[0] == 0      # still being written
    finally:
        writer.close()


def test_follow_reads_a_chunk_while_it_is_written(svc: Service, data_dir: Path) -> None:
    start = time.time()
    writer = ChunkWriter(svc.db, data_dir, start, name="live")
    writer.add(Shot(0.0, render(["first window tangerine"]), "xterm", "one"))
    with following(svc, poll=0.3) as result:
        found_at: dict[str, float] = {}
        words = ["persimmon", "rambutan", "kumquat"]
        for i, word in enumerate(words):
            time.sleep(0.6)
            writer.add(Shot(time.time() - start, render([f"now showing {word}"]), "xterm",
                            f"win {i}"))
            written = time.time()
            # The MP4 muxer writes a frame's fragment when the next frame arrives (it needs
            # the duration): a blinking cursor is that next frame on a real screen.
            time.sleep(0.3)
            writer.add(Shot(time.time() - start, render([f"now showing {word}_"]), "xterm",
                            f"win {i}"))
            deadline = written + 20
            while time.time() < deadline and not plain.search(svc, word, mode="keyword"):
                time.sleep(0.1)
            assert plain.search(svc, word, mode="keyword"), \
                f"{word} was not found while the chunk was being written"
            found_at[word] = time.time() - written
        row = svc.db.one("SELECT done FROM analysis_progress WHERE chunk_id = ?",
                         (writer.chunk_id,))
        assert row is not None and row[0] == 0           # still being written: not done
        writer.add(Shot(time.time() - start, render(["last words zucchini"]), "xterm", "end"))
        writer.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            row = svc.db.one("SELECT done FROM analysis_progress WHERE chunk_id = ?",
                             (writer.chunk_id,))
            if row is not None and row[0] == 1:
                break
            time.sleep(0.1)
        assert row is not None and row[0] == 1
        assert plain.search(svc, "zucchini", mode="keyword")
        assert plain.search(svc, "tangerine", mode="keyword")
        assert max(found_at.values()) < 10          # the lag goal
    # Five windows; the cursor frame before each switch may be read too ("leave").
    assert result["stopped"] and 5 <= result["keyframes"] <= 8
    assert plain.analysis_status(svc)["frames_read"] == result["keyframes"]   # none twice


def test_timeline_merges_short_interruptions(svc: Service, t0: float) -> None:
    cur = svc.db.execute("INSERT INTO chunks(path, device_id, start_ts, state) "
                         "VALUES ('x.mp4', 'd', ?, 'closed')", (t0,))
    cid = cur.lastrowid

    def frames(app: str, title: str, a: float, b: float, excluded: int = 0) -> None:
        ts = a
        while ts < b - 1e-9:
            svc.db.execute("INSERT INTO frames(chunk_id, ts, pts, app, title, excluded) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (cid, t0 + ts, ts, app, title, excluded))
            ts += 0.5

    frames("code", "main.py", 0, 60)
    frames("slack", "general", 60, 64)         # a 4 s glance: merged away
    frames("code", "main.py", 64, 120)
    frames("firefox", "docs", 120, 150)       # a real switch
    frames("keepassxc", "vault", 150, 152, excluded=1)
    frames("firefox", "docs", 152, 160)
    frames("firefox", "docs", 400, 410)       # after a long idle gap: a new session
    tl = plain.timeline(svc)
    assert [(s["app"], s["title"]) for s in tl] == [
        ("code", "main.py"), ("firefox", "docs"), ("firefox", "docs")]
    assert tl[0]["duration"] == pytest.approx(120.0) and tl[0]["frames"] == 240
    assert tl[1]["duration"] == pytest.approx(40.0)      # the 2 s excluded glance folded in
    assert tl[2]["start_ts"] == t0 + 400 and tl[2]["duration"] == pytest.approx(10.0)
    # For a reasoner the excluded window is a hole, never merged over.
    from localvideo.analyze.index import sessions
    holes = sessions(svc.db, drop_excluded=True)
    assert [(s.start_ts - t0, s.end_ts - t0) for s in holes][1:3] == [(120, 150), (152, 160)]
    # The excluded window is a session of its own for the user, without its title.
    with_excluded = [s.to_dict() for s in sessions(svc.db, merge_gap=1.0)]
    assert any(s["excluded"] and s["title"] == "(excluded)" and s["app"] == "keepassxc"
               for s in with_excluded)
    assert all("vault" not in s["title"] for s in with_excluded)
    only = plain.timeline(svc, since=t0 + 130, until=t0 + 140)
    assert len(only) == 1 and only[0]["duration"] == pytest.approx(10.0)


def test_last_frame_before_a_switch_is_read(svc: Service, data_dir: Path, t0: float) -> None:
    lines = ["$ vim notes.txt", "meeting at noon"]
    write_chunk(svc.db, data_dir, t0, [
        Shot(0.0, render(lines), "xterm", "notes"),
        # A small edit two seconds later: no large change, too soon for the cadence.
        Shot(2.0, render(lines + ["bring the kazoo"]), "xterm", "notes"),
        Shot(2.5, None, "xterm", "notes"),
        Shot(3.0, render(["inbox zero"]), "mail", "Inbox"),
        Shot(4.0, None, "mail", "Inbox"),
    ])
    events: list[dict[str, Any]] = []
    plain.analyze(svc, reasoner="offline", on_progress=events.append)
    reasons = [(e["title"], e["reason"]) for e in events if e["event"] == "keyframe"]
    assert reasons == [("notes", "start"), ("notes", "leave"), ("Inbox", "switch")]
    assert plain.search(svc, "kazoo", mode="keyword")


@pytest.mark.parametrize("gap", [0.5, 30.0])
def test_a_contiguous_next_chunk_does_not_reread_the_same_screen(
        svc: Service, data_dir: Path, t0: float, gap: float) -> None:
    screen = render(["steady text on screen"])
    a = write_chunk(svc.db, data_dir, t0, [Shot(0, screen, "xterm", "t"),
                                           Shot(1, None, "xterm", "t")], name="a")
    b_start = t0 + 1 + gap
    write_chunk(svc.db, data_dir, b_start, [Shot(0, screen, "xterm", "t"),
                                            Shot(1, None, "xterm", "t")], name="b")
    plain.analyze(svc, reasoner="offline")
    per_chunk = dict(svc.db.query("SELECT chunk_id, keyframes FROM analysis_progress"))
    assert per_chunk[a.chunk_id] == 1
    # Right after the previous chunk the same screen is not read again; after a gap it is.
    assert sum(per_chunk.values()) == (1 if gap < 5 else 2)


def test_one_analysis_loop_per_data_dir(svc: Service, data_dir: Path) -> None:
    from localvideo.errors import UsageError

    with following(svc, poll=0.2):
        deadline = time.time() + 10
        while time.time() < deadline and not (data_dir / "analyze.lock").exists():
            time.sleep(0.05)
        time.sleep(0.3)
        r = subprocess.run([sys.executable, "-m", "localvideo", "analyze", "--data-dir",
                            str(data_dir)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
        assert "already running" in r.stderr and f"kill {os.getpid()}" in r.stderr
    plain.analyze(svc, reasoner="offline")       # the lock went with the first loop
    with pytest.raises(UsageError):
        from localvideo.analyze.lock import AnalyzeLock
        with AnalyzeLock(data_dir), AnalyzeLock(data_dir):
            pass


def test_a_file_cut_anywhere_never_yields_a_wrong_frame(svc: Service, data_dir: Path,
                                                        t0: float, tmp_path: Path) -> None:
    from localvideo.analyze.sampler import decode

    w = write_chunk(svc.db, data_dir, t0, [Shot(i * 0.5, render([f"line {i}"] * (i + 1)))
                                           for i in range(6)])
    full = {d.pts: d.gray().copy() for d in decode(w.path)}
    assert len(full) == 6
    data = w.path.read_bytes()
    cut_file = tmp_path / "cut.mp4"
    seen = 0
    # Every way a reader can find the file while the recorder is halfway through a write.
    for cut in range(len(data) - 1, 200, -29):
        cut_file.write_bytes(data[:cut])
        for d in decode(cut_file):
            assert np.array_equal(d.gray(), full[d.pts]), f"frame {d.pts} wrong at {cut} bytes"
            seen += 1
    assert seen > 0


def test_incremental_decoder_matches_a_full_decode(svc: Service, data_dir: Path) -> None:
    from localvideo.analyze.sampler import ChunkDecoder, decode

    w = ChunkWriter(svc.db, data_dir, time.time(), name="growing")
    dec = ChunkDecoder(w.path)
    got: list[tuple[float, np.ndarray]] = []
    after = None
    for i in range(8):
        w.add(Shot(i * 0.5, render([f"word {i}"] * (i + 1))))
        for d in dec.frames(after):
            got.append((d.pts, d.gray().copy()))
            after = d.pts
        assert list(dec.frames(after)) == []          # nothing new: nothing decoded again
    w.close()
    got += [(d.pts, d.gray().copy()) for d in dec.frames(after, final=True)]
    full = [(d.pts, d.gray()) for d in decode(w.path)]
    assert [p for p, _ in got] == [p for p, _ in full] == [i * 0.5 for i in range(8)]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, full, strict=True))
    # A caller that stopped right after a frame gets it again on the next pass.
    again = ChunkDecoder(w.path)
    first = next(iter(again.frames(None, final=True)))
    assert [d.pts for d in again.frames(None, final=True)][:2] == [first.pts, 0.5]


def test_leave_is_read_before_the_switch_frame_reaches_the_disk(svc: Service,
                                                                data_dir: Path) -> None:
    start = time.time()
    w = ChunkWriter(svc.db, data_dir, start, name="live")
    lines = ["draft reply"]
    w.add(Shot(0.0, render(lines), "mail", "Compose"))
    w.add(Shot(1.0, render(lines + ["see you at the ossuary"]), "mail", "Compose"))
    # The switch is in the index, but its frame stays in the muxer until another one comes.
    w.add(Shot(2.0, render(["terminal"]), "xterm", "shell"))
    events: list[dict[str, Any]] = []
    reader = ChunkReader(svc.settings, svc.db, on_progress=events.append)
    reader.run_pass()
    reasons = [(e["title"], e["reason"]) for e in events if e["event"] == "keyframe"]
    assert reasons == [("Compose", "start"), ("Compose", "leave")]
    assert plain.search(svc, "ossuary", mode="keyword")
    w.add(Shot(2.5, render(["terminal", "$"]), "xterm", "shell"))
    reader.run_pass()
    reasons = [(e["title"], e["reason"]) for e in events if e["event"] == "keyframe"]
    assert reasons[2:] == [("shell", "switch")]          # and the leave is not read twice
    w.close()
