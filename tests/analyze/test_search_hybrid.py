"""Search by meaning over real chunks: rendered screens encoded to MP4, read by the analysis
loop (real OCR), embedded by the bundled wordllama model into sqlite-vec in the same file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import plain
import pytest
from analyze_chunks import Shot, render, write_chunk

from localvideo.analyze import embed
from localvideo.analyze.loop import ChunkReader
from localvideo.errors import UsageError
from localvideo.service import Service
from localvideo.store import retention, vectors
from localvideo.store.db import Database

T0 = 1_790_000_000.0
PASSPORT = ["Travel document application", "Applicant surname and given names",
            "Upload a recent photograph", "Fee 75 EUR payable by card"]
GROCERY = ["Shopping list", "milk eggs bread butter", "apples bananas oranges"]
BUILD = ["$ make all", "linker error: undefined reference", "make: Error 1"]
PARAPHRASE = "the form for renewing my passport"


def _make_store(root: Path) -> Service:
    s = Service.open(root, recover=False)
    # Three windows at three times: 0 s passport form, 600 s groceries, 1200 s a build.
    write_chunk(s.db, s.settings.data_dir, T0, [
        Shot(0.0, render(PASSPORT), "firefox", "Government services - Mozilla Firefox"),
        Shot(2.0, None, "firefox", "Government services - Mozilla Firefox")], name="a")
    write_chunk(s.db, s.settings.data_dir, T0 + 600, [
        Shot(0.0, render(GROCERY), "gedit", "list.txt - gedit"),
        Shot(2.0, None, "gedit", "list.txt - gedit")], name="b")
    write_chunk(s.db, s.settings.data_dir, T0 + 1200, [
        Shot(0.0, render(BUILD, dark=True), "xterm", "~/src/app"),
        Shot(2.0, None, "xterm", "~/src/app")], name="c")
    stats = ChunkReader(s.settings, s.db).run_pass()
    assert stats.keyframes >= 3 and stats.embedded >= 3, stats
    return s


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = _make_store(tmp_path_factory.mktemp("hybrid"))
    yield s
    s.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Service]:
    """A store of its own for the tests that delete or re-embed."""
    s = _make_store(tmp_path)
    yield s
    s.close()


def _search(s: Service, q: str, **kw: object) -> list[dict[str, object]]:
    return embed.search(s.db, q, models_dir=s.settings.models_dir, **kw)  # type: ignore[arg-type]


def test_the_loop_embeds_what_it_reads(store: Service) -> None:
    m = vectors.active_model(store.db)
    assert m is not None and m.name == "wordllama"
    st = vectors.stats(store.db, m)
    assert st["frames"] >= 3 and st["blocks"] >= 3      # a block (with its title) per window
    assert st["links"] >= st["frames"]
    # Nothing left to embed: a second pass adds no vectors.
    again = embed.embed_pending(store.db, embed.get_embedder())
    assert again["frames"] == 0 and again["vectors"] == 0


def test_a_paraphrase_is_found_by_meaning_and_not_by_words(store: Service) -> None:
    assert _search(store, PARAPHRASE, mode="keyword") == []
    for mode in ("semantic", "hybrid"):
        hits = _search(store, PARAPHRASE, mode=mode)
        assert hits, mode
        top = hits[0]
        assert top["app"] == "firefox" and top["matched"] == "meaning", (mode, hits)
        assert "Travel document" in str(top["snippet"])
        assert top["chunk_path"] and top["offset"] is not None
    # hybrid is the default once vectors exist.
    assert embed.resolve_mode(store.db, None) == "hybrid"
    assert _search(store, PARAPHRASE)[0]["app"] == "firefox"


def test_shared_words_match_both_ways_and_say_so(store: Service) -> None:
    hits = _search(store, "shopping list", mode="hybrid")
    assert hits[0]["app"] == "gedit" and hits[0]["matched"] == "both"
    assert "[Shopping]" in str(hits[0]["snippet"])
    kw = _search(store, "shopping list", mode="keyword")
    assert kw and all(h["matched"] == "words" for h in kw)


def test_time_and_app_filters_apply_to_meaning(store: Service) -> None:
    # Unrelated text is no match by meaning; with the floor off the filter alone decides.
    assert _search(store, PARAPHRASE, mode="semantic", app="gedit") == []
    hits = _search(store, PARAPHRASE, mode="semantic", app="gedit", min_score=-1.0)
    assert hits and {h["app"] for h in hits} == {"gedit"}
    later = _search(store, PARAPHRASE, mode="hybrid", since=T0 + 300, min_score=-1.0)
    assert later and all(float(h["ts"]) >= T0 + 300 for h in later)   # type: ignore[arg-type]
    assert "firefox" not in {h["app"] for h in later}
    early = _search(store, "compiler failure", mode="semantic", until=T0 + 700)
    assert all(float(h["ts"]) <= T0 + 700 for h in early)               # type: ignore[arg-type]
    assert _search(store, "compiler failure", mode="semantic")[0]["app"] == "xterm"


def test_bad_modes_and_no_vectors_are_clear_errors(store: Service, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown search mode"):
        _search(store, "x", mode="fuzzy")
    empty = Service.open(tmp_path, recover=False)
    try:
        assert embed.resolve_mode(empty.db, None) == "keyword"
        with pytest.raises(UsageError) as err:
            embed.search(empty.db, "passport", mode="semantic")
        assert "localvideo analyze --reindex" in (err.value.hint or "")
    finally:
        empty.close()


def test_deleting_a_range_deletes_its_vectors(fresh: Service) -> None:
    db = fresh.db
    fids = [r[0] for r in db.query("SELECT id FROM frames WHERE ts < ?", (T0 + 300,))]
    marks = ",".join("?" * len(fids))
    items = [r[0] for r in db.query(
        f"SELECT item_id FROM vec_frames WHERE frame_id IN ({marks})", fids)]
    assert items
    total = db.one("SELECT COUNT(*) FROM vec_items")[0]
    # A connection that never loaded sqlite-vec (the recorder's retention, a CLI delete)
    # deletes the vectors all the same: plain cascades in the deleting transaction. This is
    # the store call that retention and `delete --since --until` make.
    other = Database(fresh.settings.db_path)
    try:
        assert not vectors.has_vec(other)
        chunk = [r[0] for r in other.query("SELECT id FROM chunks WHERE start_ts < ?",
                                           (T0 + 300,))]
        out = retention.delete_chunks(other, fresh.settings.data_dir, chunk)
    finally:
        other.close()
    assert out["chunks"] == 1 and out["frames"] == len(fids)
    imarks = ",".join("?" * len(items))
    assert db.one(f"SELECT COUNT(*) FROM vec_items WHERE id IN ({imarks})", items)[0] == 0
    assert db.one("SELECT COUNT(*) FROM vec_items")[0] == total - len(set(items))
    assert db.one(f"SELECT COUNT(*) FROM vec_codes WHERE item_id IN ({imarks})", items)[0] == 0
    assert db.one("SELECT COUNT(*) FROM vec_codes")[0] == total - len(set(items))
    assert db.one(f"SELECT COUNT(*) FROM vec_frames WHERE frame_id IN ({marks})", fids)[0] == 0
    assert db.one(f"SELECT COUNT(*) FROM vec_done WHERE frame_id IN ({marks})", fids)[0] == 0
    assert all(h["app"] != "firefox" for h in _search(fresh, PARAPHRASE, mode="semantic",
                                                      min_score=-1.0))


def test_reindex_after_a_model_change_replaces_the_vectors(fresh: Service) -> None:
    db = fresh.db
    old = vectors.active_model(db)
    assert old is not None
    n_old = vectors.stats(db, old)["blocks"]
    events: list[dict[str, object]] = []
    # The analysis loop leaves a different active model alone: switching is reindex's job.
    skipped = embed.embed_pending(db, embed.HashingEmbedder())
    assert skipped["frames"] == 0 and "--reindex" in skipped["skipped"]
    res = embed.reindex(db, embed.get_embedder("hashing"), on_progress=events.append)
    assert res["finished"] and res["dropped_vectors"] == n_old
    new = vectors.active_model(db)
    assert new is not None and new.name == "hashing" and new.id != old.id
    assert [m.name for m in vectors.models(db)] == ["hashing"]
    assert db.one("SELECT COUNT(*) FROM vec_items WHERE model_id != ?", (new.id,))[0] == 0
    assert db.one("SELECT COUNT(*) FROM vec_done WHERE model_id != ?", (new.id,))[0] == 0
    assert events and events[-1]["done"] == events[-1]["total"] == 3
    # Searches now embed the question with the hashing model: spelling, not meaning.
    assert _search(fresh, "shopping lists", mode="semantic")[0]["app"] == "gedit"
    # And back: the bundled model again finds the paraphrase.
    embed.reindex(db, embed.get_embedder("wordllama"))
    assert _search(fresh, PARAPHRASE, mode="semantic")[0]["app"] == "firefox"


# -- through the service and the front ends ---------------------------------------------------

def _lv(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_"))}
    return subprocess.run([sys.executable, "-m", "localvideo", *args, "--data-dir", str(data)],
                          env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120)


def test_service_and_cli_search_by_meaning(store: Service) -> None:
    hits = plain.search(store, PARAPHRASE)                    # hybrid: the default now
    assert hits[0]["app"] == "firefox" and hits[0]["matched"] == "meaning"
    assert hits[0]["similarity"] > 0.1
    assert plain.search(store, PARAPHRASE, mode="keyword") == []
    # Keyword syntax asks for words: an exclusion is honoured, not searched by meaning.
    assert all(h["matched"] == "words" for h in plain.search(store, "shopping -eggs OR list"))
    data = store.settings.data_dir
    r = _lv("search", PARAPHRASE, "--mode", "semantic", "--json", data=data)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found[0]["app"] == "firefox" and found[0]["matched"] == "meaning"
    r = _lv("search", PARAPHRASE, data=data)
    assert r.returncode == 0 and "closest in meaning" in r.stdout and "meaning" in r.stdout
    r = _lv("search", "shopping", "--mode", "fuzzy", data=data)
    assert r.returncode == 2 and "keyword, semantic or hybrid" in r.stderr


def test_ask_finds_a_paraphrase_and_answers_what_was_i_doing(store: Service) -> None:
    out = plain.ask(store, "where is the form for renewing my passport?", reasoner="offline")
    assert "Travel document application" in out["answer"], out["answer"]
    assert "closest in meaning" in out["answer"]
    assert out["sources"] and out["sources"][0]["matched"] == "meaning"
    assert out["timestamps"] == [T0]
    # No word to search and no time named: the last hour of activity, from the timeline.
    for q in ("what was I doing?", "summarize what I worked on"):
        out = plain.ask(store, q, reasoner="offline")
        assert [t["label"] for t in out["times"]] == ["the last hour"], q
        assert "has no words" not in out["answer"]
        assert "gedit" in out["answer"] and "xterm" in out["answer"], out["answer"]


def test_reindex_through_the_service_and_the_cli(fresh: Service) -> None:
    events: list[dict[str, object]] = []
    res = fresh.analyze.reindex(force=True, on_progress=events.append)
    assert res.model == "wordllama" and res.finished and res.frames == 3
    assert res.vectors == res.blocks >= 3 and res.dropped_vectors == 0
    assert events[-1]["done"] == 3
    r = _lv("analyze", "--reindex", "--json", data=fresh.settings.data_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "wordllama" and out["frames"] == 0 and out["finished"]


def test_key_frames_read_later_are_embedded_as_they_come(fresh: Service) -> None:
    # The loop keeps a mark of what is embedded; text read after it is still picked up.
    model = vectors.active_model(fresh.db)
    assert model is not None and vectors.embedded_through(fresh.db, model) > 0
    write_chunk(fresh.db, fresh.settings.data_dir, T0 + 1800, [
        Shot(0.0, render(["Dentist reminder", "Cleaning and checkup on Monday 9:00"]),
             "thunderbird", "Inbox - Thunderbird"),
        Shot(2.0, None, "thunderbird", "Inbox - Thunderbird")], name="d")
    stats = ChunkReader(fresh.settings, fresh.db).run_pass()
    assert stats.keyframes == 1 and stats.embedded == 1
    hits = _search(fresh, "appointment to get my teeth looked at", mode="semantic")
    assert hits[0]["app"] == "thunderbird"


def test_search_by_meaning_in_an_encrypted_store(fresh: Service,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLCipher's own SQLite (sqlcipher3) loads sqlite-vec too; the vectors move with the
    # index when `encrypt enable` copies it.
    data = fresh.settings.data_dir
    fresh.close()
    env = {**os.environ, "LOCALVIDEO_PASSPHRASE": "correct horse battery staple"}
    r = subprocess.run([sys.executable, "-m", "localvideo", "encrypt", "enable", "--data-dir",
                        str(data)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert b"Travel document" not in (data / "index.sqlite3").read_bytes()
    monkeypatch.setenv("LOCALVIDEO_PASSPHRASE", "correct horse battery staple")
    svc = Service.open(data, recover=False)
    try:
        hits = plain.search(svc, PARAPHRASE, mode="semantic")
        assert hits[0]["app"] == "firefox" and hits[0]["matched"] == "meaning"
    finally:
        svc.close()
