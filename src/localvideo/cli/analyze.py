"""CLI commands for the analyze area: analyze, search, timeline, observations, ask, keys.

Thin: parse flags, call the service, print with rich (or JSON).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import signal
import threading
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..service import Service
from ..service.models import AnalyzeRequest, AskRequest
from ..units import format_duration, format_ts
from .common import DataDir, JsonFlag, console, err_console, open_service, print_json

ReasonerOpt = Annotated[str | None, typer.Option(
    "--reasoner", help="auto (default), offline, anthropic, openai or gemini.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name for the reasoner.")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="Endpoint URL (else ANTHROPIC_BASE_URL / OPENAI_BASE_URL / default).")]
KeyOpt = Annotated[str | None, typer.Option(
    "--key", help="API key for this run (else the stored key, else the env var).")]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", help="From this moment: 2h (ago), 14:00, today, yesterday, 2026-11-25T09:00, "
                    "unix seconds.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this moment (same forms).")]


def _flat(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _hit(snippet: str) -> Text:
    """The snippet with its [match] markers shown bold (as plain Text: no markup parsing)."""
    out = Text()
    for i, part in enumerate(re.split(r"\[([^\[\]]*)\]", _flat(snippet, 100))):
        out.append(f"[{part}]" if i % 2 else part, style="bold yellow" if i % 2 else "")
    return out


def _hms(ts: float | None) -> str:
    return format_ts(ts)[11:19] if ts else "-"


def _progress_line(state: dict[str, Any]) -> Text:
    line = Text()
    line.append("◆ analyze ", style="bold cyan")
    line.append(f"chunks {state['chunks_done']}/{state['pending']} · key frames "
                f"{state['keyframes']} · observations {state['observations']}")
    if state.get("last"):
        line.append(f"  {state['last']}", style="dim")
    return line


def _reindex(svc: Service, stop: threading.Event, json_out: bool) -> None:
    """`analyze --reindex`: embed the history with a progress bar; Ctrl-C stops cleanly."""
    old = signal.signal(signal.SIGINT, lambda _s, _f: stop.set())
    quiet = json_out or not console.is_terminal
    bar = None if quiet else Progress("[bold cyan]◆ embedding[/] {task.description}",
                                      BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                      console=err_console, transient=True)
    task = bar.add_task("key frames", total=None) if bar is not None else None
    try:
        with bar or contextlib.nullcontext():
            def on_progress(ev: dict[str, Any]) -> None:
                if bar is not None and task is not None and ev.get("event") == "embed":
                    bar.update(task, completed=ev["done"], total=ev["total"],
                               description=f"key frames ({ev['model']})")

            result = svc.analyze.reindex(stop=stop, on_progress=on_progress)
    finally:
        signal.signal(signal.SIGINT, old)
    if json_out:
        print_json(result)
        return
    console.print(f"embedded {result.frames} key frame(s) with {result.model}: "
                  f"{result.blocks} text block(s), {result.vectors} new vector(s)"
                  + (f"; {result.dropped_vectors} old vector(s) replaced"
                     if result.dropped_vectors else "")
                  + ("" if result.finished else " (stopped: run it again to finish; the "
                     "previous model is still the one searched)"), highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def analyze(
        data_dir: DataDir = None,
        follow: Annotated[bool, typer.Option(
            "--follow", help="Keep going: read chunks as they are written until Ctrl-C.")] = False,
        window: Annotated[str | None, typer.Option(
            help="Activity per observation: 30s, 5m (default), 1h.")] = None,
        reasoner: ReasonerOpt = None,
        model: ModelOpt = None,
        base_url: BaseUrlOpt = None,
        key: KeyOpt = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Read and index locally; print what would be sent, send nothing.")
        ] = False,
        reindex: Annotated[bool, typer.Option(
            "--reindex", help="Embed every key frame read so far for search by meaning, with "
                              "the configured analyze.embed_model (after a model change: "
                              "replaces the old vectors); reads no new chunks.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Read the screen text of new chunks, index it, and write observations."""
        svc = open_service(data_dir)
        stop = threading.Event()
        if reindex:
            _reindex(svc, stop, json_out)
            return

        def on_sigint(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            # First Ctrl-C: finish the key frame in hand and stop cleanly; a second one aborts.
            stop.set()

        old = signal.signal(signal.SIGINT, on_sigint)
        old_term = signal.signal(signal.SIGTERM, on_sigint)
        state: dict[str, Any] = {"pending": 0, "chunks_done": 0, "keyframes": 0,
                                 "observations": 0, "last": ""}
        dry: list[dict[str, Any]] = []
        quiet = json_out or not console.is_terminal

        try:
            live = None if quiet else Live(_progress_line(state), console=err_console,
                                           transient=True, refresh_per_second=4)
            with live or contextlib.nullcontext():
                def on_progress(ev: dict[str, Any]) -> None:
                    kind = ev.get("event")
                    if kind == "pass":
                        state["pending"] = state["chunks_done"] + ev["pending_chunks"]
                    elif kind == "chunk" and ev.get("done"):
                        state["chunks_done"] += 1
                    elif kind == "keyframe":
                        state["keyframes"] += 1
                        state["last"] = (f"{_hms(ev['ts'])} {ev['app']} — "
                                         f"{_flat(ev['title'], 40)} ({ev['reason']}, "
                                         f"{ev['ocr_ms']:.0f} ms)")
                    elif kind == "observation":
                        state["observations"] += 1
                        if ev.get("status") != "done":
                            err_console.print(f"[yellow]observation {ev['id']} {ev['status']}:"
                                              f"[/] {ev.get('error')}", highlight=False)
                    elif kind == "dry_run":
                        dry.append(ev)
                    if live is not None:
                        live.update(_progress_line(state))

                result = svc.analyze.run(
                    AnalyzeRequest.of(follow=follow, dry_run=dry_run, window=window,
                                      reasoner=reasoner, model=model, base_url=base_url,
                                      key=key), stop=stop, on_progress=on_progress)
        finally:
            signal.signal(signal.SIGINT, old)
            signal.signal(signal.SIGTERM, old_term)
        if json_out:
            print_json(result)
            return
        if dry_run:
            for req in result.requests or []:
                console.rule(f"would send to {req['reasoner']} ({req['model']}) — "
                             f"{_hms(req['start_ts'])}–{_hms(req['end_ts'])}")
                print(json.dumps({k: v for k, v in req.items() if k != "schema"}, indent=2,
                                 ensure_ascii=False, default=str))
            if not result.requests:
                console.print("nothing would be sent: no complete window of activity yet")
        per = result.ocr_ms_per_keyframe
        console.print(f"read {result.keyframes} key frames in {result.frames} frames "
                      f"from {result.chunks} chunk(s)"
                      + (f", OCR {per:.0f} ms per key frame" if per else "")
                      + (f", {result.embedded} embedded for search by meaning"
                         if result.embedded else "")
                      + f"; {len(result.observations)} observation(s) via "
                      f"{result.reasoner}" + (" (stopped)" if result.stopped else ""))
        console.print(result.status.line, highlight=False, markup=False)
        for err in result.errors:
            err_console.print(f"[yellow]warning:[/] {err}", highlight=False)

    @app.command()
    def search(
        query: Annotated[str, typer.Argument(
            help='Words seen on screen or in a window title; "a phrase", a OR b, -word, pre*; '
                 'or what it was about, in your own words.')],
        data_dir: DataDir = None,
        app_: Annotated[str | None, typer.Option("--app", help="Only this app (substring).")
                        ] = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        limit: Annotated[int, typer.Option(help="At most this many hits.")] = 50,
        mode: Annotated[str | None, typer.Option(
            "--mode", help="keyword (the words), semantic (the meaning) or hybrid (both; the "
                           "default once `analyze` has embedded anything).")] = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Find the moments something was on screen (then: localvideo frame --at TS)."""
        hits = open_service(data_dir).analyze.search(query, app=app_, since=since, until=until,
                                                     limit=limit, mode=mode)
        if json_out:
            print_json(hits)
            return
        if not hits:
            console.print(f"no match for {query!r}")
            return
        if all(h.matched == "meaning" for h in hits):
            # Nearest neighbours always exist: say plainly that no screen had the words.
            console.print(f"no match for {query!r} by its words; closest in meaning:",
                          highlight=False, markup=False)
        table = Table("time", "app", "window", "text", "matched", "chunk @ offset")
        for h in hits:
            table.add_row(format_ts(h.ts)[:19].replace("T", " "), Text(h.app),
                          Text(_flat(h.title, 40)), _hit(h.snippet), h.matched,
                          f"{h.chunk_id} @ {h.offset:.1f}s" if h.offset is not None
                          else str(h.chunk_id))
        console.print(table)

    @app.command()
    def timeline(
        data_dir: DataDir = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Time spent per app and window, merged across short interruptions."""
        rows = open_service(data_dir).analyze.timeline(since=since, until=until)
        if json_out:
            print_json(rows)
            return
        table = Table("from", "to", "duration", "app", "window")
        for r in rows:
            table.add_row(_hms(r.start_ts), _hms(r.end_ts), format_duration(r.duration),
                          Text(r.app), Text(_flat(r.title, 70)))
        console.print(table)

    @app.command()
    def observations(
        data_dir: DataDir = None,
        since: SinceOpt = None,
        status: Annotated[str | None, typer.Option(help="pending, done or failed.")] = None,
        limit: Annotated[int, typer.Option(help="At most this many (newest).")] = 50,
        json_out: JsonFlag = False,
    ) -> None:
        """What the reasoner made of each window of activity, with its suggested task."""
        rows = open_service(data_dir).analyze.observations(since=since, limit=limit,
                                                           status=status)
        if json_out:
            print_json(rows)
            return
        table = Table("id", "window", "status", "summary", "task", show_lines=True)
        for r in rows:
            task = r.task
            task_text = (f"{task.category}: {task.title}"
                         if task and task.verdict == "TASK_FOUND" else "-")
            summary = r.summary or (r.error or "")
            table.add_row(str(r.id), f"{_hms(r.start_ts)}–{_hms(r.end_ts)}",
                          r.status, Text(_flat(summary, 200)), Text(_flat(task_text, 80)))
        console.print(table)

    @app.command()
    def ask(
        question: Annotated[str, typer.Argument(help="A question about your screen history.")],
        data_dir: DataDir = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        reasoner: ReasonerOpt = None,
        model: ModelOpt = None,
        base_url: BaseUrlOpt = None,
        key: KeyOpt = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Print what would be sent; send nothing.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Ask about what you did; answered from the index with the moments it used.

        A question may name times: "what was I doing at 14:00?", "yesterday afternoon",
        "in the last 20 minutes".
        """
        svc = open_service(data_dir)
        req = AskRequest.of(question=question, since=since, until=until, reasoner=reasoner,
                            model=model, base_url=base_url, key=key)
        if dry_run:
            print_json(svc.analyze.preview_ask(req))
            return
        res = svc.analyze.ask(req)
        if json_out:
            print_json(res)
            return
        for t in res.times:
            console.print(f"looked at {t.label}: " + " – ".join(
                format_ts(x)[:16].replace("T", " ") for x in (t.start_ts, t.end_ts)),
                style="dim", highlight=False, markup=False)
        console.print(res.answer, highlight=False, markup=False)
        if res.timestamps:
            console.print("moments: " + ", ".join(format_ts(t)[:19].replace("T", " ")
                                                  for t in res.timestamps), style="dim")
        console.print(f"({res.reasoner}, {res.model})", style="dim")

    keys_app = typer.Typer(help="API keys for the reasoners, stored 0600 in the data dir.",
                           no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @keys_app.command("set")
    def keys_set(
        name: Annotated[str, typer.Argument(help="anthropic, openai or gemini.")],
        value: Annotated[str | None, typer.Argument(
            help="The key; leave out to be prompted (hidden).")] = None,
        data_dir: DataDir = None,
    ) -> None:
        """Store a key (the --key flag still wins; the env var is the fallback)."""
        if value is None:
            value = getpass.getpass(f"{name} key: ")
        res = open_service(data_dir).keys.set(name, value)
        console.print(f"stored the key for {res.name}")

    @keys_app.command("list")
    def keys_list(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Which keys are stored (masked) and which env vars would supply one."""
        rows = open_service(data_dir).keys.list()
        if json_out:
            print_json(rows)
            return
        table = Table("name", "stored", "env")
        for r in rows:
            table.add_row(r.name, r.preview if r.stored else "-", r.env or "-")
        console.print(table)

    @keys_app.command("delete")
    def keys_delete(name: Annotated[str, typer.Argument(help="The key's name.")],
                    data_dir: DataDir = None) -> None:
        """Remove a stored key."""
        res = open_service(data_dir).keys.delete(name)
        console.print(f"deleted the key for {res.name}")
