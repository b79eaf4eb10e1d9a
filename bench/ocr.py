"""OCR engines side by side: libtesseract in process (tesserocr) against the tesseract program.

The same images are read by both engines, alternating, several rounds, on three workloads the
analyzer meets: a whole 1080p page of text (the first page of a document), a changed strip
of two lines (typing, a log line), and a small 800×600 window (read at 2×). Printed per
workload: CPU-seconds per read (this process and its children, so the program's process
counts) for each engine, the ratio library / program, and whether both read the same words.

    .venv/bin/python bench/ocr.py
    .venv/bin/python bench/ocr.py --rounds 5 --json
"""

from __future__ import annotations

import argparse
import json
import random
import resource

from PIL import Image, ImageDraw, ImageFont

from localvideo.analyze import ocr

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
VOCAB = ("the quarterly report needs revenue table fixed before friday remember rotate staging "
         "database credentials tonight meeting notes ship recorder then measure analysis lag "
         "write migration observations test build step compiling module ok error warning").split()


def page(size: tuple[int, int], lines: int, font_size: int, seed: int) -> Image.Image:
    rnd = random.Random(seed)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_size)
    step = int(font_size * 1.2)
    for i in range(lines):
        text = f"{i + 1:4d} " + " ".join(rnd.choice(VOCAB) for _ in range(size[0] // 110))
        draw.text((6, 4 + i * step), text, fill="black", font=font)
    return img


def cpu() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    whole = page((1920, 1080), 52, 16, 1)
    workloads = {
        "1080p page": [whole],
        "2-line strip": [whole.crop((0, 4 + i * 19, 1920, 4 + (i + 2) * 19)) for i in range(8)],
        "800x600 window": [page((800, 600), 28, 16, 2)],
    }
    versions = {}
    for engine in ("library", "program"):
        ocr.set_engine(engine)
        versions[engine] = ocr.check_tesseract()
    res: dict[str, dict[str, float | bool]] = {}
    for name, images in workloads.items():
        spent = {"library": 0.0, "program": 0.0}
        texts: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for engine in ("library", "program"):   # alternate: drift hits both alike
                ocr.set_engine(engine)
                t = cpu()
                texts[engine] = [ocr.read_text(im).text for im in images]
                spent[engine] += cpu() - t
        reads = args.rounds * len(images)
        lib, prog = spent["library"] / reads, spent["program"] / reads
        res[name] = {"library_cpu_s": lib, "program_cpu_s": prog, "ratio": lib / prog,
                     "same_text": texts["library"] == texts["program"]}
    if args.json:
        print(json.dumps({"versions": versions, "workloads": res}, indent=2))
        return
    print(f"engines: {versions['library']} (tesserocr) vs {versions['program']}, "
          f"{args.rounds} rounds, CPU-s per read\n")
    print(f"{'':18}{'library':>10}{'program':>10}{'lib/prog':>10}  same text")
    for name, r in res.items():
        print(f"{name:18}{r['library_cpu_s']:>10.3f}{r['program_cpu_s']:>10.3f}"
              f"{r['ratio']:>10.2f}  {'yes' if r['same_text'] else 'no'}")


if __name__ == "__main__":
    main()
