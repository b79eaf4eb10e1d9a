"""The analysis loop: new chunk → key frames → OCR → index, then observations.

Restartable by construction: each key frame's text, the FTS row and the chunk's progress
(last pts handled + the sampler state) are written in one transaction, so a kill at any
point leaves either all of a key frame or none of it, and the next run resumes after the
last pts handled — nothing read twice, nothing skipped. A chunk still being written is read
as far as it is flushed and finished on a later pass.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import LocalVideoError
from ..store import frames as frames_db
from ..store import text as text_db
from ..store.db import Database
from ..store.layout import inside
from . import embed, index, ocr, region
from .sampler import (
    ChunkDecoder,
    FrameRow,
    Sampler,
    SamplerState,
    crop_box,
    decode,
    frame_thumbnail,
)

Progress = Callable[[dict[str, Any]], None]
CONTIGUOUS = 5.0      # seconds between chunks that still count as one stretch of recording


@dataclass
class PassStats:
    chunks: int = 0              # chunks touched this pass
    chunks_done: int = 0         # chunks finished this pass
    frames: int = 0              # decoded frames handled
    keyframes: int = 0
    ocr_ms: float = 0.0
    titles: int = 0              # title-only index rows added
    embedded: int = 0            # key frames embedded for search by meaning
    errors: list[str] = field(default_factory=list)

    def add(self, other: PassStats) -> None:
        self.chunks += other.chunks
        self.chunks_done += other.chunks_done
        self.frames += other.frames
        self.keyframes += other.keyframes
        self.ocr_ms += other.ocr_ms
        self.titles += other.titles
        self.embedded += other.embedded
        self.errors += other.errors

    def to_dict(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "chunks_done": self.chunks_done, "frames": self.frames,
                "keyframes": self.keyframes, "ocr_ms": round(self.ocr_ms, 1),
                "ocr_ms_per_keyframe": round(self.ocr_ms / self.keyframes, 1)
                if self.keyframes else None, "titles": self.titles, "embedded": self.embedded,
                "errors": self.errors}


class ChunkReader:
    """Reads the key frames of chunks and stores their text."""

    def __init__(self, settings: Settings, db: Database, *,
                 on_progress: Progress | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.db = db
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        self.lang = settings.analyze.ocr_lang
        ocr.set_engine(settings.analyze.ocr_engine)
        self.interval = settings.analyze.keyframe_interval
        self._seen: dict[int, tuple[int, int]] = {}   # chunk being written → (bytes, last row)
        self._decoders: dict[int, ChunkDecoder] = {}
        # The last key frame read in each of the last few windows (gray pixels and words):
        # the next one in that window reads only the rows that changed since, and nothing
        # when the user switches back to a window that did not change (analyze/region.py).
        self._reads: OrderedDict[tuple[str, str], region.LastRead] = OrderedDict()
        # Words read before, by their pixels: a page of words seen before reads only its
        # new ones (analyze/region.py).
        self._words = region.WordCache()
        self._last_seen: dict[int, tuple[FrameRow, Any, Any]] = {}
        self._embed_error: str | None = None

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_progress is not None:
            self.on_progress(event)

    def run_pass(self) -> PassStats:
        """Read everything flushed so far; return what was done."""
        stats = PassStats()
        stats.titles = index.index_titles(self.db)
        todo = text_db.pending_chunks(self.db)
        self._emit({"event": "pass", "pending_chunks": len(todo)})
        for row in todo:
            if self.stop.is_set():
                break
            stats.add(self.read_chunk(row))
            self._embed(stats)
        return stats

    def _embed(self, stats: PassStats) -> None:
        """Embed the key frames just read (one batch per chunk), for search by meaning.

        Embedding is optional: a model that cannot load leaves keyword search working and
        is reported once per run.
        """
        if self._embed_error is not None:
            return
        try:
            emb = embed.get_embedder(self.settings.analyze.embed_model, self.settings.models_dir)
            res = embed.embed_pending(self.db, emb, stop=self.stop)
        except LocalVideoError as exc:
            self._embed_error = str(exc)
            stats.errors.append(f"embeddings: {exc}")
            return
        stats.embedded += res["frames"]
        if res["frames"]:
            self._emit({"event": "embedded", **res})

    def read_chunk(self, chunk: text_db.PendingChunk) -> PassStats:
        stats = PassStats(chunks=1)
        cid = chunk.id
        # The state is read before decoding: a chunk closed by then is complete on disk.
        final = chunk.state != "recording"
        path = inside(self.settings.data_dir, chunk.path)
        after = chunk.last_pts
        state = SamplerState(chunk.key_ts, chunk.key_app, chunk.key_title,
                             SamplerState.thumb_from(chunk.key_thumb))
        if after is None and state.key_ts is None:
            state = self._carried_state(chunk)
        sampler = Sampler(self.interval, state)
        rows_by_pts = self._rows(cid, after)
        if not final:
            # Decoding a chunk being written starts from its first frame each time: skip it
            # while neither the file nor its index rows moved since the last pass.
            mark = (path.stat().st_size if path.exists() else -1,
                    max((r.id for rs in rows_by_pts.values() for r in rs), default=0))
            if not rows_by_pts or self._seen.get(cid) == mark:
                return stats
            self._seen[cid] = mark
        last_pts = after
        # (row, decoded, thumb) of the last frame handled, kept from the previous pass.
        last_seen: tuple[FrameRow, Any, Any] | None = self._last_seen.pop(cid, None)
        if last_seen is not None and (after is None or abs(last_seen[1].pts - after) > 1e-3):
            last_seen = None
        handled = 0
        if not path.exists():
            if final:
                stats.errors.append(f"chunk {cid}: file {chunk.path} is missing")
                self._save(cid, last_pts, sampler.state, done=True, frames=0, keyframes=0)
                stats.chunks_done = 1
            return stats
        decoder = self._decoders.pop(cid, None) or ChunkDecoder(path)
        for dec in decoder.frames(after, final=final):
            if self.stop.is_set():
                break
            rows = rows_by_pts.get(round(dec.pts * 1000))
            if not rows:
                if not final:
                    # The index row of this frame is not written yet: stop here, come back.
                    rows_by_pts = self._rows(cid, last_pts)
                    rows = rows_by_pts.get(round(dec.pts * 1000))
                    if not rows and not self._indexed_past(cid, dec.pts):
                        break
                    if not rows:
                        # An unindexed copy (the recorder re-encodes a still picture once
                        # so the muxer writes it out): the index is already past it.
                        last_pts = dec.pts
                        continue
                else:
                    last_pts = dec.pts
                    continue
            row = rows[0]
            if sampler.leaving(row):
                if last_seen is None and after is not None:
                    # The window's last frame was handled on an earlier pass: fetch it again.
                    last_seen = self._frame_at(path, cid, after)
                if last_seen is not None:
                    before = copy.copy(sampler.state)
                    if sampler.leave(last_seen[0], last_seen[2]):
                        if not self._read_or_stop(stats, cid, last_seen[0], last_seen[1],
                                                  "leave", sampler, before, handled):
                            break
                        handled = 0
            thumb = frame_thumbnail(dec, row)
            before = copy.copy(sampler.state)
            reason = sampler.decide(row, thumb)
            if reason:
                if not self._read_or_stop(stats, cid, row, dec, reason, sampler, before,
                                          handled + 1):
                    break
                handled = -1
            handled += 1
            stats.frames += 1
            last_pts = dec.pts
            last_seen = (row, dec, thumb)
        stopped = self.stop.is_set()
        done = final and not stopped
        if not final and not stopped and last_seen is not None \
                and self._left_since(cid, last_seen[0], sampler.state):
            # The index already shows a switch whose frame is not on disk yet (the muxer
            # writes a frame when the next one comes): read the window's last frame now
            # instead of waiting for that.
            before = copy.copy(sampler.state)
            if sampler.leave(last_seen[0], last_seen[2]):
                if self._read_or_stop(stats, cid, last_seen[0], last_seen[1], "leave", sampler,
                                      before, handled):
                    handled = 0
        if done and last_seen is None and last_pts is not None:
            # Everything was read on earlier passes while the chunk was being written; the
            # last frame still has to be compared with the last key frame.
            last_seen = self._frame_at(path, cid, last_pts)
        if done and last_seen is not None:
            row, dec, thumb = last_seen
            before = copy.copy(sampler.state)
            reason = sampler.settle(row, thumb)
            if reason and not self._read_or_stop(stats, cid, row, dec, reason, sampler, before,
                                                 handled):
                done = False
            elif reason:
                handled = 0
        self._save(cid, last_pts, sampler.state, done=done, frames=handled, keyframes=0)
        if done:
            stats.chunks_done = 1
        elif not final:
            # Still being written: keep the decoder (and the last frame) for the next pass.
            self._decoders[cid] = decoder
            if last_seen is not None:
                self._last_seen[cid] = last_seen
        self._emit({"event": "chunk", "chunk_id": cid, "path": chunk.path, "done": done,
                    "frames": stats.frames, "keyframes": stats.keyframes,
                    "last_pts": last_pts})
        return stats

    def _read_or_stop(self, stats: PassStats, cid: int, row: FrameRow, dec: Any, reason: str,
                      sampler: Sampler, before: SamplerState, handled: int) -> bool:
        """Read one key frame; False when Ctrl-C interrupted it (then it stays unread)."""
        box = crop_box(row, dec.frame.width, dec.frame.height)
        try:
            stats.ocr_ms += self._read(cid, row, dec, box, reason, sampler.state, handled)
        except LocalVideoError:
            if not self.stop.is_set():
                raise
            # Ctrl-C reaches tesseract too (same process group): this frame was not read,
            # so forget it was chosen and leave it for the next run.
            sampler.state = before
            return False
        stats.keyframes += 1
        return True

    def _indexed_past(self, cid: int, pts: float) -> bool:
        """Whether the index already has a frame of this chunk encoded after ``pts``."""
        return frames_db.encoded_after(self.db, cid, pts + 0.0005)

    def _left_since(self, cid: int, row: FrameRow, state: SamplerState) -> bool:
        """Whether the index shows another window after ``row`` in this chunk."""
        if state.key_app is None:
            return False
        return frames_db.window_changed_after(self.db, cid, row.ts, state.key_app,
                                              state.key_title or "")

    def _carried_state(self, chunk: text_db.PendingChunk) -> SamplerState:
        """The last key frame of the chunk just before, when recording went on without a gap.

        A new chunk starts with the screen as it was; reading it again would only repeat
        the previous chunk's last key frame.
        """
        prev = text_db.previous_done_chunk(self.db, chunk.id, chunk.start_ts)
        if prev is None or prev.key_ts is None or prev.end_ts is None \
                or chunk.start_ts - prev.end_ts > CONTIGUOUS:
            return SamplerState()
        return SamplerState(prev.key_ts, prev.key_app, prev.key_title,
                            SamplerState.thumb_from(prev.key_thumb))

    def _frame_at(self, path: Path, cid: int, pts: float) -> tuple[FrameRow, Any, Any] | None:
        rows = self._rows(cid, pts - 0.002).get(round(pts * 1000))
        if not rows:
            return None
        for dec in decode(path, pts - 0.002):
            if abs(dec.pts - pts) > 0.0015:
                return None
            return rows[0], dec, frame_thumbnail(dec, rows[0])
        return None

    def _rows(self, cid: int, after: float | None) -> dict[int, list[FrameRow]]:
        out: dict[int, list[FrameRow]] = {}
        for r in frames_db.encoded_frames(self.db, cid, None if after is None else after + 1e-4):
            fr = FrameRow(r.id, r.ts, r.pts, r.app or "", r.title or "", r.x or 0, r.y or 0,
                          r.w or 0, r.h or 0, bool(r.excluded))
            out.setdefault(round(fr.pts * 1000), []).append(fr)
        return out

    def _read(self, cid: int, row: FrameRow, dec: Any, box: tuple[int, int, int, int],
              reason: str, state: SamplerState, handled: int) -> float:
        image = dec.image(box)
        x0, y0, x1, y1 = box
        gray = np.array(dec.gray()[y0:y1, x0:x1])
        key = (row.app, row.title)
        last = self._reads.pop(key, None)
        # A window read before: only its rows that changed since are read again
        # (analyze/region.py), or the rows that scrolled in; a new window, a new size or
        # most of it changed: all of it.
        how = region.plan(last.gray, gray, last.result) if last else None
        if how is None:
            result = self._words.read(image, gray, self.lang)
        else:
            result = region.read_changed(image, how.kept, how.bands, self.lang, self._words,
                                         gray)
        self._reads[key] = region.LastRead(row.app, row.title, gray, result)
        while len(self._reads) > region.WINDOWS_KEPT:
            self._reads.popitem(last=False)
        with self.db.tx() as conn:
            text_db.save_text(conn, row.id, text=result.text,
                              words_json=json.dumps(result.words, separators=(",", ":")),
                              ocr_ms=round(result.ms, 1), reason=reason)
            text_db.index_text(conn, row.id, result.text, row.app, row.title)
            self._progress(conn, cid, dec.pts, state, done=False, frames=handled, keyframes=1)
        self._emit({"event": "keyframe", "chunk_id": cid, "frame_id": row.id, "ts": row.ts,
                    "app": row.app, "title": row.title, "reason": reason,
                    "ocr_ms": round(result.ms, 1), "chars": len(result.text)})
        return result.ms

    def _save(self, cid: int, last_pts: float | None, state: SamplerState, *, done: bool,
              frames: int, keyframes: int) -> None:
        with self.db.tx() as conn:
            self._progress(conn, cid, last_pts, state, done=done, frames=frames,
                           keyframes=keyframes)

    @staticmethod
    def _progress(conn: sqlite3.Connection, cid: int, last_pts: float | None,
                  state: SamplerState, *, done: bool, frames: int, keyframes: int) -> None:
        text_db.save_progress(conn, cid, last_pts, done=done, frames=frames, keyframes=keyframes,
                              key_ts=state.key_ts, key_app=state.key_app,
                              key_title=state.key_title, key_thumb=state.thumb_bytes())


def chunk_file(settings: Settings, rel: str) -> Path:
    return inside(settings.data_dir, rel)
