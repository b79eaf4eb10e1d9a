"""CLI commands for privacy: token (and named, scoped tokens), audit, lock, unlock."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..units import format_ts, parse_duration
from .common import DataDir, JsonFlag, console, open_service, print_json
from .serve import ui_url


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="Print the API token (created on first use; "
                                 "LOCALVIDEO_API_TOKEN overrides), or manage named tokens "
                                 "with a scope.", invoke_without_command=True,
                            no_args_is_help=False)
    app.add_typer(token_app, name="token")

    @token_app.callback()
    def token(ctx: typer.Context, data_dir: DataDir = None,
              url: Annotated[bool, typer.Option("--url", help="Print the UI address with "
                                                               "the token.")] = False,
              rotate: Annotated[bool, typer.Option(
                  "--rotate", help="Make a new token; the old one stops working at once.")
              ] = False) -> None:
        """Print the API token (created on first use; LOCALVIDEO_API_TOKEN overrides)."""
        if ctx.invoked_subcommand is not None:
            return
        svc = open_service(data_dir)
        t = svc.token.rotate() if rotate else svc.token.get()
        s = svc.settings.serve
        print(ui_url(s.host, s.port, t) if url else t)

    @token_app.command("create")
    def token_create(
            name: Annotated[str, typer.Argument(help="A name for the client, e.g. my-agent.")],
            scope: Annotated[str, typer.Option(
                help="read (every read, no changes), search (search results only) or full.")
            ] = "read",
            data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Make a named API token with a scope; it is printed once (only its hash is kept)."""
        new = open_service(data_dir).privacy.create_token(name, scope)
        if json_out:
            print_json(new)
            return
        print(new.token)

    @token_app.command("list")
    def token_list(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """The named tokens and their scopes (never their secrets)."""
        rows = open_service(data_dir).privacy.tokens()
        if json_out:
            print_json(rows)
            return
        table = Table("name", "scope", "created", "last used")
        for t in rows:
            table.add_row(t.name, t.scope, format_ts(t.created),
                          format_ts(t.last_used) if t.last_used else "never")
        console.print(table)

    @token_app.command("revoke")
    def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")],
                     data_dir: DataDir = None) -> None:
        """Remove a named token; its client is refused from the next request on."""
        gone = open_service(data_dir).privacy.revoke_token(name)
        console.print(f"revoked {gone.name} ({gone.scope})", highlight=False)

    @app.command()
    def audit(data_dir: DataDir = None,
              since: Annotated[str | None, typer.Option(help="From (14:00, 2h, today, ...).")
                               ] = None,
              until: Annotated[str | None, typer.Option(help="Until.")] = None,
              client: Annotated[str | None, typer.Option(
                  help="Only this client (a token name, owner, or mcp:<session>).")] = None,
              limit: int = 50, json_out: JsonFlag = False) -> None:
        """Who read your history through the API, the web UI and MCP, newest first."""
        rows = open_service(data_dir).privacy.audit(since=since, until=until, client=client,
                                                    limit=limit)
        if json_out:
            print_json(rows)
            return
        table = Table("when", "client", "scope", "via", "what", "request", "status")
        for e in rows:
            table.add_row(format_ts(e.ts), e.client, e.scope, e.channel, e.action, e.target,
                          str(e.status))
        console.print(table)
        if not rows:
            console.print("nothing read through the API, the UI or MCP yet", style="dim")

    @app.command()
    def lock(data_dir: DataDir = None,
             idle: Annotated[str | None, typer.Option(
                 "--idle", help="Also lock by itself after this long without a read through "
                                "the API/UI/MCP (15m, 1h), or 'off'. Alone, only sets it.")
             ] = None,
             json_out: JsonFlag = False) -> None:
        """Refuse reads through the API, UI and MCP until `localvideo unlock`; recording
        goes on."""
        svc = open_service(data_dir)
        if idle is not None:
            after = None if idle.strip().lower() in ("off", "0", "never", "") \
                else parse_duration(idle)
            state = svc.privacy.set_idle_lock(after)
        else:
            state = svc.privacy.lock("cli")
        if json_out:
            print_json(state)
            return
        idle_text = (f"; locks itself after {state.idle_after:g} s without a read"
                     if state.idle_after else "; no idle lock")
        console.print(("locked: the API, UI and MCP refuse reads until `localvideo unlock`"
                       if state.locked else "unlocked") + idle_text, highlight=False)

    @app.command()
    def unlock(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
        """Let the API, UI and MCP read the history again."""
        svc = open_service(data_dir)
        secret = None
        if svc.privacy.unlocker.needs_secret:
            secret = typer.prompt("passphrase", hide_input=True)
        state = svc.privacy.unlock(secret)
        if json_out:
            print_json(state)
            return
        console.print("unlocked", highlight=False)
