"""Chunk writer: real PyAV encodes checked with ffprobe and by decoding the files back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import pytest
from record_helpers import decode_all, ffprobe, glyph, mp4_boxes, solid

from localvideo.capture.base import Frame
from localvideo.errors import EncoderError, UsageError
from localvideo.record.canvas import Canvas
from localvideo.record.encoder import ChunkWriter, plan_encoders, probe


def _picture(c: Canvas, i: int) -> av.VideoFrame:
    px = solid(320, 240)
    for k in range(i + 1):                      # one more "typed" glyph per frame
        px = glyph(px, 8 + 8 * k, 20)
    c.draw(Frame(pixels=px, ts=0.0))
    return c.video_frame()


@pytest.mark.parametrize("encoder,codec,tag", [("libx264", "h264", "avc1"),
                                               ("libx265", "hevc", "hvc1")])
def test_fragmented_mp4_with_vfr_timestamps(tmp_path: Path, encoder: str, codec: str,
                                            tag: str) -> None:
    path = tmp_path / "c.mp4"
    c = Canvas(320, 240)
    w = ChunkWriter(path, 320, 240, encoder, 28)
    pts = [0, 480, 1010, 1490, 4200, 4213, 9000]   # irregular: real capture times
    for i, p in enumerate(pts):
        w.write(_picture(c, i), p)
    w.close()
    info = ffprobe(path)
    st = info["streams"][0]
    assert st["codec_name"] == codec and st["codec_tag_string"] == tag
    assert (st["width"], st["height"]) == (320, 240)
    boxes = mp4_boxes(path)
    assert boxes[:2] == ["ftyp", "moov"] and boxes.count("moof") >= len(pts) - 1
    frames = decode_all(path)
    assert [round(t * 1000) for t, _ in frames] == pts
    with av.open(str(path)) as cont:
        keys = [f.key_frame for f in cont.decode(video=0)]
    assert keys[0] and not any(keys[1:])         # one keyframe per chunk


def test_chunk_decodes_while_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.mp4"
    c = Canvas(320, 240)
    w = ChunkWriter(path, 320, 240, "libx264", 28)
    sent = 0
    for i in range(10):                          # 5 s at 2 FPS
        w.write(_picture(c, i), i * 500)
        sent += 1
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(path, copy)                  # what a reader sees mid-chunk
    frames = decode_all(copy)
    # The last frame sent is held until the next fragment begins: ≤ one interval behind.
    assert len(frames) >= sent - 1
    assert frames[-1][0] >= (sent - 2) * 0.5
    w.close()
    assert len(decode_all(path)) == sent


def test_unknown_encoder_and_codec_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderError) as err:
        ChunkWriter(tmp_path / "x.mp4", 64, 64, "hevc_vaapi", 28)   # not in the PyAV wheel
    assert "hevc_vaapi" in err.value.message
    assert not (tmp_path / "x.mp4").exists()     # no half-made chunk left behind
    with pytest.raises(UsageError):
        ChunkWriter(tmp_path / "y.mp4", 64, 64, "nosuch", 28)
    with pytest.raises(UsageError) as uerr:
        plan_encoders(tmp_path, "vp9")
    assert "--codec" in (uerr.value.hint or "")


def test_probe_is_a_real_test_encode_and_is_cached_per_version(tmp_path: Path) -> None:
    result = probe(tmp_path, ("libx264", "hevc_videotoolbox"))
    assert result["libx264"] is None                         # works here
    assert result["hevc_videotoolbox"]                       # reason it does not (not macOS)
    cache = json.loads((tmp_path / "encoders.json").read_text())
    (key,) = cache.keys()
    assert av.__version__ in key
    # The cached answer is used as is: poison it and see it come back without a probe.
    cache[key]["libx264"] = "poisoned"
    (tmp_path / "encoders.json").write_text(json.dumps(cache))
    assert probe(tmp_path, ("libx264",))["libx264"] == "poisoned"
    assert probe(tmp_path, ("libx264",), refresh=True)["libx264"] is None
    plan = plan_encoders(tmp_path, "hevc")
    assert plan.chain[-1] == "libx265" and all(n.startswith(("hevc_", "libx265"))
                                               for n in plan.chain)
