"""CLI commands for the record area: record, chunks, status, frame, pause, resume, delete.

Thin: parse flags into settings overrides, call the service, print with rich (or JSON).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..service.models import CaptureHealthState, RecordProgress
from ..units import format_bytes, format_ts, parse_duration, parse_size
from .common import DataDir, JsonFlag, console, err_console, open_service, print_json


def _status_line(s: RecordProgress) -> Text:
    line = Text()
    mins, secs = divmod(int(s.elapsed), 60)
    line.append(f"● {mins:02d}:{secs:02d} ", style="bold red")
    if s.paused or s.disk_paused:
        line.append(f"{s.message or 'paused'}  ", style="bold yellow")
    app, title = s.app or "-", s.title or ""
    line.append(f"{app}", style="cyan")
    if title:
        line.append(f" — {title[:60]}")
    line.append(f"  seen {s.frames_seen} · encoded {s.frames_encoded} · "
                f"unchanged {s.frames_skipped}")
    if s.frames_excluded:
        line.append(f" · excluded {s.frames_excluded}", style="magenta")
    chunk = (s.chunk or "-").rsplit("/", 1)[-1]
    line.append(f"  {chunk} {format_bytes(s.bytes or 0)}  [{s.encoder}]", style="dim")
    if s.health is not None and not s.health.seeing:
        line.append("\n")
        line.append_text(health_text(s.health))
    return line


def health_text(h: CaptureHealthState) -> Text:
    """The capture health when it is not ok: one line, yellow (locked) or red."""
    style = "bold yellow" if h.state == "locked" else "bold red"
    text = Text()
    text.append(f"capture {h.state}", style=style)
    if h.message:
        text.append(f": {h.message}")
    return text


def register(app: typer.Typer) -> None:
    @app.command()
    def record(
        data_dir: DataDir = None,
        duration: Annotated[str | None, typer.Option(
            help="Stop after this long (90, 30s, 5m, 1h); default: until Ctrl-C / SIGTERM.")] = None,
        mode: Annotated[str | None, typer.Option(
            help="active-window (default) or display.")] = None,
        display: Annotated[str | None, typer.Option(
            help="Display mode: monitor number from 1, or 'all'.")] = None,
        backend: Annotated[str | None, typer.Option(
            help="Linux capture: auto (Wayland when WAYLAND_DISPLAY is set, else X11), "
                 "x11 or wayland.")] = None,
        fps: Annotated[float | None, typer.Option(help="Frames per second (default 2).")] = None,
        chunk_seconds: Annotated[float | None, typer.Option(
            help="Seconds per chunk file (default 60).")] = None,
        codec: Annotated[str | None, typer.Option(
            help="auto (hardware HEVC if it works, else H.264), hevc or h264.")] = None,
        quality: Annotated[int | None, typer.Option(
            help="x264-style CRF, lower is better (default 28).")] = None,
        max_bytes: Annotated[str | None, typer.Option(
            help="Retention: keep at most this much (e.g. 20GB).")] = None,
        max_age: Annotated[str | None, typer.Option(
            help="Retention: drop chunks older than this (e.g. 30d).")] = None,
        min_free_bytes: Annotated[str | None, typer.Option(
            help="Pause recording while the disk has less free space than this (e.g. 1GB).")] = None,
        virtual_display: Annotated[bool, typer.Option(
            "--virtual-display", help="Record a private Xvfb with a small scripted demo.")] = False,
        json_out: JsonFlag = False,
    ) -> None:
        """Record the screen into change-aware fragmented-MP4 chunks until stopped."""
        overrides = {"record": {
            "mode": mode, "display": display, "backend": backend, "fps": fps,
            "chunk_seconds": chunk_seconds,
            "codec": codec, "quality": quality,
            "max_bytes": parse_size(max_bytes, what="--max-bytes") if max_bytes else None,
            "max_age": parse_duration(max_age, what="--max-age") if max_age else None,
            "min_free_bytes": (parse_size(min_free_bytes, what="--min-free-bytes")
                               if min_free_bytes is not None else None),
        }}
        svc = open_service(data_dir, overrides)
        stop = threading.Event()

        def _stop(signum: int, _frame: object) -> None:
            stop.set()

        # Ctrl-C and SIGTERM end the loop between frames, so the chunk is closed cleanly.
        old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if json_out or not console.is_terminal:
                summary = svc.record.run(duration=duration, stop=stop,
                                         virtual_display=virtual_display)
            else:
                with Live(Text("starting…"), console=console, refresh_per_second=2,
                          transient=False) as live:
                    summary = svc.record.run(duration=duration, stop=stop,
                                             on_status=lambda s: live.update(_status_line(s)),
                                             virtual_display=virtual_display)
                    live.update(_status_line(summary))
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            svc.close()
        if json_out:
            print_json(summary)
            return
        console.print(f"recorded {summary.frames_seen} frames "
                      f"({summary.frames_encoded} encoded, {summary.frames_skipped} "
                      f"unchanged, {summary.frames_excluded} excluded) into "
                      f"{len(summary.chunks)} chunk(s) with {summary.encoder}")
        for c in summary.chunks:
            console.print(f"  {c}", highlight=False)

    @app.command()
    def chunks(data_dir: DataDir = None, json_out: JsonFlag = False,
               since: Annotated[str | None, typer.Option(help="From this time (ISO, HH:MM, 2h, today, yesterday).")] = None,
               until: Annotated[str | None, typer.Option(help="Up to this time.")] = None,
               limit: Annotated[int | None, typer.Option(help="Only the newest N.")] = None) -> None:
        """List recorded chunks with their apps, window titles and frame counts."""
        svc = open_service(data_dir)
        rows = svc.record.chunks(since=since, until=until, limit=limit)
        svc.close()
        if json_out:
            print_json(rows)
            return
        if not rows:
            console.print("no chunks yet — record with `localvideo record`")
            return
        table = Table("id", "start", "end", "codec", "frames", "size", "state", "apps", "path")
        for r in rows:
            apps = ", ".join(f"{a.app or '?'} ({a.frames})" for a in r.apps)
            table.add_row(str(r.id), format_ts(r.start_ts),
                          format_ts(r.end_ts) if r.end_ts else "-", r.codec or "-",
                          str(r.frames), format_bytes(r.bytes), r.state, apps, r.path)
        console.print(table)

    @app.command()
    def status(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Show whether the recorder runs, pause state, disk space and totals."""
        svc = open_service(data_dir)
        st = svc.status()
        svc.close()
        if json_out:
            print_json(st)
            return
        rec = st.recorder
        state = f"running (pid {rec.pid})" if rec.running else "not running"
        if st.paused:
            state += ", paused (localvideo resume)"
        if rec.disk_paused:
            state += f", {rec.message}"
        console.print(f"recorder: {state}")
        if rec.chunk:
            console.print(f"  chunk: {rec.chunk}  encoder: {rec.encoder}")
        if rec.health is not None:
            h = rec.health
            via = f" ({h.backend} via {h.path})" if h.path else f" ({h.backend})" if h.backend \
                else ""
            if h.seeing:
                console.print(f"  capture: {h.state}{via}", highlight=False, soft_wrap=True)
            else:
                line = health_text(h)
                line.append(via, style="dim")
                console.print(Text("  ").append_text(line), soft_wrap=True)
        if rec.last_error:
            console.print(f"  last error: {rec.last_error}", style="yellow")
        t = st.totals
        console.print(f"store: {st.data_dir} — {t.chunks} chunks, "
                      f"{format_bytes(t.bytes)}, {t.frames_seen} frames seen "
                      f"({t.frames_encoded} encoded); {format_bytes(st.disk_free)} free")

    @app.command()
    def frame(at: Annotated[str, typer.Option("--at", help="Moment: ISO time, HH:MM:SS, unix "
                                              "seconds, or an age like 5m.")],
              out: Annotated[Path, typer.Option("--out", help="Image file to write (.png/.jpg).")],
              crop: Annotated[bool, typer.Option("--crop", help="Only the window rectangle.")] = False,
              data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Save the recorded picture of one moment as an image."""
        svc = open_service(data_dir)
        ts = svc.time(at, "--at")
        info = svc.record.frame_info(ts)
        fmt = "jpeg" if out.suffix.lower() in (".jpg", ".jpeg") else "png"
        pic = svc.record.frame_bytes(ts, fmt=fmt, crop=crop)
        svc.close()
        out.write_bytes(pic.data)
        if json_out:
            print_json({**info.model_dump(mode="json"), "out": str(out)})
        else:
            console.print(f"wrote {out} — {info.app} — {info.title} at "
                          f"{format_ts(info.ts)}", highlight=False)

    @app.command()
    def pause(data_dir: DataDir = None) -> None:
        """Stop capturing (a running recorder stops within one frame interval)."""
        svc = open_service(data_dir)
        r = svc.record.pause()
        svc.close()
        who = f"recorder pid {r.recorder_pid}" if r.recorder_pid else "no recorder running"
        console.print(f"paused ({who}); `localvideo resume` to continue")

    @app.command()
    def resume(data_dir: DataDir = None) -> None:
        """Continue capturing after `localvideo pause`."""
        svc = open_service(data_dir)
        r = svc.record.resume()
        svc.close()
        who = f"recorder pid {r.recorder_pid}" if r.recorder_pid else "no recorder running"
        console.print(f"resumed ({who})")

    @app.command()
    def delete(since: Annotated[str, typer.Option(help="Start of the range (ISO, HH:MM, 2h).")],
               until: Annotated[str, typer.Option(help="End of the range (default now).")] = "now",
               yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
               data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Delete every chunk overlapping a time range, with its frames, text and observations."""
        svc = open_service(data_dir)
        start, end = svc.time(since, "--since"), svc.time(until, "--until")
        if not yes and not typer.confirm(f"delete recordings from {format_ts(start)} to "
                                         f"{format_ts(end)}?"):
            svc.close()
            err_console.print("nothing deleted")
            raise typer.Exit(1)
        r = svc.record.delete_range(start, end)
        svc.close()
        if json_out:
            print_json(r)
        else:
            console.print(f"deleted {r.chunks} chunks, {r.frames} frames, "
                          f"{format_bytes(r.bytes)}, {r.observations} observations")
