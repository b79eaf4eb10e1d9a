"""The ffmpeg-CLI chunk writer (for encoders PyAV's build lacks), run with the system
ffmpeg's own libx264/libx265 as stand-ins for a hardware encoder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import av
import pytest
from record_helpers import decode_all, ffprobe, glyph, mp4_boxes, solid

from localvideo.capture.base import Frame
from localvideo.errors import EncoderError
from localvideo.record.canvas import Canvas
from localvideo.record.encoder import MOVFLAGS, encoder_options, open_writer
from localvideo.record.ffmpeg_cli import CliChunkWriter


@pytest.fixture(autouse=True)
def _ffmpeg_program() -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg program is not installed (bash scripts/setup.sh test installs it)")


def _picture(c: Canvas, i: int) -> av.VideoFrame:
    px = solid(320, 240)
    for k in range(i + 1):
        px = glyph(px, 8 + 8 * k, 20)
    c.draw(Frame(pixels=px, ts=0.0))
    return c.video_frame()


@pytest.mark.parametrize("encoder,codec,tag", [("cli:libx264", "h264", "avc1"),
                                               ("cli:libx265", "hevc", "hvc1")])
def test_cli_writer_keeps_vfr_timestamps_and_fragments(tmp_path: Path, encoder: str,
                                                       codec: str, tag: str) -> None:
    path = tmp_path / "c.mp4"
    c = Canvas(320, 240)
    w = open_writer(path, 320, 240, encoder, 28)
    pts = [0, 480, 1010, 1490, 4200, 9000]
    for i, p in enumerate(pts):
        w.write(_picture(c, i), p)
    w.close()
    st = ffprobe(path)["streams"][0]
    assert (st["codec_name"], st["codec_tag_string"]) == (codec, tag)
    assert mp4_boxes(path).count("moof") >= len(pts) - 1
    assert [round(t * 1000) for t, _ in decode_all(path)] == pts


def test_cli_chunk_is_readable_while_written(tmp_path: Path) -> None:
    path = tmp_path / "live.mp4"
    c = Canvas(320, 240)
    w = open_writer(path, 320, 240, "cli:libx264", 28)
    for i in range(8):
        w.write(_picture(c, i), i * 500)
    got = 0
    for _ in range(40):                    # ffmpeg runs beside us: give it up to 2 s
        copy = tmp_path / "copy.mp4"
        shutil.copyfile(path, copy)
        got = len(decode_all(copy)) if copy.stat().st_size else 0
        if got >= 7:
            break
        time.sleep(0.05)
    w.close()
    assert got >= 7
    assert len(decode_all(path)) == 8


@pytest.mark.parametrize("pause", [0.0, 0.05])
def test_cli_encoder_failure_is_an_encoder_error_with_ffmpegs_words(tmp_path: Path,
                                                                    pause: float) -> None:
    # An option x264 refuses: ffmpeg exits when it opens the encoder at the first frame, and
    # says why on stderr. Those words (not only ours) must reach the error, whether the next
    # write finds the process gone (pause) or hits the closed pipe first (no pause).
    w = CliChunkWriter(tmp_path / "x.mp4", 320, 240, "libx264", "h264",
                       {**encoder_options("libx264", 28), "preset": "nosuchpreset"}, MOVFLAGS)
    c = Canvas(320, 240)
    with pytest.raises(EncoderError) as err:
        for i in range(50):
            w.write(_picture(c, i % 5), i * 500)
            time.sleep(pause)
    w.close()
    msg = err.value.message
    assert msg.startswith("cli:libx264 ")
    # ffmpeg's own words: x264's complaint or ffmpeg's "Error while opening encoder".
    assert "invalid preset 'nosuchpreset'" in msg or "Error while opening encoder" in msg, msg
