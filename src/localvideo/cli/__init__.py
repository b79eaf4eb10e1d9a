"""Command line: thin over the service layer — parse, call, print (rich). No logic here."""

from __future__ import annotations

import os
import sys

# numpy's OpenBLAS starts a worker thread per CPU when it loads, and each spins a while for
# work no command here gives it (the recorder and the analyzer do no large linear algebra;
# torch keeps its own threads). One thread: a recorder start 0.74 -> 0.62 CPU-s in four paired
# runs on 2 cores (more CPUs, more spinning threads). Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402 - after the environment above
from rich.markup import escape

from ..errors import LocalVideoError
from ..store.layout import private_umask
from . import analyze, encryption, privacy, reasoner, record, serve, synth, tray
from .common import console, err_console

app = typer.Typer(
    name="localvideo",
    help="Local AI video: record and reason over your own screen, or synthesize clips "
         "with open models on your GPU. Nothing leaves this machine unless you point the "
         "reasoning step elsewhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (record, analyze, reasoner, synth, serve, privacy, encryption, tray):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    # Owner-only before anything is written: the store, logs, locks, exports and whatever a
    # child (FFmpeg, observe's recorder / analyze / serve) creates inherit this umask.
    private_umask()
    try:
        app(args=argv, standalone_mode=True)
    except LocalVideoError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"  [yellow]→[/] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


__all__ = ["app", "main"]
