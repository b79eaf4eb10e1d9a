"""Pieces every command module shares: consoles, the --data-dir option, JSON output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
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


def print_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """A response model (or a list of them) as JSON: the fields it was given (a clip's are
    its sidecar's, which differ by backend), not every optional field as null."""
    if isinstance(data, BaseModel):
        plain: Any = data.model_dump(mode="json", exclude_unset=True)
    elif isinstance(data, dict):
        plain = data
    else:
        plain = [d.model_dump(mode="json", exclude_unset=True) for d in data]
    # Plain print: rich would re-wrap long lines and break machine readers.
    print(json.dumps(plain, indent=2, default=str, ensure_ascii=False))
