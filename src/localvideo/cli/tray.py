"""CLI command for the tray / menu-bar icon (`observe` starts it by itself on a desktop)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DataDir, open_service


def register(app: typer.Typer) -> None:
    @app.command()
    def tray(data_dir: DataDir = None,
             poll: Annotated[float, typer.Option(help="Seconds between state checks.")] = 1.0,
             quit_pid: Annotated[int | None, typer.Option(
                 "--quit-pid", help="Quit sends SIGINT to this process (observe passes its "
                                    "own pid).", hidden=True)] = None) -> None:
        """Show the recorder's state as a tray icon (recording, paused, excluded, failing)
        with pause/resume, open the UI and quit."""
        from ..tray import Tray
        from .serve import ui_url

        svc = open_service(data_dir)
        s = svc.settings.serve
        Tray(svc, ui_url(s.host, s.port, svc.token.get()), poll=poll, quit_pid=quit_pid).run()
