"""Retrieval benchmark: keyword vs semantic vs hybrid search over a real recorded session.

Part 1 — quality, live: 16 real xterm windows on distinct topics (bench/search_topics.py)
are shown one after another on a private 1920×1080 Xvfb while ``localvideo record`` records
them; the analysis loop then reads the chunks for real (key frames, tesseract OCR, FTS5, and
the embeddings it makes as it indexes). Each question is asked in keyword, semantic and
hybrid mode (top 10); a hit is right when its window title is the question's window.
Printed: recall@1, recall@10 and MRR on 64 paraphrases that share no content word with their
window (checked, 4-letter stems, title included) and on 23 queries that do; embedding CPU
per hour of recording (a full re-embed of the session, timed) and vector bytes per hour.

Part 2 — scale: synthetic stores of 100k and 1M frames (2 frames a second as recorded, a
key frame every 16th frame as the analysis bench measures on its workload, 8 lines of
Zipf-distributed text and a title each, all embedded by the real model): p50/p95 of a
search in each mode for 120 questions (a quarter with an app filter, a quarter with a time
filter).

    .venv/bin/python bench/search.py                      # both parts
    .venv/bin/python bench/search.py --skip-scale         # quality only (~2 min)
    .venv/bin/python bench/search.py --skip-live --frames 100000
    .venv/bin/python bench/search.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_topics import TOPICS, shared_words  # noqa: E402

MODES = ("keyword", "semantic", "hybrid")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))] if s else 0.0


# -- part 1 ---------------------------------------------------------------------------------

def record_session(root: Path, hold: float) -> Path:
    import record as record_bench  # bench/record.py: its private Xvfb desktop

    data = root / "live"
    desk = record_bench.Desktop()
    env = {**desk.env, "LOCALVIDEO_HOME": str(data), "OMP_THREAD_LIMIT": "1"}
    duration = len(TOPICS) * (hold + 1.0) + 6
    # The service's record operation in a process of its own, as `localvideo record` runs it
    # (called directly so the bench does not depend on the CLI's shape).
    code = ("import sys; from localvideo.service import Service; s = Service.open(sys.argv[1]); "
            "r = getattr(s.record, 'run', s.record); r(duration=float(sys.argv[2]))")
    rec = subprocess.Popen([sys.executable, "-c", code, str(data), str(duration)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(3)
        for i, topic in enumerate(TOPICS):
            text = "\n".join(topic["lines"])  # type: ignore[arg-type]
            script = "printf '%s\\n' " + _shq(text) + "; exec sleep 100000"
            wid = desk.xterm(str(topic["title"]), f"90x12+{80 + (i % 4) * 40}+{80 + i * 20}",
                             script)
            desk.activate(wid)
            time.sleep(hold)
            proc = desk.procs.pop()
            proc.terminate()
            proc.wait(5)
        _, err = rec.communicate(timeout=duration + 60)
        if rec.returncode != 0:
            raise SystemExit(f"localvideo record failed: {err.decode()[-2000:]}")
    finally:
        if rec.poll() is None:
            rec.kill()
        desk.close()
    return data


def _shq(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def analyze_session(data: Path) -> dict[str, Any]:
    from localvideo.analyze import embed
    from localvideo.analyze.loop import ChunkReader
    from localvideo.service import Service
    from localvideo.store import vectors

    svc = Service.open(data, recover=True)
    t = time.time()
    reader = ChunkReader(svc.settings, svc.db)
    stats = reader.run_pass()
    analyze_s = time.time() - t
    span = svc.db.one("SELECT MIN(ts), MAX(ts), COUNT(*) FROM frames")
    recorded_s = float(span[1] - span[0]) if span and span[0] is not None else 0.0
    # Embedding cost on its own: re-embed the whole session from nothing, CPU-timed.
    emb = embed.get_embedder()
    cpu0 = time.process_time()
    res = embed.reindex(svc.db, emb, force=True)
    embed_cpu = time.process_time() - cpu0
    model = vectors.active_model(svc.db)
    st = vectors.stats(svc.db, model)
    svc.close()
    hours = recorded_s / 3600 if recorded_s else 1.0
    # Rows' bytes, not file pages: a session of a minute would be all fixed page overhead.
    return {"svc_data": str(data), "recorded_s": round(recorded_s, 1), "frames": span[2],
            "keyframes": res["frames"], "analyzed_keyframes": stats.keyframes,
            "blocks": st["blocks"], "links": st["links"], "analyze_s": round(analyze_s, 1),
            "embed_cpu_s": round(embed_cpu, 3),
            "embed_cpu_s_per_hour": round(embed_cpu / hours, 1),
            "embed_core_pct": round(embed_cpu / recorded_s * 100, 3) if recorded_s else None,
            "vector_bytes": st["bytes"],
            "vector_bytes_per_keyframe": round(st["bytes"] / max(1, res["frames"])),
            "vector_mb_per_hour": round(st["bytes"] / hours / 1e6, 2)}


def _dbstat_bytes(db: Any) -> int | None:
    """Pages the vector tables take in the file (dbstat), when SQLite has it."""
    try:
        row = db.one("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'vec_%' "
                     "OR name LIKE 'sqlite_autoindex_vec_%'")
    except Exception:  # noqa: BLE001 — dbstat is a compile-time option
        return None
    return int(row[0]) if row and row[0] else None


def evaluate(data: Path, limit: int = 10) -> dict[str, Any]:
    from localvideo.analyze import embed
    from localvideo.service import Service

    svc = Service.open(data, recover=False)
    sets: dict[str, list[tuple[str, str]]] = {"paraphrase": [], "shared words": []}
    leaks = []
    for t in TOPICS:
        for q in t["para"]:  # type: ignore[attr-defined]
            if shared_words(q, t):
                leaks.append(q)
            sets["paraphrase"].append((q, str(t["title"])))
        for q in t["words"]:  # type: ignore[attr-defined]
            sets["shared words"].append((q, str(t["title"])))
    if leaks:
        raise SystemExit(f"paraphrases sharing words with their screen: {leaks}")
    seen_titles = {r[0] for r in svc.db.query("SELECT DISTINCT title FROM frames")}
    missing = [str(t["title"]) for t in TOPICS if t["title"] not in seen_titles]
    out: dict[str, Any] = {"missing_windows": missing, "sets": {}}
    misses: list[str] = []
    for name, qs in sets.items():
        row: dict[str, Any] = {"questions": len(qs)}
        for mode in MODES:
            r1 = r10 = rr = 0.0
            for q, title in qs:
                try:
                    hits = embed.search(svc.db, q, mode=mode, limit=limit,
                                        models_dir=svc.settings.models_dir)
                except Exception:  # noqa: BLE001 — a query keyword mode cannot take finds nothing
                    hits = []
                rank = next((i + 1 for i, h in enumerate(hits) if h["title"] == title), None)
                if rank is not None:
                    r1 += rank == 1
                    r10 += 1
                    rr += 1 / rank
                elif mode == "hybrid":
                    misses.append(f"{q!r} → {hits[0]['title'] if hits else 'nothing'}")
            n = len(qs)
            row[mode] = {"recall@1": round(r1 / n, 3), "recall@10": round(r10 / n, 3),
                         "mrr": round(rr / n, 3)}
        out["sets"][name] = row
    out["hybrid_misses"] = misses
    svc.close()
    return out


# -- part 2 ---------------------------------------------------------------------------------

def build_store(root: Path, frames: int, every: int, seed: int = 7) -> dict[str, Any]:
    from localvideo.analyze import embed
    from localvideo.store import text as text_db
    from localvideo.store.db import Database

    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}"
             f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}"
             f"{rng.choice('bcdfghklmnprstvz')}{i}" for i in range(20000)]
    # Real words among them, so the questions' words hit some frames.
    vocab[100:100] = sorted({w.lower() for t in TOPICS for line in t["lines"]  # type: ignore
                             for w in line.split() if w.isalpha()})
    weights = [1 / (i + 1) for i in range(len(vocab))]
    apps = ["firefox", "xterm", "code", "slack", "evince", "gimp", "thunderbird", "libreoffice",
            "zoom", "obsidian", "postman", "dbeaver"]
    path = root / f"scale-{frames}.sqlite3"
    db = Database(path)
    start = time.time() - frames * 0.5
    t = time.time()
    with db.tx() as conn:
        conn.execute("INSERT INTO chunks(path, device_id, start_ts, state) "
                     "VALUES ('synthetic.mp4', 'bench', ?, 'closed')", (start,))
        app, title = apps[0], ""
        for i in range(frames):
            key = i % every == 0
            if key:
                app = apps[rng.randrange(len(apps))]
                title = " ".join(rng.choices(vocab[:2000], weights[:2000], k=4))
            ts = start + i * 0.5
            conn.execute("INSERT INTO frames(id, chunk_id, ts, pts, app, title, changed) "
                         "VALUES (?, 1, ?, ?, ?, ?, 1)", (i + 1, ts, i * 0.5, app, title))
            if key:
                text = "\n".join(" ".join(rng.choices(vocab, weights, k=6)) for _ in range(8))
                conn.execute("INSERT INTO frame_text(frame_id, text, words) VALUES (?, ?, '[]')",
                             (i + 1, text))
                text_db.index_text(conn, i + 1, text, app, title)
    fts_s = time.time() - t
    t = time.time()
    cpu = time.process_time()
    res = embed.embed_pending(db, embed.get_embedder())
    embed_s, embed_cpu = time.time() - t, time.process_time() - cpu
    hours = frames * 0.5 / 3600
    vec_bytes = _dbstat_bytes(db)
    db.close()
    return {"path": path, "fts_build_s": round(fts_s, 1), "embed_s": round(embed_s, 1),
            "embed_cpu_s": round(embed_cpu, 1), "hours": round(hours, 1),
            "embed_core_pct": round(embed_cpu / (hours * 3600) * 100, 4),
            "keyframes": res["frames"], "vectors": res["vectors"],
            "vector_file_mb": round((vec_bytes or 0) / 1e6, 1),
            "vector_mb_per_hour": round((vec_bytes or 0) / hours / 1e6, 2),
            "db_mb": round(path.stat().st_size / 1e6, 1), "start": start}


def bench_scale(root: Path, frames: int, every: int) -> dict[str, Any]:
    from localvideo.analyze import embed
    from localvideo.store.db import Database

    built = build_store(root, frames, every)
    db = Database(built["path"])
    rng = random.Random(11)
    questions = [q for t in TOPICS for q in t["para"] + t["words"]]  # type: ignore[operator]
    queries: list[dict[str, Any]] = []
    for i in range(120):
        qd: dict[str, Any] = {"q": questions[rng.randrange(len(questions))]}
        if i % 4 == 1:
            qd["app"] = "firefox"
        elif i % 4 == 2:
            qd["since"] = built["start"] + frames * 0.5 * rng.random()
        queries.append(qd)
    embed.search(db, "warm up", mode="hybrid")            # model load, page cache
    out: dict[str, Any] = {k: v for k, v in built.items() if k not in ("path", "start")}
    out["frames"] = frames
    for mode in MODES:
        times = []
        for qd in queries:
            t = time.perf_counter()
            try:
                embed.search(db, qd["q"], mode=mode, app=qd.get("app"), since=qd.get("since"),
                             limit=10)
            except Exception:  # noqa: BLE001 — timing only; keyword mode rejects nothing here
                pass
            times.append((time.perf_counter() - t) * 1000)
        out[mode] = {"p50_ms": round(statistics.median(times), 1),
                     "p95_ms": round(pct(times, 95), 1), "max_ms": round(max(times), 1)}
    db.close()
    built["path"].unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(built["path"]) + suffix).unlink(missing_ok=True)
    return out


# -- report ---------------------------------------------------------------------------------

def print_report(res: dict[str, Any]) -> None:
    live, q = res.get("live"), res.get("quality")
    if q:
        print(f"\nRetrieval on a recorded session of {len(TOPICS)} windows "
              f"({live['recorded_s']} s, {live['keyframes']} key frames, "
              f"{live['blocks']} text blocks embedded)")
        print(f"{'set':<20}{'mode':<10}{'recall@1':>10}{'recall@10':>11}{'MRR':>8}")
        for name, row in q["sets"].items():
            for mode in MODES:
                m = row[mode]
                label = f"{name} ({row['questions']})"
                print(f"{label:<20}{mode:<10}{m['recall@1']:>10.3f}{m['recall@10']:>11.3f}"
                      f"{m['mrr']:>8.3f}")
        if q["missing_windows"]:
            print("windows never seen by the recorder:", q["missing_windows"])
        if q["hybrid_misses"]:
            print("hybrid misses (top 10):", *q["hybrid_misses"], sep="\n  ")
    if live:
        print(f"\nembedding CPU: {live['embed_cpu_s']} s for {live['recorded_s']} s recorded "
              f"= {live['embed_cpu_s_per_hour']} s per hour ({live['embed_core_pct']} % of a "
              f"core); vectors {live['vector_bytes']} B ({live['vector_bytes_per_keyframe']} B "
              f"a key frame) = {live['vector_mb_per_hour']} MB/h at this session's pace of a "
              "window switch every few seconds")
    for s in res.get("scale", []):
        print(f"\n{s['frames']:,} frames = {s['hours']} h at 2 fps ({s['keyframes']:,} key "
              f"frames, {s['vectors']:,} vectors; vector tables {s['vector_file_mb']} MB = "
              f"{s['vector_mb_per_hour']} MB/h; embedding {s['embed_cpu_s']} CPU-s = "
              f"{s['embed_core_pct']} % of a core; index {s['db_mb']} MB):")
        for mode in MODES:
            m = s[mode]
            print(f"  {mode:<9} p50 {m['p50_ms']:>7.1f} ms   p95 {m['p95_ms']:>7.1f} ms   "
                  f"max {m['max_ms']:>7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hold", type=float, default=3.0, help="seconds each window is shown")
    ap.add_argument("--frames", default="100000,1000000",
                    help="scale points, comma-separated frame counts")
    ap.add_argument("--keyframe-every", type=int, default=16)
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--data", type=Path, help="evaluate an already recorded session folder")
    ap.add_argument("--keep", action="store_true", help="keep the recorded session")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lv-search-bench-"))
    res: dict[str, Any] = {}
    try:
        if not args.skip_live:
            data = args.data or record_session(root, args.hold)
            res["live"] = analyze_session(data)
            res["quality"] = evaluate(data)
            if args.keep and not args.data:
                print(f"session kept in {data}", file=sys.stderr)
        if not args.skip_scale:
            res["scale"] = [bench_scale(root, int(n), args.keyframe_every)
                            for n in args.frames.split(",") if n.strip()]
        res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print_report(res)
    os.environ.pop("LOCALVIDEO_HOME", None)


if __name__ == "__main__":
    main()
