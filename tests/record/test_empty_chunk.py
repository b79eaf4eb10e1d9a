"""A recorder killed before its first fragment leaves only the MP4 header (ftyp + moov, about
760 bytes): nothing was recorded in it, so recovery removes it instead of keeping a
"damaged" chunk; a file that does not parse at all still shows up as damaged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from record_helpers import Step, glyph, mp4_boxes, run_scripted, solid

from localvideo.service import Service


def _header_only(path: Path) -> int:
    """Cut ``path`` at its first fragment; returns the new size."""
    data = path.read_bytes()
    i = 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        if data[i + 4:i + 8] == b"moof":
            break
        i += size
    path.write_bytes(data[:i])
    return i


def test_header_only_chunk_is_removed_not_damaged(
        make_service: Callable[..., Service], data_dir: Path) -> None:
    svc = make_service()
    px = solid(200, 120)
    run_scripted(svc, [Step(glyph(px, i * 5, 9)) for i in range(3)])
    (row,) = svc.db.query("SELECT id, path FROM chunks")
    path = data_dir / row["path"]
    size = _header_only(path)
    assert mp4_boxes(path) == ["ftyp", "moov"] and size < 2000
    svc.db.execute("UPDATE chunks SET state = 'recording' WHERE id = ?", (row["id"],))
    # And the same header as a file with no row (killed between the file and its row).
    orphan = path.with_name("chunk_235959_001.mp4")
    orphan.write_bytes(path.read_bytes())
    junk = path.with_name("chunk_120000_000.mp4")
    junk.write_bytes(b"\0" * 1000)

    done = svc.record.recover()
    assert sorted(e["path"] for e in done["empty"]) == sorted(
        [row["path"], orphan.relative_to(data_dir).as_posix()])
    assert not path.exists() and not orphan.exists()
    left = {r["path"]: r["state"] for r in svc.db.query("SELECT path, state FROM chunks")}
    assert left == {junk.relative_to(data_dir).as_posix(): "damaged"}
    assert svc.db.one("SELECT count(*) FROM frames")[0] == 0
    log = (data_dir / "logs" / "recorder.log").read_text()
    assert "died before its first fragment" in log


def test_a_recording_row_whose_file_never_appeared_is_removed(
        make_service: Callable[..., Service], data_dir: Path) -> None:
    # Killed between the chunk's row and its file (seen in bench/chaos.py's kill runs).
    svc = make_service()
    run_scripted(svc, [Step(glyph(solid(200, 120), i * 5, 9)) for i in range(3)])
    (row,) = svc.db.query("SELECT id, path FROM chunks")
    (data_dir / row["path"]).unlink()
    svc.db.execute("UPDATE chunks SET state = 'recording' WHERE id = ?", (row["id"],))
    done = svc.record.recover()
    assert [e["path"] for e in done["empty"]] == [row["path"]] and not done["damaged"]
    assert svc.db.query("SELECT id FROM chunks") == []


def test_a_zero_byte_chunk_file_is_removed(make_service: Callable[..., Service],
                                          data_dir: Path) -> None:
    # Killed between creating the file and writing its header.
    svc = make_service()
    run_scripted(svc, [Step(glyph(solid(200, 120), i * 5, 9)) for i in range(3)])
    (row,) = svc.db.query("SELECT id, path FROM chunks")
    empty = (data_dir / row["path"]).with_name("chunk_235959_002.mp4")
    empty.write_bytes(b"")
    done = svc.record.recover()
    assert [e["path"] for e in done["empty"]] == [empty.relative_to(data_dir).as_posix()]
    assert not empty.exists() and not done["damaged"]
