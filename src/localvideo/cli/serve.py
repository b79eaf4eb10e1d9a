"""CLI commands for the serve area: observe, serve, mcp, act, actions, doctor, service."""

from __future__ import annotations

import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..errors import LocalVideoError, NoDisplayError
from ..service import Service
from ..service.models import CaptureHealthState
from ..supervise import Supervisor, observe_parts
from ..units import format_ts, parse_duration
from .common import DataDir, JsonFlag, console, err_console, open_service, print_json
from .record import health_text

Host = Annotated[str | None, typer.Option(
    help="Address to bind (default 127.0.0.1; anything else exposes your screen history).")]
Port = Annotated[int | None, typer.Option(help="Port (default 8765).")]


def ui_url(host: str, port: int, token: str | None = None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _status_text(snapshot: list[dict[str, Any]], url: str,
                 health: CaptureHealthState | None = None) -> Text:
    line = Text()
    marks = {"running": ("●", "green"), "restarting": ("↻", "yellow"),
             "stopping": ("■", "yellow"), "stopped": ("■", "red")}
    for i, p in enumerate(snapshot):
        mark, style = marks.get(p["state"], ("?", "dim"))
        if i:
            line.append("  │  ", style="dim")
        line.append(f"{mark} {p['name']} ", style=f"bold {style}")
        if p["state"] == "running":
            m, s = divmod(int(p["uptime"]), 60)
            line.append(f"pid {p['pid']} up {m}:{s:02d}", style="dim")
        else:
            line.append(p["state"], style=style)
        if p["restarts"]:
            line.append(f" ({p['restarts']}×)", style="yellow")
    line.append(f"   {url}", style="cyan")
    if health is not None and not health.seeing:
        line.append("\n")
        line.append_text(health_text(health))
    return line


class _HealthWatch:
    """The recorder's capture health from its heartbeat, read at most every 2 s."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._at = 0.0
        self._health: CaptureHealthState | None = None

    def __call__(self) -> CaptureHealthState | None:
        if time.monotonic() - self._at >= 2.0:
            self._at = time.monotonic()
            try:
                svc = Service.open(self.data_dir, recover=False)
                try:
                    self._health = svc.record.health()
                finally:
                    svc.close()
            except LocalVideoError:
                self._health = None   # the index is busy or locked: say nothing rather than crash
        return self._health


def register(app: typer.Typer) -> None:
    @app.command()
    def observe(
        data_dir: DataDir = None,
        duration: Annotated[str | None, typer.Option(
            help="Stop everything after this long (e.g. 40s, 8h); default: until Ctrl-C.")] = None,
        virtual_display: Annotated[bool, typer.Option(
            "--virtual-display", help="Start a private Xvfb desktop with demo windows and "
                                      "record that (for machines with no display).")] = False,
        host: Host = None,
        port: Port = None,
        fps: Annotated[float | None, typer.Option(help="Recorder frames per second.")] = None,
        codec: Annotated[str | None, typer.Option(help="auto, hevc or h264.")] = None,
        reasoner: Annotated[str | None, typer.Option(
            help="Reasoner for observations: auto, offline, anthropic, openai, gemini.")] = None,
        tray: Annotated[bool, typer.Option(
            "--tray/--no-tray", help="Show the recorder's state as a tray / menu-bar icon "
                                     "(on a desktop, with the [tray] extra).")] = True,
    ) -> None:
        """Record + analyze --follow + serve, supervised: the one command to run.

        One Ctrl-C stops all three cleanly; a part that dies is restarted (and said so)."""
        svc = open_service(data_dir, {"serve": {"host": host, "port": port}})
        settings = svc.settings
        token = svc.token.get()
        svc.close()
        seconds = parse_duration(duration, what="--duration") if duration else None
        if (platform.system() == "Linux" and not virtual_display
                and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
            raise NoDisplayError("no display server: DISPLAY and WAYLAND_DISPLAY are unset, so "
                                 "there is no screen to record",
                                 "run `localvideo observe --virtual-display` to see the whole "
                                 "path work on a private virtual screen")
        record_args: list[str] = []
        for flag, value in (("--fps", fps), ("--codec", codec)):
            if value is not None:
                record_args += [flag, str(value)]
        analyze_args = ["--reasoner", reasoner] if reasoner else []
        parts = observe_parts(settings.data_dir, host=settings.serve.host,
                              port=settings.serve.port, record_args=record_args,
                              analyze_args=analyze_args, tray=tray and not virtual_display)

        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        url = ui_url(settings.serve.host, settings.serve.port)
        health = _HealthWatch(settings.data_dir)

        def event(msg: str) -> None:
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}", highlight=False, soft_wrap=True)

        vd = None
        if virtual_display:
            from ..capture.virtual import VirtualDisplay  # python-xlib: X11 only

            vd = VirtualDisplay()
            vd.start()
            event(f"virtual display {vd.name} started (Xvfb + openbox + demo windows)")
        try:
            env = {**os.environ}
            sup = Supervisor(parts, env=env, log_dir=settings.data_dir / "logs",
                             on_event=event, watch=settings.config_path,
                             restart_on_change=("record", "analyze"))
            console.print(f"[bold]localvideo observe[/] — data in {settings.data_dir}")
            console.print(f"Open the UI: [bold cyan]{ui_url(settings.serve.host, settings.serve.port, token)}[/]",
                          highlight=False, soft_wrap=True)
            console.print(f"[dim]logs: {settings.data_dir / 'logs'}  ·  Ctrl-C stops all "
                          "three[/]", highlight=False, soft_wrap=True)
            if console.is_terminal:
                with Live(_status_text([], url), console=console, refresh_per_second=2,
                          transient=True) as live:
                    sup.run(stop, seconds,
                            tick=lambda: live.update(_status_text(sup.snapshot(), url,
                                                                  health())))
            else:
                last = [0.0]

                def tick() -> None:
                    # No terminal (a log, a test): a status line every 10 s instead of live.
                    if time.monotonic() - last[0] >= 10:
                        last[0] = time.monotonic()
                        console.print(_status_text(sup.snapshot(), url, health()),
                                      highlight=False, soft_wrap=True)

                sup.run(stop, seconds, tick=tick)
        finally:
            if vd is not None:
                vd.stop()
        codes = ", ".join(f"{p['name']} {p['last_exit']}" for p in sup.snapshot())
        console.print(f"stopped ({codes})", highlight=False, soft_wrap=True)

    @app.command()
    def serve(data_dir: DataDir = None, host: Host = None, port: Port = None) -> None:
        """Serve the REST API (OpenAPI at /docs) and the web UI on this machine."""
        from ..web.app import run_server  # FastAPI + uvicorn: only `serve` pays for them

        svc = open_service(data_dir, {"serve": {"host": host, "port": port}})
        s = svc.settings.serve
        if s.host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"[bold yellow]warning:[/] binding {s.host}: anyone who can "
                              "reach it and has the token sees your screen history")
        console.print(f"serving {ui_url(s.host, s.port)} (token: `localvideo token`)",
                      highlight=False, soft_wrap=True)
        resumed = svc.jobs.resume()
        if resumed:
            console.print(f"resumed {len(resumed)} generation job(s) a stopped server had "
                          f"queued: {', '.join(map(str, resumed))}", highlight=False,
                          soft_wrap=True)
        try:
            run_server(svc, s.host, s.port)
        finally:
            svc.close()

    @app.command("mcp")
    def mcp_cmd(data_dir: DataDir = None,
                since: Annotated[str | None, typer.Option(
                    help="Only let the agent read from this moment on (14:00, 2h, today).")
                ] = None,
                until: Annotated[str | None, typer.Option(
                    help="Only let the agent read up to this moment.")] = None,
                app_names: Annotated[list[str] | None, typer.Option(
                    "--app", help="Only these apps (repeat --app); ask and observations, "
                                  "which span every app, are then refused.")] = None) -> None:
        """Run the MCP server on stdio (for Claude Desktop, Claude Code, any MCP client)."""
        from ..mcp_server import run_stdio  # the MCP SDK: only `mcp` pays for it

        run_stdio(data_dir, since=since, until=until, apps=app_names or [])

    @app.command()
    def act(observation_id: Annotated[int, typer.Argument(help="Observation id "
                                                          "(see `localvideo observations`).")],
            data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Hand an observation's suggested task to your agent command ([serve] agent_command)."""
        svc = open_service(data_dir)
        with console.status(f"handing observation {observation_id} to "
                            f"{svc.settings.serve.agent_command or '?'} …"):
            result = svc.act.run(observation_id)
        if json_out:
            print_json(result)
            return
        style = "green" if result.state == "done" else "red"
        console.print(f"[{style}]{result.state}[/] (exit {result.exit_code}) — "
                      f"action {result.id}, logged", highlight=False, soft_wrap=True)
        if result.output_tail:
            console.print(result.output_tail, highlight=False, markup=False)
        if result.state != "done":
            raise typer.Exit(1)

    @app.command()
    def actions(data_dir: DataDir = None, limit: int = 20, json_out: JsonFlag = False) -> None:
        """The log of hand-offs to the agent command."""
        rows = open_service(data_dir).act.list(limit)
        if json_out:
            print_json(rows)
            return
        table = Table("id", "when", "observation", "command", "state", "exit")
        for r in rows:
            table.add_row(str(r.id), format_ts(r.ts), str(r.observation_id),
                          r.command, r.state, str(r.exit_code))
        console.print(table)

    @app.command()
    def doctor(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Check this machine: display, capture, encoders, OCR, GPU, disk — and what to run."""
        report = open_service(data_dir).doctor.run()
        if json_out:
            print_json(report)
            return
        p = report.platform
        console.print(f"[bold]localvideo doctor[/] — {p['system']} {p['release']} "
                      f"{p['machine']}, Python {p['python']}", highlight=False, soft_wrap=True)
        for c in report.checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            console.print(f" {mark} [bold]{c.name:<10}[/] {c.detail}", highlight=False,
                          soft_wrap=True)
            if not c.ok and c.fix:
                console.print(f"   [yellow]→[/] {c.fix}", highlight=False, soft_wrap=True)
        console.print()
        for name, job in report.jobs.items():
            mark = "[green]suits[/]" if job.suited else "[red]not suited[/]"
            console.print(f"[bold]{name}[/]: {mark} — {job.reason}", highlight=False,
                          soft_wrap=True)
            settings = ", ".join(f"{k}={v}" for k, v in job.settings.items())
            console.print(f"   settings: {settings}", highlight=False, soft_wrap=True)
            for f in job.fits:
                console.print(f"   fits: {f['model']} ({f['params']}) {f['width']}×{f['height']}"
                              f"×{f['frames']}, {f['dtype']}, offload {f['offload']}, "
                              f"peak {f['peak_gb']} GB", highlight=False, soft_wrap=True)
            if job.command:
                console.print(f"   run: [cyan]{job.command}[/]", highlight=False,
                              soft_wrap=True)
        if report.install:
            console.print("\n[bold]to fix:[/]")
            for cmd in report.install:
                console.print(f"  {cmd}", highlight=False, markup=False)
        console.print(f"[dim]({report.seconds} s)[/]")

    autostart_app = typer.Typer(help="Start `localvideo observe` at login (systemd user unit "
                                   "or launchd agent).", no_args_is_help=True)
    app.add_typer(autostart_app, name="service")

    @autostart_app.command("install")
    def autostart_install(data_dir: DataDir = None) -> None:
        """Write the autostart file and print the command that enables it."""
        r = open_service(data_dir).autostart.install()
        console.print(f"wrote {r.path}", highlight=False, soft_wrap=True)
        console.print(f"enable it with:\n  [cyan]{r.enable_command}[/]", highlight=False,
                      soft_wrap=True)

    @autostart_app.command("uninstall")
    def autostart_uninstall(data_dir: DataDir = None) -> None:
        """Remove the autostart file (and its enablement links)."""
        r = open_service(data_dir).autostart.uninstall()
        if r.removed:
            for path in r.removed:
                console.print(f"removed {path}", highlight=False, soft_wrap=True)
        else:
            console.print(f"nothing to remove at {r.path}", highlight=False, soft_wrap=True)
        console.print(f"stop a running copy with:\n  [cyan]{r.stop_command}[/]",
                      highlight=False, soft_wrap=True)


__all__ = ["register", "ui_url"]
