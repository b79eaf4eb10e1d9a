"""Pieces every command module shares: consoles, the --data-dir option, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..service import Service

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="State root (default: $LOCALVIDEO_HOME or the user data dir).",
                 show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_service(data_dir: Path | None, overrides: dict[str, dict[str, Any]] | None = None,
                 ) -> Service:
    return Service.open(data_dir, overrides)


def print_json(data: Any) -> None:
    # Plain print: rich would re-wrap long lines and break machine readers.
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
