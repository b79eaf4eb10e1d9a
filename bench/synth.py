"""Synthesis benchmark: plain diffusers vs our plan vs our plan + FirstBlockCache, side by side.

For each model family, three columns run one after the other, each in a fresh subprocess so
its peak memory is its own (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the worker's
peak RSS):

* **diffusers** — what a plain script does: ``DiffusionPipeline.from_pretrained(dir)``,
  ``.to(device)``, call it with the pipeline's own decode (baseline);
* **plan** — ``localvideo generate``'s engine: the memory plan (offload / fp8 / tiling for
  the budget), latents saved, planned decode;
* **plan+cache** — the same with ``--cache`` (FirstBlockCache, threshold 0.05).

Printed per family: seconds per denoising step (median of the step-to-step gaps), whole-run
seconds, peak memory, and the ratios plan/diffusers and (plan+cache)/plan.

Modes:

* ``--device cpu`` (default): the tiny random-weight families (tests/tinymodels.py) at tiny sizes —
  a smoke test that the three paths run and are measured the same way; CPU numbers say
  nothing about GPU speed or VRAM.
* ``--device cuda``: each family at its real size (the published configurations in
  tests/realsize.py, whose parameter counts the tests check against the planner's) with
  random weights — time per step and memory do not depend on the weight values. Built once per family into ``--work-dir`` (saved with
  save_pretrained, so the plan column loads it exactly like a downloaded model), deleted
  afterwards. The plan columns use the goal budgets (``--budget``: Wan 1.3B at 480p in
  8 GB, HunyuanVideo at 720p in 24 GB); goals: those fit, and plan+cache ≤ 0.6× the plan's
  step time.

    .venv/bin/python bench/synth.py                       # CPU smoke test, 8 steps
    .venv/bin/python bench/synth.py --steps 12 --json
    .venv/bin/python bench/synth.py --device cuda --families wan,hunyuan --steps 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GB = 1000**3

# GPU mode: which preset stands for each family, the size it runs at and the budget the
# plan column is given (None: the GPU's free memory).
REAL = {
    "ltx": ("ltx-video", None),
    "wan": ("wan2.1-t2v-1.3b", 8 * GB),
    "hunyuan": ("hunyuanvideo", 24 * GB),
    "cogvideox": ("cogvideox-2b", None),
}
COLUMNS = ("diffusers", "plan", "plan+cache")


# ---- building models ---------------------------------------------------------------------

def build(family: str, device: str, root: Path) -> tuple[Path, dict[str, int]]:
    """(model folder, size) for one family in this mode."""
    # The model builders are test fixtures, kept out of the installed package.
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from realsize import build_real
    from tinymodels import TINY_SIZES, build_tiny

    from localvideo.synth.presets import PRESETS

    out = root / family
    if device == "cpu":
        # 64×64 rather than the test sizes: enough work per step to rise above timer noise.
        return build_tiny(family, out), {**TINY_SIZES[family], "height": 64, "width": 64}
    p = PRESETS[REAL[family][0]]
    return build_real(p.name, out), {"height": p.height, "width": p.width, "frames": p.frames}


# ---- one column, in its own process -----------------------------------------------------

def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from localvideo.synth.engine import peak_memory
    from localvideo.synth.family import Request
    from localvideo.synth.presets import resolve

    device = args.device
    size = json.loads(args.size)
    model = resolve(Path(args.model), model_path=args.model)
    req = Request(prompt="a red fox running through snow", negative=None, image=None,
                  frames=size["frames"], height=size["height"], width=size["width"],
                  fps=8.0, steps=args.steps, guidance=5.0, seed=0)
    out = Path(args.out)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    info: dict[str, Any] = {"column": args.column}
    medians: list[float] = []
    try:
        for _ in range(args.repeat):
            marks = run_once(args, model, req, device, out, info)
            gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
            # The first step includes warm-up (kernel selection, allocations): leave it out.
            medians.append(statistics.median(gaps[1:] if len(gaps) > 2 else gaps))
        # Best of the repeats: on a shared machine, slower repeats measure the neighbours.
        info["step_s"] = min(medians)
        info["ok"] = True
    except torch.OutOfMemoryError as exc:
        info.update(ok=False, error=f"OOM: {str(exc).splitlines()[0]}")
    except Exception as exc:  # noqa: BLE001 - a column that fails is a result, not a crash
        info.update(ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    info["total_s"] = (time.perf_counter() - t0) / max(1, len(medians) or 1)
    info["peak_bytes"] = peak_memory(device)["bytes"]
    return info


def run_once(args: argparse.Namespace, model: Any, req: Any, device: str, out: Path,
             info: dict[str, Any]) -> list[float]:
    """One full generation of this column; returns the step timestamps."""
    import torch

    from localvideo.synth.engine import Speed, generate, latents_path_for
    from localvideo.synth.planner import make_plan, query_vram

    marks: list[float] = []
    if args.column == "diffusers":
        from diffusers import DiffusionPipeline

        from localvideo.synth.family import get

        fam = get(model.family)
        cls = fam.pipeline_class(model, with_image=False)
        from localvideo.synth.torchdeps import dtype_kwargs

        pipe = DiffusionPipeline.from_pretrained(
            args.model, **dtype_kwargs(torch.bfloat16 if device == "cuda" else torch.float32))
        assert type(pipe).__name__ == cls
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        kwargs = {"prompt": req.prompt, "height": req.height, "width": req.width,
                  "num_frames": req.frames, "num_inference_steps": req.steps,
                  "guidance_scale": req.guidance, "output_type": "np",
                  "generator": torch.Generator(device=device).manual_seed(0),
                  **fam.extra_kwargs(pipe, req)}

        def cb(_p: Any, _i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if device == "cuda":
                torch.cuda.synchronize()
            marks.append(time.perf_counter())
            return tensors

        marks.append(time.perf_counter())
        pipe(callback_on_step_end=cb, **kwargs)
        info["plan"] = "pipe.to(device), pipeline decode"
    else:
        vram = None
        if device == "cuda":
            free = query_vram("cuda")
            vram = min(args.budget, free) if args.budget else free
        plan = make_plan(model.profile, device=device, vram_bytes=vram, height=req.height,
                         width=req.width, frames=req.frames, guidance=req.guidance)
        info["plan"] = (f"offload={plan.offload} fp8={plan.fp8} tiling={plan.vae_tiling}"
                        + (f" budget={vram / GB:.0f}GB" if vram else ""))

        def on_progress(e: dict[str, Any]) -> None:
            if e.get("phase") == "denoise":
                if device == "cuda":
                    torch.cuda.synchronize()
                marks.append(time.perf_counter())

        generate(model, req, plan, device=device, out=out,
                 speed=Speed(cache=args.column == "plan+cache"), on_progress=on_progress)
        latents_path_for(out).unlink(missing_ok=True)
    return marks


def run_column(family: str, column: str, model: Path, size: dict[str, int],
               args: argparse.Namespace, work: Path) -> dict[str, Any]:
    budget = REAL[family][1] if args.device == "cuda" and args.budget is None else args.budget
    cmd = [sys.executable, __file__, "--worker", "--column", column, "--model", str(model),
           "--size", json.dumps(size), "--steps", str(args.steps), "--device", args.device,
           "--repeat", str(args.repeat),
           "--out", str(work / f"{family}-{column.replace('+', '-')}.mp4")]
    if budget:
        cmd += ["--budget", str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        return json.loads(last[0])  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return {"column": column, "ok": False,
                "error": (proc.stderr.strip().splitlines() or ["worker died"])[-1]}


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--families", default="ltx,wan,hunyuan,cogvideox")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=None,
                    help="generations per column, best kept (default: 5 on cpu, 1 on cuda)")
    ap.add_argument("--budget", type=int, default=None,
                    help="bytes the plan columns may use (default: per-family goal on cuda)")
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--column", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    import diffusers
    import torch
    import transformers

    # Keep the printed table clean: no download/saving progress bars in between.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    if args.repeat is None:
        args.repeat = 5 if args.device == "cpu" else 1
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU here (CPU mode: drop --device)")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="localvideo-bench-synth-"))
    work.mkdir(parents=True, exist_ok=True)
    where = (torch.cuda.get_device_name(0) if args.device == "cuda"
             else f"CPU, {torch.get_num_threads()} threads, tiny random-weight models")
    results: dict[str, Any] = {"device": args.device, "where": where, "steps": args.steps,
                               "families": {}}
    if not args.json:
        print(f"synth bench on {where}; {args.steps} steps; columns: {', '.join(COLUMNS)}")
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        t0 = time.perf_counter()
        model, size = build(family, args.device, work)
        built = time.perf_counter() - t0
        cols = {c: run_column(family, c, model, size, args, work) for c in COLUMNS}
        base, plan, cache = (cols[c].get("step_s") for c in COLUMNS)
        row = {"size": size, "build_s": built, "columns": cols,
               "ratios": {"plan/diffusers step": plan / base if plan and base else None,
                          "cache/plan step": cache / plan if cache and plan else None,
                          "plan/diffusers peak": (cols["plan"]["peak_bytes"]
                                                  / cols["diffusers"]["peak_bytes"])}}
        results["families"][family] = row
        if args.device == "cuda":
            shutil.rmtree(model, ignore_errors=True)   # tens of GB each at real size
        if args.json:
            continue
        unit = "GB VRAM" if args.device == "cuda" else "MB RSS"
        scale = GB if args.device == "cuda" else 1e6
        print(f"\n{family}: {size['width']}×{size['height']}×{size['frames']} "
              f"(built in {built:.1f}s)")
        print(f"  {'column':<11} {'s/step':>9} {'total s':>8} {'peak ' + unit:>13}  plan")
        for c in COLUMNS:
            r = cols[c]
            if not r.get("ok"):
                print(f"  {c:<11} {'failed':>9}  {r.get('error')}")
                continue
            print(f"  {c:<11} {r['step_s']:>9.4f} {r['total_s']:>8.2f} "
                  f"{r['peak_bytes'] / scale:>13.1f}  {r.get('plan', '')}")
        print(f"  step time: plan/diffusers {fmt_ratio(plan, base)}, "
              f"plan+cache/plan {fmt_ratio(cache, plan)} (goal ≤ 0.60× on GPU)")
        goal = REAL[family][1]
        if args.device == "cuda" and goal:
            peak = cols["plan"].get("peak_bytes", 0)
            print(f"  goal: plan peak ≤ {goal / GB:.0f} GB → "
                  f"{'met' if cols['plan'].get('ok') and peak <= goal else 'NOT met'} "
                  f"({peak / GB:.1f} GB)")
    if args.json:
        print(json.dumps(results, indent=2))
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
