"""Embedding models and text blocks: the bundled wordllama model, the hashing model, the
registry of pulled models, and sqlite-vec loaded into the index's own connection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localvideo.analyze import embed
from localvideo.errors import NotFoundError, UsageError
from localvideo.store import vectors
from localvideo.store.db import Database


def test_blocks_are_what_a_person_reads_as_one() -> None:
    text = ("Travel document application\nApplicant details\n\n"
            "Fee: 75 EUR\n────────\nl1\nl2\nl3\nl4\nl5\nl6\n|\n")
    assert embed.split_blocks(text) == [
        "Travel document application\nApplicant details",
        "Fee: 75 EUR\nl1\nl2\nl3\nl4\nl5",       # rule line dropped, 6 lines at most
        "l6",
    ]
    # Each block carries the window title in front; a frame without text embeds its title.
    got = embed.frame_blocks(text, "Passport  - Firefox")
    assert got[0] == (0, "Passport - Firefox\nTravel document application\nApplicant details")
    assert [i for i, _ in got] == [0, 1, 2]
    assert embed.frame_blocks("", "Passport - Firefox") == [(-1, "Passport - Firefox")]
    assert embed.frame_blocks("──\n", "──") == []
    # A block is found again by its index.
    assert embed.block_text(text, "t", 1).startswith("Fee: 75 EUR")
    assert embed.block_text(text, "Passport", -1) == "Passport"
    long = "word " * 200
    assert all(len(b) <= embed.BLOCK_CHARS for b in embed.split_blocks(long + "\n" + long))


def test_wordllama_ships_its_model_and_ranks_a_paraphrase_first() -> None:
    e = embed.get_embedder()          # the default: no download, no network
    assert (e.name, e.dim) == ("wordllama", 256)
    assert embed.get_embedder("wordllama") is e          # loaded once per process
    screens = ["travel document application", "grocery shopping list milk eggs",
               "linker error undefined reference", "quarterly revenue spreadsheet"]
    v = e.embed(screens + ["the form for renewing my passport"])
    assert v.shape == (5, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    sims = v[:4] @ v[4]
    assert int(np.argmax(sims)) == 0, sims


def test_hashing_embedder_is_deterministic_and_lexical() -> None:
    h = embed.HashingEmbedder()
    a, b, c = h.embed(["shopping list", "shopping list", "linker error"])
    assert np.array_equal(a, b) and abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    assert float(a @ c) < 0.5 < float(a @ h.embed(["shopping lists"])[0])
    assert h.embed([]).shape == (0, 256)


def test_models_not_pulled_name_the_pull_command(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        embed.get_embedder("potion-base-8M", tmp_path)
    assert "localvideo models pull potion-base-8M" in (err.value.hint or "")
    assert not (tmp_path / "embed").exists()            # nothing fetched on the way
    with pytest.raises(UsageError) as bad:
        embed.get_embedder("minilm-nonexistent")
    assert "wordllama" in (bad.value.hint or "")
    names = {m["name"]: m for m in embed.available()}
    assert not names["wordllama"]["pull"] and names["potion-base-8M"]["pull"]


def test_sqlite_vec_loads_into_the_index_connection(tmp_path: Path) -> None:
    db = Database(tmp_path / "index.sqlite3")
    vectors.load_extension(db)
    vectors.load_extension(db)                              # idempotent
    assert db.one("SELECT vec_version()")[0].startswith("v")
    m = vectors.ensure_model(db, "hashing", 256, activate=True)
    assert vectors.active_model(db) == m
    with pytest.raises(Exception, match="not a positive multiple of 8"):
        vectors.ensure_model(db, "odd", 250, activate=False)


def test_quantized_vectors_keep_cosine_and_sign_codes_keep_hamming(tmp_path: Path) -> None:
    db = Database(tmp_path / "index.sqlite3")
    vectors.load_extension(db)
    rng = np.random.default_rng(1)
    v = rng.standard_normal((50, 256)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q8, bits = vectors.quantize(v)
    assert q8.dtype == np.int8 and bits.shape == (50, 32)
    exact = v @ v[0]
    # sqlite-vec's own distances on the stored forms, as the search computes them.
    approx = np.array([db.one("SELECT 1 - vec_distance_cosine(vec_int8(?), vec_int8(?))",
                              (q8[0].tobytes(), r.tobytes()))[0] for r in q8])
    # int8 per-row scaling moves a cosine by well under what separates a match (≥ 0.1).
    assert float(np.max(np.abs(exact - approx))) < 0.02
    ham = [db.one("SELECT vec_distance_hamming(vec_bit(?), vec_bit(?))",
                  (bits[0].tobytes(), b.tobytes()))[0] for b in bits]
    assert ham[0] == 0 and ham[1] == int(np.sum((v[0] > 0) != (v[1] > 0)))


def test_models_pull_knows_the_embedding_models(tmp_path: Path) -> None:
    from localvideo.service import Service

    svc = Service.open(tmp_path, recover=False)
    try:
        with pytest.raises(UsageError, match="ships with localvideo"):
            svc.synth.pull("wordllama")
        assert not (svc.settings.models_dir / "embed").exists()
    finally:
        svc.close()
