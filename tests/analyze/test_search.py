"""FTS5 search over real indexed chunks, with user text that would break naive MATCH."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import plain
import pytest
from analyze_chunks import ChunkWriter, session_shots, write_chunk

from localvideo.analyze.index import match_expression
from localvideo.analyze.loop import ChunkReader
from localvideo.errors import UsageError
from localvideo.service import Service

T0 = 1_790_000_000.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, ChunkWriter]]:
    # One indexed store for the module: OCR is the slow part, the queries are what is tested.
    s = Service.open(tmp_path_factory.mktemp("search"), recover=False)
    chunk = write_chunk(s.db, s.settings.data_dir, T0, session_shots(), name="session")
    stats = ChunkReader(s.settings, s.db).run_pass()
    assert stats.keyframes >= 4
    yield s, chunk
    s.close()


@pytest.fixture
def indexed(store: tuple[Service, ChunkWriter]) -> Service:
    return store[0]


@pytest.fixture
def recorded(store: tuple[Service, ChunkWriter]) -> ChunkWriter:
    return store[1]


def test_finds_words_with_time_app_window_chunk_and_offset(indexed: Service,
                                                           recorded: ChunkWriter) -> None:
    hits = plain.search(indexed, "quokka")
    assert hits, "a word shown on screen must be found"
    h = hits[0]
    assert h["app"] == "firefox"
    assert h["title"] in ("Jenkins - Mozilla Firefox", "Contact - Mozilla Firefox")
    assert h["chunk_id"] == recorded.chunk_id and h["chunk_path"] == recorded.rel
    assert h["offset"] in (4.0, 6.0) and h["ts"] == recorded.start_ts + h["offset"]
    assert "[quokka]" in h["snippet"]


@pytest.mark.parametrize("query", [
    'zanzibar-7', '"build failed"', 'build AND failed', 'test_login', 'quokka"',
    '"build failed', '(make', 'make)', '(make test)', 'zanz*', 'déjà', 'deja',
    'ERROR OR nothingatall', "zanzibar' OR 1=1 --", 'test:login', '^make', 'build -jenkins',
    'NOT jenkins build', 'DÉJÀ VU',
])
def test_tricky_queries_never_raise_and_find_the_text(indexed: Service, query: str) -> None:
    hits = plain.search(indexed, query)
    assert hits, f"{query!r} should match the indexed screen text"


@pytest.mark.parametrize("query", ["", "   ", '""', "-", "*", "AND OR NOT", "-zanzibar"])
def test_queries_without_words_are_a_clear_usage_error(indexed: Service, query: str) -> None:
    with pytest.raises(UsageError) as err:
        plain.search(indexed, query)
    assert "localvideo search" in (err.value.hint or "")


def test_exclusion_and_or(indexed: Service) -> None:
    assert plain.search(indexed, "build -jenkins")
    assert not plain.search(indexed, "quokka -jenkins")
    both = plain.search(indexed, "quokka OR zanzibar")
    assert {h["app"] for h in both} == {"firefox", "xterm"}


def test_window_titles_are_searchable_without_text(indexed: Service) -> None:
    hits = plain.search(indexed, "mozilla", mode="keyword")
    assert hits and all(h["app"] == "firefox" for h in hits)
    # The default (hybrid, the screen text being embedded) puts those word matches first.
    hybrid = plain.search(indexed, "mozilla")
    assert hybrid[0]["app"] == "firefox" and hybrid[0]["matched"] in ("words", "both")


def test_excluded_windows_are_never_read_or_indexed(indexed: Service) -> None:
    for mode in ("keyword", "semantic", "hybrid"):
        # By words nothing; by meaning only the nearest of what was read, never the window.
        for q in ("hunter2", "vault", "passwords", "secret vault entry"):
            hits = plain.search(indexed, q, mode=mode)
            assert all(h["app"] != "keepassxc" for h in hits), (mode, q)
            if mode == "keyword":
                assert hits == []


def test_filters_app_since_until_limit(indexed: Service, recorded: ChunkWriter) -> None:
    t0 = recorded.start_ts
    assert {h["app"] for h in plain.search(indexed, "error OR quokka", app="fire")} == {"firefox"}
    late = plain.search(indexed, "make", since=t0 + 7.5)
    assert late and all(h["ts"] >= t0 + 7.5 for h in late)
    early = plain.search(indexed, "make", until=t0 + 1)
    assert early and all(h["ts"] <= t0 + 1 for h in early)
    assert len(plain.search(indexed, "make", limit=1)) == 1
    assert plain.search(indexed, "make", since="1m") == []      # all of it is two hours old
    with pytest.raises(UsageError):
        plain.search(indexed, "make", since="yesterday-ish")
    with pytest.raises(UsageError):
        plain.search(indexed, "make", limit=0)


def test_match_expression_is_always_valid_fts5() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    conn.execute("INSERT INTO t VALUES ('the build failed at line 42')")
    samples = ['"', '""a', 'a"b"c', "-(", "NOT a", "a NOT", "OR a", "a OR", "a OR OR b",
               "***", "a*b", "{x}", "x:y", "😀 build", "build-", "-build- failed", "ünïcödé",
               "NEAR/3", "a AND", "AND", "NEAR(make test)", "x' OR 1=1 --", "a NOT NOT b",
               "NOT", "a -", "a OR -b"]
    for q in samples:
        try:
            expr = match_expression(q)
        except UsageError:
            continue
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (expr,)).fetchall()
    assert match_expression('build-failed "at line" x*') == \
        '"build failed" AND "at line" AND "x" *'
