"""media.py: real encodes and decodes through PyAV, checked with PyAV and ffprobe directly."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from localvideo import media
from localvideo.errors import EncoderError, MediaError, NotFoundError
from localvideo.record.encoder import ChunkWriter

# Distinct solid colours, far apart after yuv420p rounding.
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 240, 40), (20, 20, 20),
           (250, 250, 250)]


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def decode_rgb(path: Path) -> list[tuple[float, np.ndarray]]:
    """Every frame of ``path`` with its time, decoded by PyAV without media.py."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(s)]


def close_to(pixel: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(rgb)) <= tol))


def test_odd_size_is_padded_with_the_edge_not_cropped(tmp_path: Path) -> None:
    # Left half red, right half blue, 33 wide × 45 high: the padded column and row must
    # repeat the blue/red edge, and nothing may be cut off.
    px = np.zeros((45, 33, 3), np.uint8)
    px[:, :17] = COLOURS[0]
    px[:, 17:] = COLOURS[2]
    out = media.write_h264([px] * 3, 10, tmp_path / "odd.mp4", crf=0)
    assert (out.width, out.height, out.frames) == (34, 46, 3)
    frames = decode_rgb(tmp_path / "odd.mp4")
    assert len(frames) == 3
    pic = frames[0][1]
    assert pic.shape == (46, 34, 3)
    assert close_to(pic[20, 33], COLOURS[2]) and close_to(pic[45, 33], COLOURS[2])
    assert close_to(pic[45, 2], COLOURS[0])


def test_same_frames_give_the_same_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 255, (12, 64, 96, 3), dtype=np.uint8)
    a = media.write_h264(frames, 24, tmp_path / "a.mp4")
    b = media.write_h264(list(frames), 24, tmp_path / "b.mp4")
    assert a.bytes == b.bytes > 0
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "a.mp4",
                                                                   tmp_path / "b.mp4")]
    assert digest[0] == digest[1]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"the previous clip")

    def frames() -> Iterator[np.ndarray]:  # the third frame is not a picture: the encode fails mid-way
        yield solid(32, 32, COLOURS[0])
        yield solid(32, 32, COLOURS[1])
        yield np.zeros((32, 32), np.float32)

    with pytest.raises(EncoderError, match="RGB picture"):
        media.write_h264(frames(), 10, target)
    assert target.read_bytes() == b"the previous clip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]

    # An exception in the caller's own loop aborts the same way.
    with pytest.raises(RuntimeError), media.H264Writer(target, 10) as w:
        for c in COLOURS * 10:
            w.write(solid(32, 32, c))
        (part,) = tmp_path.glob("clip.mp4.*.part")
        assert part.stat().st_size > 0
        raise RuntimeError("caller failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]

    with pytest.raises(EncoderError, match="no frames"):
        media.write_h264([], 10, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_probe_matches_ffprobe(tmp_path: Path) -> None:
    if not shutil.which("ffprobe"):
        pytest.fail("ffprobe is not installed: apt-get install ffmpeg (scripts/setup.sh does)")
    imgs = [Image.fromarray(solid(40, 64, c)) for c in COLOURS]
    media.write_h264(imgs, 4, tmp_path / "p.mp4")
    info = media.probe(tmp_path / "p.mp4")
    ref = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json",
         str(tmp_path / "p.mp4")], capture_output=True, text=True, check=True).stdout)
    st = ref["streams"][0]
    assert (info.codec, info.width, info.height) == (st["codec_name"], st["width"], st["height"])
    assert info.frames == int(st["nb_read_frames"]) == len(COLOURS)
    assert info.duration == pytest.approx(float(ref["format"]["duration"]), abs=0.01)
    assert info.duration == pytest.approx(len(COLOURS) / 4, abs=0.01)
    assert info.fps == pytest.approx(4)
    assert info.bytes == (tmp_path / "p.mp4").stat().st_size

    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError, match="junk.mp4"):
        media.probe(tmp_path / "junk.mp4")


def test_frame_at_picks_the_frame_shown_at_that_time(tmp_path: Path) -> None:
    # 4 fps: frame i is shown from i/4 s to (i+1)/4 s.
    media.write_h264([solid(32, 48, c) for c in COLOURS], 4, tmp_path / "t.mp4")
    for t, i in [(0.0, 0), (0.2, 0), (0.25, 1), (0.6, 2), (0.99, 3), (1.3, 5), (60.0, 5)]:
        pic = np.asarray(media.frame_at(tmp_path / "t.mp4", t))
        assert close_to(pic[16, 24], COLOURS[i]), (t, i, pic[16, 24])
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises((MediaError, NotFoundError)):
        media.frame_at(tmp_path / "empty.mp4", 0.0)


def test_hevc_fmp4_chunk_transcodes_to_playable_h264(tmp_path: Path) -> None:
    # A recorder chunk: fragmented MP4, HEVC, variable frame rate in ms.
    src = tmp_path / "chunk.mp4"
    w = ChunkWriter(src, 96, 64, "libx265", 28)
    times = [0, 500, 1700, 1900, 4000]
    for ms, c in zip(times, COLOURS, strict=False):
        w.write(media.frame_from_ndarray(solid(64, 96, c)).reformat(format="yuv420p"), ms)
    w.close()
    assert media.probe(src).codec == "hevc"

    out = media.transcode_h264(src, tmp_path / "play.mp4")
    assert (out.codec, out.frames, out.width, out.height) == ("h264", len(times), 96, 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk.mp4", "play.mp4"]
    with av.open(str(tmp_path / "play.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    frames = decode_rgb(tmp_path / "play.mp4")
    assert [round(t, 3) for t, _ in frames] == [ms / 1000 for ms in times]
    for (_, pic), c in zip(frames, COLOURS, strict=False):
        assert close_to(pic[32, 48], c, tol=16)


def test_two_writers_of_one_path_at_once_do_not_mix(tmp_path: Path) -> None:
    # Two requests transcoding the same chunk at the same time: each writes its own temp
    # file, and whichever finishes last leaves a whole clip.
    a = media.H264Writer(tmp_path / "same.mp4", 10, crf=0)
    b = media.H264Writer(tmp_path / "same.mp4", 10, crf=0)
    for i in range(6):
        a.write(solid(32, 32, COLOURS[0]))
        b.write(solid(32, 32, COLOURS[1 + i % 2]))
    a.close()
    b.close()
    frames = decode_rgb(tmp_path / "same.mp4")
    assert len(frames) == 6
    assert [close_to(p[16, 16], COLOURS[1 + i % 2]) for i, (_, p) in enumerate(frames)] == [True] * 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.mp4"]


@pytest.mark.parametrize("size", [(256, 16), (641, 359), (1920, 1080)])
@pytest.mark.parametrize("full_range", [False, True], ids=["limited", "full"])
def test_gray_at_is_ffmpegs_gray_without_converting_the_frame(size: tuple[int, int],
                                                              full_range: bool) -> None:
    # The analyzer's thumbnails sample the luma plane directly; the values must be exactly
    # what FFmpeg's whole-frame gray conversion gives, for every one of the 256 luma values.
    w, h = size
    frame = av.VideoFrame(w, h, "yuv420p")
    rng = np.random.default_rng(3)
    for i, plane in enumerate(frame.planes):
        a = np.frombuffer(plane, np.uint8)
        a[:] = (np.arange(a.size) % 256) if i == 0 else rng.integers(0, 256, a.size)
    if full_range:
        frame.color_range = 2
    dec = media.Decoded(0.0, frame)
    whole = dec.gray()
    for rows, cols in ((slice(None), slice(None)), (slice(3, h, 7), slice(5, w - 1, 12)),
                       (slice(0, 1), slice(w - 1, w))):
        got = dec.gray_at(rows, cols)
        assert got.flags.c_contiguous and np.array_equal(got, whole[rows, cols]), (rows, cols)
    assert len(np.unique(whole)) > (200 if not full_range else 255)   # all values were met
