"""What encryption at rest costs the recorder and the readers, on a 1080p screen sequence.

The same frames (a 1920×1080 page of text that scrolls and is typed into, rendered with
PIL) are encoded by the recorder's own chunk writer (libx264 through PyAV, fragmented MP4,
the recorder's options) into a plain file and into a sealed one, alternating runs; then
both are decoded the way the analysis and playback read them (media.iter_frames). Printed:
CPU ms per frame (process time) for writing and for reading, plain vs sealed, bytes, and
the ratio. Sealing costs one AES-GCM pass and one write per fragment; reading a sealed
chunk first decrypts the whole file into memory.

    .venv/bin/python bench/encryption.py            # 120 frames, 3 rounds
    .venv/bin/python bench/encryption.py --frames 60 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from localvideo import crypto, media
from localvideo.record.encoder import ChunkWriter


def screens(n: int) -> list[media.VideoFrame]:
    try:
        font = ImageFont.truetype("DejaVuSansMono.ttf", 16)
    except OSError:
        font = ImageFont.load_default()
    lines = [f"{i:04d} the quick brown fox jumps over the lazy dog — log line {i * 7919 % 10007}"
             for i in range(400)]
    out = []
    for k in range(n):
        im = Image.new("RGB", (1920, 1080), "white")
        d = ImageDraw.Draw(im)
        top = k // 3                           # scrolls a line every third frame
        for row in range(55):
            d.text((20, 10 + row * 19), lines[(top + row) % len(lines)], fill="black", font=font)
        d.text((20, 1050), "typed: " + "x" * (k % 120), fill="blue", font=font)
        out.append(media.frame_from_ndarray(np.asarray(im)).reformat(format="yuv420p"))
    return out


def write(path: Path, frames: list[media.VideoFrame], seal: crypto.Sealer | None) -> float:
    t0 = time.process_time()
    w = ChunkWriter(path, 1920, 1080, "libx264", 28, 2.0, seal)
    for i, f in enumerate(frames):
        w.write(f, i * 500)
    w.close()
    return (time.process_time() - t0) * 1000 / len(frames)


def read(path: Path, n: int) -> float:
    t0 = time.process_time()
    got = sum(1 for _ in media.iter_frames(path))
    assert got == n, (got, n)
    return (time.process_time() - t0) * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    frames = screens(args.frames)
    keys = crypto.derive(b"\x01" * 32)
    crypto.remember(keys)                     # as `unlock` leaves it in a reading process
    sealer = crypto.Sealer(keys.public, keys.key_id)
    res: dict[str, list[float]] = {"plain w": [], "sealed w": [], "plain r": [], "sealed r": []}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, seal in (("plain", None), ("sealed", sealer)):
                p = Path(tmp) / f"{name}.mp4"
                res[f"{name} w"].append(write(p, frames, seal))
                res[f"{name} r"].append(read(p, len(frames)))
                sizes[name] = p.stat().st_size
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"1920x1080, {args.frames} frames, libx264 (recorder options), median of "
          f"{args.rounds} rounds, CPU ms per frame")
    print(f"{'':10} {'plain':>8} {'sealed':>8} {'ratio':>7}")
    for what, k in (("write", "w"), ("read", "r")):
        a, b = med[f"plain {k}"], med[f"sealed {k}"]
        print(f"{what:10} {a:8.2f} {b:8.2f} {b / a:7.3f}")
    print(f"{'bytes':10} {sizes['plain']:8d} {sizes['sealed']:8d} "
          f"{sizes['sealed'] / sizes['plain']:7.4f}")


if __name__ == "__main__":
    main()
