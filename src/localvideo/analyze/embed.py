"""Embeddings of screen text, and search by meaning (semantic) or by words and meaning (hybrid).

What is embedded: per key frame, its screen text in blocks a person reads as one (runs of
up to :data:`BLOCK_LINES` lines, cut at blank lines), each with the window title in front, so
a question about one paragraph is not diluted by the rest of the screen and the block keeps
its context (measured on bench/search.py's session: title-prefixed blocks ranked the right
window first for 84 % of paraphrases, separate title and block vectors for 75 %). A block
seen again on a later key frame is linked, not embedded again (store/vectors.py).

The default model, ``wordllama`` (256-d), ships inside its PyPI wheel: nothing is downloaded,
ever. Heavier models are options that only ``localvideo models pull NAME`` fetches; asking
for one not pulled is an error naming that command.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import DependencyError, NotFoundError, UsageError
from ..store import vectors
from ..store.db import Database

DEFAULT_MODEL = "wordllama"
BLOCK_LINES = 6           # lines per block at most
BLOCK_CHARS = 480         # characters per block at most
BATCH_FRAMES = 64         # key frames per embedding call and transaction
MIN_SCORE = 0.05          # cosine below this is no match by meaning: "the" scores 0.03,
                          # 95 % of right answers above it (bench/search.py's session)
MODES = ("keyword", "semantic", "hybrid")

Progress = Callable[[dict[str, Any]], None]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of width ``dim``."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return v / n  # type: ignore[no-any-return]


# -- the models --------------------------------------------------------------------------

class WordLlamaEmbedder:
    """WordLlama l2_supercat, 256-d: token embeddings pooled, 16 MB, bundled in the wheel."""

    name = "wordllama"
    dim = 256

    def __init__(self) -> None:
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise DependencyError("wordllama is not installed",
                                  "pip install wordllama (a dependency of localvideo)") from exc
        # load() looks for a tokenizer/ folder that the wheel lacks and then the hub; its own
        # package folder holds both files it needs (weights/ and tokenizers/).
        try:
            self._model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent,
                                         disable_download=True, dim=self.dim)
        except Exception as exc:  # noqa: BLE001 — any failure here is a broken install
            raise DependencyError(f"cannot load the bundled wordllama model: {exc}",
                                  "pip install --force-reinstall wordllama") from exc

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.embed(list(texts), norm=True))


class HashingEmbedder:
    """Feature hashing of words and their character trigrams: no model, matches spelling only.

    Useful where no model may be loaded, and as a second, different model in tests.
    """

    name = "hashing"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"\w+", text.lower())
        grams = [w[i:i + 3] for w in words for i in range(max(1, len(w) - 2))]
        return words + ["#" + g for g in grams]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return _normalise(out)


class Model2VecEmbedder:
    """A model2vec static model (e.g. minishlab's potion family) from a pulled folder."""

    def __init__(self, name: str, dim: int, folder: Path) -> None:
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise DependencyError(f"{name} needs the model2vec package", "pip install model2vec"
                                  ) from exc
        self.name, self.dim = name, dim
        self._model = StaticModel.from_pretrained(str(folder))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode(list(texts)))


@dataclass(frozen=True)
class EmbedSpec:
    name: str
    dim: int
    about: str
    repo: str | None = None       # where `models pull` fetches it from; None: bundled


REGISTRY: dict[str, EmbedSpec] = {s.name: s for s in (
    EmbedSpec("wordllama", 256, "WordLlama l2_supercat, bundled with the wordllama package "
              "(default; no download)"),
    EmbedSpec("hashing", 256, "word and trigram hashing: no model, spelling only"),
    EmbedSpec("potion-base-8M", 256, "model2vec static model, 30 MB (needs model2vec)",
              repo="minishlab/potion-base-8M"),
    EmbedSpec("potion-retrieval-32M", 512, "model2vec retrieval model, 130 MB "
              "(needs model2vec)", repo="minishlab/potion-retrieval-32M"),
)}


def model_folder(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / "embed" / name


def _spec(name: str) -> EmbedSpec:
    spec = REGISTRY.get(name)
    if spec is None:
        raise UsageError(f"unknown embedding model {name!r}",
                         "choose one of: " + ", ".join(REGISTRY))
    return spec


_loaded: dict[tuple[str, str], Embedder] = {}
_load_lock = threading.Lock()


def get_embedder(name: str | None = None, models_dir: Path | None = None) -> Embedder:
    """The embedder called ``name`` (default :data:`DEFAULT_MODEL`), loaded once per process.

    A model that must be pulled and was not raises NotFoundError naming the pull command;
    nothing is ever fetched here.
    """
    spec = _spec(name or DEFAULT_MODEL)
    key = (spec.name, str(models_dir or ""))
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        emb: Embedder
        if spec.name == "wordllama":
            emb = WordLlamaEmbedder()
        elif spec.name == "hashing":
            emb = HashingEmbedder(spec.dim)
        else:
            folder = model_folder(models_dir, spec.name) if models_dir else None
            if folder is None or not folder.is_dir():
                raise NotFoundError(f"the embedding model {spec.name} is not pulled",
                                    f"run `localvideo models pull {spec.name}` first")
            emb = Model2VecEmbedder(spec.name, spec.dim, folder)
        _loaded[key] = emb
        return emb


def pull(name: str, models_dir: Path) -> dict[str, Any]:
    """Fetch a pullable embedding model into ``models_dir/embed/NAME`` (the one download)."""
    spec = _spec(name)
    if spec.repo is None:
        return {"name": name, "path": None, "bundled": True}
    try:
        from model2vec import StaticModel
    except ImportError as exc:
        raise DependencyError(f"{name} needs the model2vec package", "pip install model2vec"
                              ) from exc
    dest = model_folder(models_dir, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    StaticModel.from_pretrained(spec.repo).save_pretrained(str(dest))
    return {"name": name, "path": str(dest), "bundled": False}


def available() -> list[dict[str, Any]]:
    return [{"name": s.name, "dim": s.dim, "about": s.about, "pull": s.repo is not None}
            for s in REGISTRY.values()]


# -- what a key frame is made of -----------------------------------------------------------

_WORDY = re.compile(r"\w{2,}")


def split_blocks(text: str) -> list[str]:
    """Screen text → blocks of up to BLOCK_LINES lines / BLOCK_CHARS characters.

    A blank line ends a block; lines without a word of two letters (rules, box drawing,
    OCR noise) are left out. The block indexes are stable for a text, so a hit can show its
    block again from the frame's text.
    """
    blocks: list[str] = []
    cur: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal cur, size
        if cur:
            blocks.append("\n".join(cur))
        cur, size = [], 0

    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            flush()
            continue
        if not _WORDY.search(line):
            continue
        if cur and (len(cur) >= BLOCK_LINES or size + len(line) > BLOCK_CHARS):
            flush()
        cur.append(line[:BLOCK_CHARS])
        size += len(line)
    flush()
    return blocks


def frame_blocks(text: str, title: str) -> list[tuple[int, str]]:
    """(index, text) of what is embedded for a key frame: each block with the title in
    front, or the title alone (index -1) when the frame has no text."""
    head = " ".join(title.split()) if _WORDY.search(title) else ""
    blocks = split_blocks(text)
    if not blocks:
        return [(-1, head)] if head else []
    return [(i, f"{head}\n{b}" if head else b) for i, b in enumerate(blocks)]


def block_text(text: str, title: str, index: int) -> str:
    if index < 0:
        return title
    blocks = split_blocks(text)
    return blocks[index] if index < len(blocks) else ""


# -- indexing ------------------------------------------------------------------------------

def _embed_batch(db: Database, model: vectors.VecModel, embedder: Embedder,
                 rows: list[tuple[int, str, str, str]]) -> tuple[int, int]:
    """Embed and store one batch of key frames; returns (blocks, new vectors)."""
    per_frame = [(fid, frame_blocks(text, title)) for fid, text, _app, title in rows]
    texts = {t for _fid, blocks in per_frame for _i, t in blocks}
    known = vectors.known_hashes(db, model, (vectors.text_hash(t) for t in texts))
    todo = sorted(t for t in texts if vectors.text_hash(t) not in known)
    vecs = dict(zip(todo, embedder.embed(todo), strict=True)) if todo else {}
    zero = np.zeros(model.dim, dtype=np.float32)   # known blocks are linked, never re-stored
    frames = [(fid, [vectors.Block(i, t, vecs.get(t, zero)) for i, t in blocks])
              for fid, blocks in per_frame]
    with db.tx() as conn:
        new = vectors.store_frames(conn, model, frames)
    return sum(len(b) for _f, b in per_frame), new


def embed_pending(db: Database, embedder: Embedder, *, activate: bool = True,
                  on_progress: Progress | None = None, stop: threading.Event | None = None,
                  batch: int = BATCH_FRAMES) -> dict[str, Any]:
    """Embed every key frame with text that ``embedder`` has not embedded yet.

    With ``activate`` a model is made the one searched when none is; a different active
    model is left alone (switching is :func:`reindex`'s job), and nothing is embedded.
    """
    active = vectors.active_model(db)
    if active is not None and active.name != embedder.name and activate:
        return {"model": embedder.name, "frames": 0, "blocks": 0, "vectors": 0,
                "skipped": f"the index holds {active.name} vectors; "
                           "run `localvideo analyze --reindex` to switch"}
    if active is not None and active.name == embedder.name and active.dim == embedder.dim:
        model = active            # the follow loop's case: no write, no scan
    else:
        model = vectors.ensure_model(db, embedder.name, embedder.dim,
                                     activate=activate and active is None)
    total = vectors.count_pending(db, model) if on_progress else 0
    done = blocks = new = 0
    # Key frames up to the mark are all embedded: the follow loop calls this after every
    # chunk, and a scan of all the text (55 ms at 1M frames) each time would cost more than
    # the embedding itself.
    after = vectors.embedded_through(db, model)
    while not (stop and stop.is_set()):
        rows = vectors.pending_frames(db, model, batch, after)
        if not rows:
            vectors.mark_embedded_through(db, model)
            break
        b, n = _embed_batch(db, model, embedder, rows)
        after = rows[-1][0]
        done, blocks, new = done + len(rows), blocks + b, new + n
        if on_progress:
            on_progress({"event": "embed", "model": model.name, "done": done, "total": total,
                         "vectors": new})
    return {"model": model.name, "frames": done, "blocks": blocks, "vectors": new}


def reindex(db: Database, embedder: Embedder, *, force: bool = False,
            on_progress: Progress | None = None,
            stop: threading.Event | None = None) -> dict[str, Any]:
    """Embed the whole history with ``embedder`` and make it the model searched.

    Vectors of other models are kept (and searched) until the new model has embedded every
    key frame, then dropped. ``force`` re-embeds even what this model already embedded.
    """
    if force:
        for m in vectors.models(db):
            if m.name == embedder.name:
                vectors.drop_model(db, m)
    model = vectors.ensure_model(db, embedder.name, embedder.dim, activate=False)
    result = embed_pending(db, embedder, activate=False, on_progress=on_progress, stop=stop)
    finished = not (stop and stop.is_set())
    dropped = 0
    if finished:
        model = vectors.ensure_model(db, embedder.name, embedder.dim, activate=True)
        for m in vectors.models(db):
            if m.id != model.id:
                dropped += vectors.drop_model(db, m)
    return {**result, "finished": finished, "dropped_vectors": dropped,
            "stats": vectors.stats(db, model)}


# -- searching -------------------------------------------------------------------------------

# "a phrase", a OR b, -word, NOT a, pre*: a query written for the keyword index.
_KEYWORD_SYNTAX = re.compile(r'"|(?:^|\s)(?:OR|NOT|AND)(?:\s|$)|(?:^|\s)-\w|\w\*')


def resolve_mode(db: Database, mode: str | None, query: str = "") -> str:
    """keyword | semantic | hybrid; None or 'auto' → hybrid when vectors exist, else keyword.

    A query that uses the keyword syntax (quotes, OR, -word, pre*) asks for words: auto
    gives keyword there, since meaning cannot honour an exclusion or a phrase.
    """
    if mode in (None, "", "auto"):
        if _KEYWORD_SYNTAX.search(query):
            return "keyword"
        return "hybrid" if vectors.has_vectors(db) else "keyword"
    if mode not in MODES:
        raise UsageError(f"unknown search mode {mode!r}", "use keyword, semantic or hybrid")
    if mode != "keyword" and not vectors.has_vectors(db):
        raise UsageError(f"{mode} search needs embeddings and the index has none yet",
                         "run `localvideo analyze --reindex` (or search with --mode keyword)")
    return mode


def _offset(pts: float | None, ts: float, start: float | None) -> float | None:
    return pts if pts is not None else (ts - start if start is not None else None)


def search(db: Database, query: str, *, mode: str | None = None, app: str | None = None,
           since: float | None = None, until: float | None = None, limit: int = 50,
           models_dir: Path | None = None, min_score: float = MIN_SCORE,
           words: str | None = None) -> list[dict[str, Any]]:
    """Search screen text by words, meaning or both; each hit says why it ``matched``.

    keyword: the FTS5 search as before (newest first). semantic: nearest blocks by cosine.
    hybrid: reciprocal-rank fusion of BM25 over the newest matches and the semantic ranking.
    ``words`` replaces ``query`` as the keyword side's search (``ask`` passes its search
    words joined by OR; the meaning side embeds the whole question).
    """
    from . import index

    if limit <= 0:
        raise UsageError(f"--limit must be positive (got {limit})", "e.g. --limit 20")
    mode = resolve_mode(db, mode, query)
    if mode == "keyword":
        return [{**h, "matched": "words"} for h in index.search(
            db, words or query, app=app, since=since, until=until, limit=limit)]
    # The same words rule in every mode: a search with nothing to look for (empty, only
    # excluded words, only operators) is a usage error, not a list of nearest neighbours.
    expr = index.match_expression(words or query)
    model = vectors.active_model(db)
    assert model is not None       # resolve_mode checked there are vectors
    embedder = get_embedder(model.name, models_dir)
    qvec = embedder.embed([query])[0]
    pool = max(limit, 50)
    sem = vectors.nearest(db, model, qvec, app=app, since=since, until=until, limit=pool,
                          min_score=min_score)
    sem_by = {r.frame_id: r for r in sem}
    kw: list[tuple[int, float]] = []
    if mode == "hybrid":
        kw = vectors.keyword_ranked(db, expr, app=app, since=since, until=until)
        ranked = vectors.fuse([f for f, _s in kw], [r.frame_id for r in sem])[:limit]
    else:
        ranked = [(r.frame_id, r.score) for r in sem][:limit]
    kw_ids = {f for f, _s in kw}
    ids = [f for f, _s in ranked]
    rows = vectors.hit_rows(db, ids)
    snips = vectors.snippets(db, expr, [f for f in ids if f in kw_ids])
    out = []
    for fid, score in ranked:
        r = rows.get(fid)
        if r is None:
            continue
        by_words, meaning = fid in kw_ids, fid in sem_by
        hit: dict[str, Any] = {
            "frame_id": fid, "ts": r.ts, "app": r.app or "", "title": r.title or "",
            "chunk_id": r.chunk_id, "chunk_path": r.chunk_path,
            "offset": _offset(r.pts, r.ts, r.chunk_start_ts),
            "matched": "both" if by_words and meaning else "words" if by_words else "meaning",
            "score": round(float(score), 4)}
        if meaning:
            hit["similarity"] = round(sem_by[fid].score, 4)
        if by_words and snips.get(fid):
            hit["snippet"] = snips[fid]
        else:
            block = block_text(r.text, r.title or "", sem_by[fid].block) if meaning else ""
            hit["snippet"] = " ".join(block.split())[:200]
        out.append(hit)
    return out
