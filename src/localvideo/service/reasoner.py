"""Where the analysis reasons: the endpoint, its model and key, a one-request test, and a
local model server found on this machine.

Pointing the reasoner somewhere decides where redacted screen text and key frames go, so a
change of endpoint is a sensitive act: :meth:`ReasonerArea.update` says where they will go
(``sends``), writes an ``endpoint`` row to the audit log (store/audit.py) with who changed
it, and logs it to the app log too. A key typed in goes to the key store (reason/keys.py)
and is only ever answered masked.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from .. import config
from ..errors import LocalVideoError, UsageError
from ..reason.base import (
    Reasoner,
    ReasonRequest,
    get_reasoner,
    is_local,
    reasoner_class,
    resolve_name,
)
from ..reason.keys import KNOWN, KeyStore
from ..reason.local import KNOWN_PORTS, LocalServer, find_local
from ..store import audit as audit_db
from ..units import format_duration
from .context import Context
from .models import EndpointTest, LocalModelServer, ReasonerPrefs, ReasonerUpdate
from .privacy import OWNER, Client

log = logging.getLogger("localvideo.reason")

# Where an SDK goes when no base URL is set and the class names none (google-genai).
_SDK_DEFAULT_URL = {"gemini": "https://generativelanguage.googleapis.com"}
TEST_SYSTEM = ("This is a connection test from localvideo; no screen content is included. "
               "Answer in one short sentence.")
TEST_QUESTION = "Say hello and name the model you are."


class ReasonerArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # -- read ---------------------------------------------------------------------------
    def get(self) -> ReasonerPrefs:
        """The configured endpoint, what runs now, the masked key and what is sent where."""
        s = self._ctx.settings
        a = s.analyze
        name = resolve_name(a.reasoner, s)
        cls = reasoner_class(name)
        endpoint = _endpoint(cls, a.base_url)
        key_name = name if cls.key_env else None
        stored = KeyStore(s.data_dir).list() if key_name else []
        info = next((k for k in stored if k["name"] == key_name), None)
        return ReasonerPrefs(
            reasoner=a.reasoner, resolved=name, base_url=a.base_url, endpoint=endpoint,
            host=_host(endpoint), local=name == "offline" or is_local(endpoint),
            model=a.model, model_used=None if name == "offline" else a.model or cls.default_model,
            window=a.window, key_name=key_name, key=str(info["preview"]) if info else "",
            key_env=str(info["env"]) if info else "",
            sends=_sends(name, endpoint, a.window, a.max_images))

    # -- change -------------------------------------------------------------------------
    def update(self, change: ReasonerUpdate, by: Client | None = None) -> ReasonerPrefs:
        """Validate, store the key (if one is given), save [analyze] to config.toml (comments
        kept), and log a change of endpoint to the audit log and the app log."""
        before = self.get()
        fields: dict[str, Any] = {}
        if change.reasoner is not None:
            fields["reasoner"] = change.reasoner
        if change.base_url is not None:
            fields["base_url"] = change.base_url.strip() or None
        if change.model is not None:
            fields["model"] = change.model.strip() or None
        if change.window is not None and change.window != "":
            fields["window"] = change.window
        key = (change.key or "").strip()
        if key:
            target = resolve_name(fields.get("reasoner", self._ctx.settings.analyze.reasoner),
                                  self._ctx.settings)
            if target not in KNOWN or target == "offline":
                raise UsageError(f"the {target} reasoner takes no key",
                                 "choose anthropic, openai or gemini, then type its key")
        if fields:
            # Validated as a whole (a bad URL saves nothing) before the key is stored.
            fresh = config.update_settings(self._ctx.settings.data_dir, {"analyze": fields},
                                           source="reasoner settings")
            for name in fields:
                setattr(self._ctx.settings.analyze, name, getattr(fresh.analyze, name))
        if key:
            KeyStore(self._ctx.settings.data_dir).set(target, key)
        after = self.get()
        self._log_change(before, after, key_stored=after.key_name if key else None, by=by)
        return after

    def _log_change(self, before: ReasonerPrefs, after: ReasonerPrefs, *,
                    key_stored: str | None, by: Client | None) -> None:
        moved = (before.resolved, before.endpoint, before.model_used) != \
            (after.resolved, after.endpoint, after.model_used)
        if not moved and not key_stored:
            return
        what = (f"reasoner {before.resolved} ({before.host or 'this machine'}) -> "
                f"{after.resolved} ({after.host or 'this machine'})"
                + (f" model {after.model_used}" if after.model_used else "")
                + (f"; key for {key_stored} stored" if key_stored else ""))
        who = by or Client(OWNER, "full", "cli")
        log.warning("screen text destination changed by %s (%s): %s", who.name, who.channel,
                    what)
        with self._ctx.db.tx() as conn:
            audit_db.append(conn, channel=who.channel, client=who.name, scope=who.scope,
                            action="endpoint", target=what, status=200)

    # -- test ---------------------------------------------------------------------------
    def test(self, change: ReasonerUpdate | None = None) -> EndpointTest:
        """Send one small request (no screen content) through the real reasoner code, with
        the saved settings or those in ``change`` (not saved); the reply or the error."""
        change = change or ReasonerUpdate()
        a = self._ctx.settings.analyze
        started = time.monotonic()
        name = resolve_name(change.reasoner or a.reasoner, self._ctx.settings)
        base_url = a.base_url if change.base_url is None else (change.base_url.strip() or None)
        model = a.model if change.model is None else (change.model.strip() or None)
        endpoint: str | None = None
        try:
            if base_url is not None:
                config.AnalyzeSettings.model_validate({"base_url": base_url})
            rsn = get_reasoner(name, settings=self._ctx.settings, db=self._ctx.db,
                               model=model, base_url=base_url,
                               key=(change.key or "").strip() or None, retries=0,
                               timeout=min(a.timeout, 30.0))
            endpoint = None if name == "offline" else rsn.base_url or _endpoint(type(rsn), None)
            if name == "offline":
                return EndpointTest(ok=True, reasoner=name, model=rsn.model,
                                    answer="The offline reasoner runs here, with rules and no "
                                           "model: nothing is sent anywhere.",
                                    seconds=round(time.monotonic() - started, 3))
            resp = rsn.execute(ReasonRequest(task="ask", system=TEST_SYSTEM,
                                             question=TEST_QUESTION, max_tokens=64))
        except LocalVideoError as exc:
            return EndpointTest(ok=False, reasoner=name, model=model, endpoint=endpoint,
                                error=exc.message, hint=exc.hint,
                                seconds=round(time.monotonic() - started, 3))
        except ValueError as exc:    # a base URL the config refuses (pydantic)
            return EndpointTest(ok=False, reasoner=name, model=model, endpoint=base_url,
                                error=f"base URL {base_url!r}: {_first_error(exc)}",
                                hint="e.g. http://127.0.0.1:11434/v1",
                                seconds=round(time.monotonic() - started, 3))
        return EndpointTest(ok=True, reasoner=name, model=resp.model, endpoint=endpoint,
                            answer=" ".join(resp.text.split())[:500],
                            seconds=round(time.monotonic() - started, 3))

    # -- a local model, found -----------------------------------------------------------
    def local(self, ports: list[int] | None = None) -> list[LocalModelServer]:
        """OpenAI-compatible servers answering ``GET /v1/models`` on 127.0.0.1 at the usual
        ports (``analyze.local_ports``); that GET is all the probe sends."""
        found = find_local(self._ctx.settings.analyze.local_ports if ports is None else ports)
        now = self.get()
        return [_offer(s, configured=now.resolved == "openai" and now.endpoint == s.base_url)
                for s in found]

    def use_local(self, which: str, model: str | None = None,
                  by: Client | None = None) -> ReasonerPrefs:
        """Point the reasoner at a found local server (``ollama``, ``lm-studio``,
        ``llama.cpp`` or a port): reasoner=openai, its base URL, its first chat model."""
        ports = list(self._ctx.settings.analyze.local_ports)
        if which.isdigit() and int(which) not in ports:
            ports.append(int(which))
        servers = self.local(ports)
        pick = next((s for s in servers if which.lower() in (s.slug, str(s.port),
                                                             s.name.lower())), None)
        if pick is None:
            looked = ", ".join(f"{KNOWN_PORTS.get(p, 'port')} {p}" for p in ports) or "no port"
            raise UsageError(f"no local model server {which!r} answers on 127.0.0.1 "
                             f"(looked at {looked})",
                             "start it (e.g. `ollama serve` and `ollama pull llama3.2`), "
                             "then try again")
        chosen = model or pick.model
        if not chosen:
            raise UsageError(f"{pick.name} at {pick.base_url} lists no model",
                             "pull one first, e.g. `ollama pull llama3.2`")
        return self.update(ReasonerUpdate(reasoner="openai", base_url=pick.base_url,
                                          model=chosen), by=by)


def _first_error(exc: ValueError) -> str:
    errs = exc.errors() if isinstance(exc, ValidationError) else []
    return str(errs[0].get("msg")) if errs else str(exc)


def _endpoint(cls: type[Reasoner], base_url: str | None) -> str | None:
    if cls.name == "offline":
        return None
    env = os.environ.get(cls.base_url_env) if cls.base_url_env else None
    url = base_url or env or cls.default_base_url or _SDK_DEFAULT_URL.get(cls.name)
    return url.rstrip("/") if url else None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    p = urlparse(url)
    return p.netloc or None


def _sends(name: str, endpoint: str | None, window: float, max_images: int) -> str:
    if name == "offline":
        return "Nothing leaves this machine: the offline reasoner reads the screen text here."
    where = _host(endpoint) or "the provider's default host"
    local = is_local(endpoint)
    frames = f"up to {max_images} key frames" if max_images else "no key frames"
    video = " and the chunk video itself" if name == "gemini" else ""
    return (f"Every {format_duration(window)} of activity, the redacted screen text, window "
            f"titles and {frames} (when the model takes images){video} are sent to {where}"
            + (" — a server on this machine." if local else
               " — off this machine. Questions you ask are sent there too."))


def _offer(s: LocalServer, *, configured: bool) -> LocalModelServer:
    model = s.model
    # Ollama names its default tag ':latest'; the button says the name people pulled.
    shown = f" ({model.removesuffix(':latest')})" if model else ""
    return LocalModelServer(
        name=s.name, slug=s.slug, port=s.port, base_url=s.base_url, models=s.models,
        model=model, label=f"Use {s.name}{shown}",
        command=f"localvideo reasoner use {s.slug}",
        configured=configured)
