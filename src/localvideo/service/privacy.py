"""Who may read the screen history, who did, and the lock that stops them all.

- **Clients.** The main API token (``localvideo token``) is the owner, scope ``full``. Extra
  named tokens have a scope: ``read`` (every read, no change: no pause, delete, act, generate
  or settings) or ``search`` (search results only). MCP sessions are clients too, limited to a
  time range or apps when ``localvideo mcp --since/--until/--app`` says so.
- **Audit.** Every read of frames, chunks, text, search results and answers through the API,
  the web UI and MCP is appended to the ``audit`` table (store/audit.py): which client, what,
  when. The CLI is the owner at their own shell and is not audited.
- **Lock.** ``localvideo lock`` (or the idle lock: no read through API/UI/MCP for a set time)
  makes the API, UI and MCP refuse reads (:class:`LockedError`, REST 423) while recording and
  analysis go on. ``unlock`` goes through :attr:`PrivacyArea.unlocker`: without encryption
  it needs nothing but the owner's own CLI; the encryption at rest replaces it with one that
  wants the passphrase or the keyring.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from ..errors import LockedError, NotFoundError, ScopeError, UsageError
from ..store import audit as audit_db
from ..store.db import Conn, delete_kv, put_kv
from .context import Context, maybe_moment
from .models import AuditEntry, LockState, NewToken, TokenInfo, When
from .token import TokenArea

Scope = Literal["full", "read", "search"]
SCOPES: tuple[str, ...] = ("full", "read", "search")
OWNER = "owner"
UNLOCK_HINT = ("run `localvideo unlock` in your own terminal (the history was locked with "
               "`localvideo lock` or after the idle time; recording goes on)")
# A read refreshes the idle clock at most this often (a page loads dozens of thumbnails).
_TOUCH_EVERY = 5.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Client:
    """Who is asking: a token's name and scope, or an MCP session."""

    name: str
    scope: str
    channel: str = "api"          # api | ui | mcp


@dataclass(frozen=True)
class Limits:
    """What an MCP server may show: a time range and/or some apps (``localvideo mcp
    --since/--until/--app``). No limits: everything."""

    since: float | None = None
    until: float | None = None
    apps: tuple[str, ...] = ()

    @property
    def limited(self) -> bool:
        return self.since is not None or self.until is not None or bool(self.apps)

    def describe(self) -> str:
        if not self.limited:
            return "full"
        parts = []
        if self.since is not None:
            parts.append(f"since {self.since:.0f}")
        if self.until is not None:
            parts.append(f"until {self.until:.0f}")
        if self.apps:
            parts.append("apps " + ",".join(self.apps))
        return "; ".join(parts)

    def app_allowed(self, app: str | None) -> bool:
        return not self.apps or (app or "").lower() in {a.lower() for a in self.apps}

    def in_range(self, ts: float) -> bool:
        return ((self.since is None or ts >= self.since)
                and (self.until is None or ts <= self.until))

    def window(self, since: float | None, until: float | None) -> tuple[float | None,
                                                                        float | None]:
        """A requested range cut to the limits; outside them entirely → ScopeError."""
        lo = since if self.since is None else max(since or self.since, self.since)
        hi = until if self.until is None else min(until or self.until, self.until)
        if lo is not None and hi is not None and lo > hi:
            raise ScopeError(f"this MCP server may only read {self.describe()}",
                             "ask about a time inside that range")
        return lo, hi

    def check_app(self, app: str | None) -> None:
        if app is not None and not self.app_allowed(app):
            raise ScopeError(f"this MCP server may only read the apps {', '.join(self.apps)}",
                             "leave app empty, or name one of those")

    def check_moment(self, ts: float, app: str | None) -> None:
        if not self.in_range(ts) or not self.app_allowed(app):
            raise ScopeError(f"that moment is outside what this MCP server may read "
                             f"({self.describe()})", "pick a moment inside its limits")


class Unlocker:
    """What ``unlock`` requires. Without encryption at rest: nothing beyond running the CLI
    as the owner (anyone who can do that can read the files anyway). The encryption helper
    installs a subclass whose :meth:`verify` checks the passphrase or the keyring."""

    needs_secret = False

    def verify(self, secret: str | None) -> None:
        """Raise :class:`LockedError` when ``secret`` does not unlock."""


class PrivacyArea:
    def __init__(self, ctx: Context, token: TokenArea) -> None:
        self._ctx = ctx
        self._token = token
        self.unlocker: Unlocker = Unlocker()
        self._last_touch = 0.0

    # -- clients ------------------------------------------------------------------------
    def authenticate(self, token: str | None, channel: str = "api") -> Client | None:
        """The client a bearer token belongs to, or None when it is no token of ours."""
        if not token:
            return None
        if self._token.check(token):
            return Client(OWNER, "full", channel)
        row = audit_db.token_by_hash(self._ctx.db, audit_db.token_hash(token))
        if row is None:
            return None
        return Client(row.name, row.scope, channel)

    def create_token(self, name: str, scope: str = "read") -> NewToken:
        """A new named token with a scope (full, read, search); its secret is returned once."""
        if not _NAME.match(name or ""):
            raise UsageError(f"bad token name {name!r}",
                             "use letters, digits, '.', '_' or '-' (at most 64), e.g. my-agent")
        if name == OWNER:
            raise UsageError("'owner' is the main token's name",
                             "pick another name; `localvideo token --rotate` replaces the main one")
        if scope not in SCOPES:
            raise UsageError(f"unknown scope {scope!r}", f"choose one of: {', '.join(SCOPES)}")
        db = self._ctx.db
        if name in audit_db.token_names(db):
            raise UsageError(f"a token named {name!r} exists",
                             f"revoke it first: `localvideo token revoke {name}`")
        secret = "lv_" + secrets.token_urlsafe(32)
        audit_db.add_token(db, name, scope, secret)
        return NewToken(name=name, scope=scope, created=time.time(), token=secret)

    def tokens(self) -> list[TokenInfo]:
        """The named tokens (never their secrets)."""
        return [TokenInfo(name=t.name, scope=t.scope, created=t.created, last_used=t.last_used)
                for t in audit_db.tokens(self._ctx.db)]

    def revoke_token(self, name: str) -> TokenInfo:
        """Remove a named token; a client using it is refused from its next request on."""
        db = self._ctx.db
        row = next((t for t in audit_db.tokens(db) if t.name == name), None)
        if row is None or not audit_db.remove_token(db, name):
            raise NotFoundError(f"no token named {name!r}", "see `localvideo token list`")
        return TokenInfo(name=row.name, scope=row.scope, created=row.created,
                         last_used=row.last_used)

    @staticmethod
    def allows(client: Client, method: str, path: str) -> bool:
        """Whether ``client``'s scope covers the REST request ``method path``."""
        if client.scope == "full":
            return True
        if path in ("/api/audit", "/audit"):
            return False          # who read what is the owner's to see
        if client.scope == "search":
            return method in ("GET", "HEAD") and path in ("/api/search", "/api/status")
        # read: every read; ask is a POST that only reads; locking is always allowed.
        return method in ("GET", "HEAD") or path in ("/api/ask", "/api/lock")

    def check_scope(self, client: Client, method: str, path: str) -> None:
        if not self.allows(client, method, path):
            raise ScopeError(f"the token {client.name!r} has scope {client.scope!r}, which "
                             f"does not cover {method} {path}",
                             "make a token with a wider scope: `localvideo token create NAME "
                             "--scope read` (or full)")

    def limits(self, since: When | None = None, until: When | None = None,
               apps: list[str] | tuple[str, ...] = ()) -> Limits:
        """The limits of an MCP server, times parsed once (a reversed range is refused)."""
        lo, hi = maybe_moment(since, "--since"), maybe_moment(until, "--until")
        if lo is not None and hi is not None and lo > hi:
            raise UsageError("the range is reversed: --since is after --until",
                             "swap them, e.g. --since 3h --until 2h")
        names = tuple(a.strip() for a in apps if a and a.strip())
        return Limits(lo, hi, names)

    @staticmethod
    def window(limits: Limits, since: When | None, until: When | None,
               ) -> tuple[float | None, float | None]:
        """A requested range, parsed, cut to ``limits`` (ScopeError when wholly outside)."""
        return limits.window(maybe_moment(since, "since"), maybe_moment(until, "until"))

    # -- audit --------------------------------------------------------------------------
    def record_read(self, client: Client, action: str, target: str, status: int = 200) -> None:
        """Append one read to the audit log (and refresh the idle-lock clock)."""
        now = time.time()
        db = self._ctx.db
        with db.tx() as conn:
            audit_db.append(conn, channel=client.channel, client=client.name,
                            scope=client.scope, action=action, target=target, status=status)
            if status < 400 and now - self._last_touch >= _TOUCH_EVERY:
                _put(conn, audit_db.LAST_READ_KEY, now)
                if client.name != OWNER and client.channel != "mcp":
                    audit_db.touch_token(conn, client.name, now)
        if status < 400 and now - self._last_touch >= _TOUCH_EVERY:
            self._last_touch = now

    def audit(self, since: When | None = None, until: When | None = None,
              client: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The audit log, newest first: who read what through the API, the UI and MCP."""
        if not 1 <= limit <= 100_000:
            raise UsageError(f"limit must be 1 to 100000, not {limit}", "e.g. --limit 50")
        lo, hi = maybe_moment(since, "since"), maybe_moment(until, "until")
        if lo is not None and hi is not None and lo > hi:
            raise UsageError("the range is reversed: since is after until",
                             "swap them, e.g. --since 3h --until 2h")
        rows = audit_db.entries(self._ctx.db, since=lo, until=hi, client=client, limit=limit)
        return [AuditEntry(**r.to_dict()) for r in rows]

    # -- lock ---------------------------------------------------------------------------
    def lock_state(self) -> LockState:
        db = self._ctx.db
        raw = db.get_kv(audit_db.LOCK_KEY)
        idle = db.get_kv(audit_db.IDLE_KEY)
        needs = self.unlocker.needs_secret
        if isinstance(raw, dict):
            return LockState(locked=True, since=raw.get("since"), reason=raw.get("reason"),
                             idle_after=idle, needs_secret=needs)
        return LockState(locked=False, idle_after=idle, needs_secret=needs)

    def lock(self, reason: str = "cli") -> LockState:
        """Refuse reads through the API, UI and MCP until `unlock`; recording goes on."""
        state = self.lock_state()
        if not state.locked:
            audit_db.set_lock(self._ctx.db, json.dumps({"since": time.time(),
                                                        "reason": reason}))
        return self.lock_state()

    def unlock(self, secret: str | None = None) -> LockState:
        """Let the API, UI and MCP read again (the unlocker decides what it takes)."""
        self.unlocker.verify(secret)
        db = self._ctx.db
        with db.tx() as conn:
            audit_db.clear_lock(conn)
            # The idle clock starts again now, or the next request would lock it at once.
            _put(conn, audit_db.LAST_READ_KEY, time.time())
        return self.lock_state()

    def set_idle_lock(self, after: float | None) -> LockState:
        """Lock by itself after ``after`` seconds without a read through API/UI/MCP
        (None or 0: never)."""
        db = self._ctx.db
        if after is not None and not 0 <= after <= 30 * 86400:
            raise UsageError(f"idle time must be 0 to 30 days, not {after:g} s",
                             "e.g. --idle 15m, or --idle off")
        with db.tx() as conn:
            if after:
                _put(conn, audit_db.IDLE_KEY, float(after))
                _put(conn, audit_db.LAST_READ_KEY, time.time())
            else:
                delete_kv(conn, audit_db.IDLE_KEY)
        return self.lock_state()

    def check_unlocked(self) -> None:
        """Raise :class:`LockedError` while locked; locks first when idle too long."""
        db = self._ctx.db
        if db.get_kv(audit_db.LOCK_KEY) is not None:
            raise LockedError("the screen history is locked: reads through the API, the UI "
                              "and MCP are refused", UNLOCK_HINT)
        idle = db.get_kv(audit_db.IDLE_KEY)
        if idle:
            last = db.get_kv(audit_db.LAST_READ_KEY) or 0.0
            if time.time() - float(last) > float(idle):
                self.lock("idle")
                raise LockedError(f"the screen history locked itself after {idle:g} s "
                                  "without a read", UNLOCK_HINT)


def _put(conn: Conn, key: str, value: object) -> None:
    put_kv(conn, key, json.dumps(value))


# Which kind of history a REST path reads, for the audit log ("page" for UI pages).
_ACTIONS: tuple[tuple[str, str], ...] = (
    ("/api/frame", "frame"), ("/api/chunks", "chunk"), ("/api/search", "search"),
    ("/api/timeline", "timeline"), ("/api/observations", "observation"),
    ("/api/ask", "answer"), ("/api/clips", "clip"), ("/api/actions", "action"),
    ("/api/jobs", "job"), ("/api/audit", "audit"), ("/api/settings", "settings"),
    ("/api/reasoner", "settings"), ("/api/models", "models"),
    # The UI's pages, by what they show.
    ("/search", "search"), ("/moment", "frame"), ("/observations", "observation"),
    ("/clips", "clip"), ("/audit", "audit"), ("/settings", "settings"),
)

# Never audited nor gated by the lock: liveness, the app's own files, the lock's own state.
OPEN_PATHS = frozenset({"/health", "/api/status", "/api/lock", "/favicon.ico"})


def action_for(path: str) -> str:
    for prefix, action in _ACTIONS:
        if path == prefix or path.startswith(prefix + "/"):
            return action
    if path == "/":
        return "timeline"                # today's page: the day's timeline and observations
    return "api" if path.startswith("/api/") else "page"


def gated(path: str) -> bool:
    """Whether a request for ``path`` reads the history (audited, refused while locked)."""
    return path not in OPEN_PATHS and not path.startswith(("/static/", "/docs",
                                                           "/openapi.json"))


__all__ = ["AuditEntry", "Client", "Limits", "LockState", "NewToken", "PrivacyArea", "TokenInfo",
           "Unlocker", "action_for", "gated"]
