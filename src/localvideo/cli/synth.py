"""CLI commands for the synth area: generate, models (list, pull), decode, clips.

Thin: parse flags, call the service, show progress bars and tables (or JSON).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import UsageError
from ..service import Service
from ..service.models import BatchRequest, GenerateRequest, HostedPreview, Plan
from ..service.synth import HOSTED
from ..units import format_bytes, format_ts
from .common import DataDir, JsonFlag, console, err_console, open_service, print_json


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A progress bar per denoising step and one for the decode, fed by on_progress."""
    if not enabled:
        yield lambda _e: None
        return
    bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=False)
    tasks: dict[str, TaskID] = {}

    def on_progress(e: dict[str, Any]) -> None:
        stage = e.get("stage")      # ComfyUI backend events
        if stage == "progress" and e.get("total"):
            key = f"comfy {e.get('node')}"
            if key not in tasks:
                tasks[key] = bars.add_task(f"ComfyUI {e.get('class_type') or 'sampling'}",
                                           total=e["total"])
            bars.update(tasks[key], completed=e.get("step") or 0)
            return
        if stage in ("queued", "fallback", "download", "convert"):
            detail = (e.get("prompt_id") or e.get("reason") or e.get("filename")
                      or e.get("source") or "")
            bars.console.print(f"[dim]ComfyUI {stage} {escape(str(detail))}[/]")
            return
        phase = e.get("phase")
        if phase == "hosted":       # hosted providers: queued → running (0..1) → download
            state = e.get("state")
            if state == "running" and e.get("progress") is not None:
                if "hosted" not in tasks:
                    tasks["hosted"] = bars.add_task(f"{e.get('provider')} running", total=100)
                bars.update(tasks["hosted"], completed=round(100 * float(e["progress"])))
                return
            if state == "running" and "hosted" in tasks:
                return
            detail = {"submit": e.get("host"), "submitted": e.get("request_id"),
                      "queued": (f"position {e['position']}" if e.get("position") is not None
                                 else ""),
                      "done": e.get("path")}.get(str(state), "")
            if state == "done" and "hosted" in tasks:
                bars.update(tasks["hosted"], completed=100)
            bars.console.print(f"[dim]{e.get('provider')} {state} {escape(str(detail or ''))}[/]")
            return
        if phase == "load" and "load" not in tasks:
            tasks["load"] = bars.add_task(f"loading {e.get('model', '')}", total=None)
        elif phase in ("denoise", "progress") and e.get("steps"):
            if "load" in tasks:
                bars.update(tasks["load"], total=1, completed=1)
            if "denoise" not in tasks:
                tasks["denoise"] = bars.add_task("denoising", total=e["steps"])
            bars.update(tasks["denoise"], completed=e.get("step", 0))
        elif phase == "decode":
            if "decode" not in tasks:
                tasks["decode"] = bars.add_task("VAE decode", total=1)
            if e.get("state") == "done":
                bars.update(tasks["decode"], completed=1)
        elif phase == "latents":
            bars.console.print(f"[dim]latents saved: {escape(str(e.get('path')))}[/]")

    with bars:
        yield on_progress


def _print_plan(plan: Plan) -> None:
    est = plan.estimate
    p = plan.params
    console.print(f"[bold]{plan.model}[/] ({plan.family}) {p['width']}×{p['height']}, "
                  f"{p['frames']} frames, {p['steps']} steps — device {plan.device}, "
                  f"{plan.dtype}")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("offload", plan.offload)
    table.add_row("fp8 (layerwise casting)", ", ".join(plan.fp8_components) or "no")
    table.add_row("VAE tiling / slicing", f"{'on' if plan.vae_tiling else 'off'} / "
                                          f"{'on' if plan.vae_slicing else 'off'}")
    table.add_row("estimated peak", f"{est['peak'] / 1e9:.1f} GB "
                                    f"(weights {est['weights'] / 1e9:.1f}, activations "
                                    f"{est['activations'] / 1e9:.1f}, decode "
                                    f"{est['decode'] / 1e9:.2f})")
    if plan.budget_bytes:
        table.add_row("budget", f"{plan.budget_bytes / 1e9:.1f} GB of "
                                f"{(plan.vram_bytes or 0) / 1e9:.1f} GB")
    table.add_row("fits", "[green]yes[/]" if plan.fits else "[red]no[/]")
    console.print(table)
    for r in plan.reasons:
        console.print(f"  • {r}", highlight=False, markup=False)


def _params(items: list[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` pairs; a VALUE that reads as JSON (5, 2.5, true, "x", [..])
    is taken as that, anything else as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r} is not KEY=VALUE", "e.g. --param duration=5")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask_hosted(preview: HostedPreview) -> None:
    """Show what will leave the machine and ask; without a terminal to ask on, refuse."""
    for line in preview.lines:
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not _interactive():
        raise UsageError("not sending without a yes: no terminal to ask on",
                         "pass --yes to send it as shown above")
    if not typer.confirm("Send it?", default=False, err=True):
        err_console.print("nothing sent")
        raise typer.Exit(1)


def _run_batch(svc: Service, req: BatchRequest, json_out: bool) -> None:
    """A line per job as it starts, ends, retries or fails; the report at the end."""
    def on_event(e: dict[str, Any]) -> None:
        kind, line = e["event"], f"line {e.get('line')}"
        w = e.get("worker") or {}
        if kind == "worker":
            state = "replaced" if e.get("replaced") else "up"
            err_console.print(f"[dim]worker {e['slot']} {state}: {e['host']} pid {e['pid']} "
                              f"({e['device']})[/]", highlight=False)
        elif kind == "start":
            again = f", attempt {e['attempt']}" if e.get("attempt", 1) > 1 else ""
            err_console.print(f"[dim]{line} (seed {e['seed']}) → worker {w.get('slot')}"
                              f"{again}[/]", highlight=False)
        elif kind == "done":
            clip = e["clip"]
            err_console.print(f"[green]{line} done[/]: clip {clip.clip_id} "
                              f"{escape(clip.abs_path)} ({e['seconds']:.1f}s)",
                              highlight=False)
        elif kind in ("retry", "failed"):
            err = e.get("error") or {}
            what = "failed, retrying" if kind == "retry" else (
                f"[bold red]FAILED[/] after {e['attempts']} attempts")
            err_console.print(f"{line} {what}: {escape(str(err.get('message')))}"
                              + (f"\n  → {escape(str(err['hint']))}" if err.get("hint")
                                 else ""), highlight=False)
        elif kind == "cancelled":
            err_console.print(f"[yellow]{line} cancelled[/]", highlight=False)

    report = svc.synth.generate_batch(req, on_event=None if json_out else on_event)
    if json_out:
        print_json(report)
    else:
        console.print(f"[bold]{report.done} of {len(report.jobs)} clips[/] "
                      f"({report.runner}, {len(report.workers)} worker(s), "
                      f"{report.seconds:.1f}s); {report.failed} failed", highlight=False)
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        prompt: Annotated[str | None, typer.Argument(
            help="What the clip shows (with --batch: the jobs' default prompt).")] = None,
        model: Annotated[str | None, typer.Option(
            help="A preset (see `localvideo models`), e.g. ltx-video, wan2.1-t2v-1.3b.")] = None,
        model_path: Annotated[Path | None, typer.Option(
            help="A local diffusers-format folder; the family is read from model_index.json.")
        ] = None,
        image: Annotated[Path | None, typer.Option(
            help="First frame, for image-to-video models.")] = None,
        frames: Annotated[int | None, typer.Option(help="Frame count (e.g. 8k+1 for LTX, "
                                                        "4k+1 for the others).")] = None,
        height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
        width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
        fps: Annotated[float | None, typer.Option(help="Frames per second of the MP4.")] = None,
        steps: Annotated[int | None, typer.Option(help="Denoising steps.")] = None,
        guidance: Annotated[float | None, typer.Option(help="Guidance scale.")] = None,
        seed: Annotated[int | None, typer.Option(
            help="Random seed (same seed + parameters → same frames on the same device).")
        ] = None,
        negative: Annotated[str | None, typer.Option(help="Negative prompt.")] = None,
        out: Annotated[Path | None, typer.Option(
            help="Output .mp4 (default: <data-dir>/clips/<date>/clip_<time>_<prompt>.mp4).")
        ] = None,
        backend: Annotated[str | None, typer.Option(
            help="diffusers (default), comfyui, or a hosted provider: replicate, fal, veo, "
                 "runway (--model in the provider's naming, e.g. owner/name on Replicate)."
        )] = None,
        base_url: Annotated[str | None, typer.Option(
            help="Hosted backends: send to this host instead of the provider's (a proxy).")
        ] = None,
        param: Annotated[list[str] | None, typer.Option(
            "--param", help="Hosted backends: a provider-native input KEY=VALUE, sent as "
                            "given (repeatable), e.g. --param duration=5.")] = None,
        yes: Annotated[bool, typer.Option(
            "--yes", "-y", help="Hosted backends: send without asking first.")] = False,
        timeout: Annotated[float | None, typer.Option(
            help="Hosted backends: cancel on the provider after this many seconds "
                 "(default 1800).")] = None,
        comfy_url: Annotated[str | None, typer.Option(
            help="ComfyUI server (default http://127.0.0.1:8188).")] = None,
        workflow: Annotated[Path | None, typer.Option(
            help="ComfyUI graph in API format (with --backend comfyui).")] = None,
        max_vram: Annotated[str | None, typer.Option(
            help="Plan for at most this much GPU memory, e.g. 12GB.")] = None,
        plan: Annotated[bool, typer.Option(
            "--plan", help="Print the memory plan and its estimate; run nothing.")] = False,
        cache: Annotated[bool, typer.Option(
            "--cache", help="FirstBlockCache: skip transformer blocks when steps barely "
                            "change.")] = False,
        compile: Annotated[bool, typer.Option(
            "--compile", help="torch.compile the transformer (slow first run).")] = False,
        attention: Annotated[str | None, typer.Option(
            help="diffusers attention backend, e.g. native, flash, sage.")] = None,
        device: Annotated[str | None, typer.Option(
            help="cuda, mps or cpu (default: the best available).")] = None,
        batch: Annotated[Path | None, typer.Option(
            "--batch", help="A JSONL file, one job per line ({\"prompt\": ..., \"seed\": ..., "
                            "\"size\": \"832x480\"}); the other flags are every job's "
                            "defaults.")] = None,
        ray: Annotated[str | None, typer.Option(
            help="With --batch: run on Ray — local (this machine), auto (the cluster "
                 "`ray start` joined) or HEAD:6379.")] = None,
        workers: Annotated[int | None, typer.Option(
            help="With --ray: actors (default one per GPU; 1 on a machine without).")
        ] = None,
        data_dir: DataDir = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Generate a video clip from a prompt (and optionally a first frame)."""
        svc = open_service(data_dir, {"synth": {"backend": backend, "comfy_url": comfy_url}})
        if batch is not None:
            if plan:
                raise UsageError("--plan takes one generation, not a --batch",
                                 "run --plan with one job's parameters")
            _run_batch(svc, BatchRequest.of(
                jobs=batch, ray=ray, workers=workers, prompt=prompt, model=model,
                model_path=model_path, image=image, frames=frames, height=height,
                width=width, fps=fps, steps=steps, guidance=guidance, seed=seed,
                negative=negative, max_vram=max_vram, device=device, out=out,
                backend=backend, cache=cache, compile=compile, attention=attention),
                json_out)
            return
        if ray is not None or workers is not None:
            raise UsageError("--ray and --workers spread a batch", "add --batch jobs.jsonl")
        if prompt is None:
            raise UsageError("no prompt", 'pass one: localvideo generate "a red fox running '
                                          'through snow" (or --batch jobs.jsonl)')
        req = GenerateRequest.of(
            prompt=prompt, model=model, model_path=model_path, image=image, frames=frames,
            height=height, width=width, fps=fps, steps=steps, guidance=guidance, seed=seed,
            negative=negative, max_vram=max_vram, device=device, out=out, backend=backend,
            comfy_url=comfy_url, workflow=workflow, cache=cache, compile=compile,
            attention=attention, base_url=base_url, params=_params(param) or None,
            timeout=timeout, yes=yes)
        if plan:
            planned = svc.synth.plan(req)
            print_json(planned) if json_out else _print_plan(planned)
            return
        if (backend or svc.settings.synth.backend) in HOSTED and not yes:
            _ask_hosted(svc.synth.hosted_preview(req))
            req.yes = True
        with _progress(not json_out) as on_progress:
            result = svc.synth.generate(req, on_progress=on_progress)
        if json_out:
            print_json(result)
            return
        t = result.timings or {}
        console.print(f"[bold green]clip {result.clip_id}[/] {escape(result.abs_path)}  "
                      f"(sidecar {escape(result.sidecar)})", highlight=False)
        v = result.video or {}
        console.print(f"  {v.get('width')}×{v.get('height')}, {v.get('frames')} frames at "
                      f"{v.get('fps')} fps, seed {result.seed}; "
                      + ", ".join(f"{k} {s:.1f}s" for k, s in t.items()), highlight=False)
        if result.hosted:
            console.print(f"  {result.backend} {result.model.get('name')}, request "
                          f"{result.hosted.get('request_id')}", highlight=False)

    models_app = typer.Typer(help="Model presets: list them, or pull one's weights.",
                             invoke_without_command=True, no_args_is_help=False)
    app.add_typer(models_app, name="models")

    @models_app.callback()
    def models(ctx: typer.Context, data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """List model presets and which are present locally."""
        if ctx.invoked_subcommand is not None:
            return
        svc = open_service(data_dir)
        rows = svc.synth.models()
        if json_out:
            print_json(rows)
            return
        table = Table(title=f"models in {svc.settings.models_dir}")
        for col in ("name", "family", "size", "kind", "default", "repo", "present"):
            # Names are what people copy into --model: never wrap or cut them.
            table.add_column(col, no_wrap=col == "name", overflow="fold")
        for m in rows:
            table.add_row(m.name, m.family, m.params, "i2v" if m.i2v else "t2v",
                          f"{m.width}×{m.height}×{m.frames} @{m.fps:g}",
                          m.repo_id, "[green]yes[/]" if m.present else "no")
        console.print(table)
        console.print("[dim]fetch one with `localvideo models pull NAME`; any local "
                      "diffusers folder works with --model-path DIR[/]")

    @models_app.command("pull")
    def models_pull(
        name: Annotated[str, typer.Argument(help="Preset name (see `localvideo models`).")],
        data_dir: DataDir = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Download a preset's weights from the Hugging Face hub into the models folder."""
        svc = open_service(data_dir)
        result = svc.synth.pull(name)
        print_json(result) if json_out else console.print(
            f"[green]pulled[/] {result.repo_id} → {escape(result.path)}", highlight=False)

    @app.command()
    def decode(
        latents: Annotated[Path, typer.Argument(help="The .latents.pt a generation saved.")],
        out: Annotated[Path | None, typer.Option(help="Output .mp4 (default: beside the "
                                                       "latents).")] = None,
        device: Annotated[str | None, typer.Option(help="cuda, mps or cpu.")] = None,
        tiling: Annotated[bool, typer.Option(
            "--tiling/--no-tiling", help="Tiled VAE decode (default on: uses far less "
                                         "memory).")] = True,
        data_dir: DataDir = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Finish a generation from its saved latents (e.g. after a decode ran out of memory)."""
        svc = open_service(data_dir)
        with _progress(not json_out) as on_progress:
            decoded = svc.synth.decode(latents, out, device=device, tiling=tiling,
                                       on_progress=on_progress)
        print_json(decoded) if json_out else console.print(
            f"[bold green]clip {decoded.clip_id}[/] {escape(decoded.abs_path)}",
            highlight=False)

    @app.command()
    def clips(
        limit: Annotated[int | None, typer.Option(help="Only the newest N.")] = None,
        data_dir: DataDir = None,
        json_out: JsonFlag = False,
    ) -> None:
        """List generated clips, newest last."""
        svc = open_service(data_dir)
        rows = svc.synth.clips(limit=limit)
        if json_out:
            print_json(rows)
            return
        table = Table()
        for col in ("id", "created", "model", "size", "seed", "time", "file", "prompt"):
            table.add_column(col)
        for c in rows:
            v = c.video or {}
            model = c.model or {}
            table.add_row(str(c.id), format_ts(c.created_ts)[:19],
                          str(model.get("name") or Path(str(model.get("path") or
                                                            model.get("workflow"))).name),
                          f"{v.get('width')}×{v.get('height')}×{v.get('frames')}",
                          str(c.seed), f"{c.seconds:.0f}s",
                          f"{escape(c.path)} ({format_bytes(v.get('bytes') or 0)})"
                          if c.exists else f"[red]missing[/] {escape(c.path)}",
                          escape(c.prompt[:40]))
        console.print(table)
