"""CLI for the reasoning endpoint: show, set, test, and a local model server found here.

Thin: parse flags, call ``svc.reasoner``, print.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..service.models import ReasonerPrefs, ReasonerUpdate
from .common import DataDir, JsonFlag, console, open_service, print_json

NameOpt = Annotated[str | None, typer.Option(
    "--reasoner", help="auto, offline, anthropic, openai or gemini.")]
UrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="Endpoint URL; an empty string goes back to the provider's default.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Model name; an empty string goes back to the reasoner's default.")]


def _print(r: ReasonerPrefs) -> None:
    name = r.reasoner + (f" → {r.resolved}" if r.reasoner != r.resolved else "")
    console.print(f"reasoner: [bold]{escape(name)}[/]" +
                  (f", model {escape(r.model_used)}" if r.model_used else "") +
                  (f", at {escape(r.endpoint)}" if r.endpoint else ""), highlight=False,
                  soft_wrap=True)
    if r.key_name:
        console.print(f"key: {r.key or ('from ' + r.key_env if r.key_env else 'none stored')}",
                      highlight=False)
    console.print(("[green]" if r.local else "[yellow]") + escape(r.sends) + "[/]",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    rapp = typer.Typer(help="Where the analysis reasons: show, set and test the endpoint, or "
                            "use a model server found on this machine.", no_args_is_help=True)
    app.add_typer(rapp, name="reasoner")

    @rapp.command("show")
    def show(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """The configured reasoner, what runs now, and what is sent where."""
        r = open_service(data_dir).reasoner.get()
        print_json(r) if json_out else _print(r)

    @rapp.command("set")
    def set_(reasoner: NameOpt = None, base_url: UrlOpt = None, model: ModelOpt = None,
             window: Annotated[str | None, typer.Option(
                 "--window", help="Activity per observation, e.g. 5m.")] = None,
             data_dir: DataDir = None) -> None:
        """Save the endpoint to config.toml (a change of where screen text goes is written to
        the audit log). Keys: `localvideo keys set NAME`."""
        r = open_service(data_dir).reasoner.update(ReasonerUpdate.of(
            reasoner=reasoner, base_url=base_url, model=model, window=window))
        _print(r)

    @rapp.command("test")
    def test(reasoner: NameOpt = None, base_url: UrlOpt = None, model: ModelOpt = None,
             data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Send one small request (no screen content) and print the reply or the error."""
        t = open_service(data_dir).reasoner.test(ReasonerUpdate.of(
            reasoner=reasoner, base_url=base_url, model=model))
        if json_out:
            print_json(t)
        elif t.ok:
            console.print(f"[green]✓[/] {escape(t.reasoner)} {escape(t.model or '')} at "
                          f"{escape(t.endpoint or 'this machine')} answered in {t.seconds} s:\n"
                          f"  {escape(t.answer or '')}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[red]✗[/] {escape(t.reasoner)}: {escape(t.error or '')}",
                          highlight=False, soft_wrap=True)
            if t.hint:
                console.print(f"  [yellow]→[/] {escape(t.hint)}", highlight=False,
                              soft_wrap=True)
        if not t.ok:
            raise typer.Exit(1)

    @rapp.command("local")
    def local(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """OpenAI-compatible servers answering on 127.0.0.1 (Ollama 11434, LM Studio 1234,
        llama.cpp 8080; `[analyze] local_ports`): one GET /v1/models each, nothing else."""
        found = open_service(data_dir).reasoner.local()
        if json_out:
            print_json(found)
            return
        if not found:
            console.print("no local model server answers on 127.0.0.1")
        for s in found:
            console.print(f"{escape(s.name)} at {escape(s.base_url)}: "
                          f"{escape(', '.join(s.models) or 'no models')}"
                          + (" (in use)" if s.configured else f"\n  use it: {s.command}"),
                          highlight=False, soft_wrap=True)

    @rapp.command("use")
    def use(which: Annotated[str, typer.Argument(
                help="ollama, lm-studio, llama.cpp, or a port on 127.0.0.1.")],
            model: ModelOpt = None, data_dir: DataDir = None) -> None:
        """Point the reasoner at a local server found on 127.0.0.1 (reasoner openai, its
        base URL, its first chat model or --model)."""
        _print(open_service(data_dir).reasoner.use_local(which, model=model))
