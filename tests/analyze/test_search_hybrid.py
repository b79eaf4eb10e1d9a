"""Search by meaning over real chunks: rendered screens encoded to MP4, read by the analysis
loop (real OCR), embedded by the bundled wordllama model into sqlite-vec in the same file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
        Shot(0.0, render(PASSPORT), "firefox", "Passport office - Mozilla Firefox"),
        Shot(2.0, None, "firefox", "Passport office - Mozilla Firefox")], name="a")
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
        assert "Travel document" in str(top["snippet"]) or "Passport" in str(top["snippet"])
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
