"""The service layer: one typed façade every front end shares.

CLI, REST/web and MCP are thin over :class:`Service`, which is composed of one object per
area (``svc.record``, ``svc.analyze``, ``svc.synth``, ``svc.jobs``, ...), each in its own file
and each seeing only the shared :class:`Context` and the areas handed to it. Operations take
and return the pydantic models of :mod:`localvideo.service.models`; all policy (validation,
time parsing, path confinement, which fields a response exposes) lives here, not in the
front ends. ``python -m localvideo.service.apidoc`` prints the contract (docs/SERVICE-API.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..store.db import Database
from . import models
from .act import ActArea
from .analyze import AnalyzeArea
from .autostart import AutostartArea
from .context import Context, moment
from .doctor import DoctorArea
from .encryption import EncryptionArea, EncryptionUnlocker, ExportArea
from .jobs import JobsArea
from .keys import KeysArea
from .models import ServeInfo, Status, When
from .prefs import PrefsArea
from .privacy import PrivacyArea
from .reasoner import ReasonerArea
from .record import RecordArea
from .synth import SynthArea
from .token import TokenArea


class Service:
    """Everything a user can do, as typed Python calls grouped by area."""

    record: RecordArea
    analyze: AnalyzeArea
    keys: KeysArea
    reasoner: ReasonerArea
    synth: SynthArea
    jobs: JobsArea
    act: ActArea
    token: TokenArea
    prefs: PrefsArea
    doctor: DoctorArea
    autostart: AutostartArea
    privacy: PrivacyArea
    encryption: EncryptionArea
    export: ExportArea

    def __init__(self, settings: Settings) -> None:
        self.ctx = Context(settings)
        self.record = RecordArea(self.ctx)
        self.analyze = AnalyzeArea(self.ctx)
        self.keys = KeysArea(self.ctx)
        self.reasoner = ReasonerArea(self.ctx)
        self.synth = SynthArea(self.ctx)
        self.jobs = JobsArea(self.ctx, self.synth)
        self.act = ActArea(self.ctx, self.analyze)
        self.token = TokenArea(self.ctx)
        self.prefs = PrefsArea(self.ctx)
        self.doctor = DoctorArea(self.ctx, self.synth)
        self.autostart = AutostartArea(self.ctx)
        self.privacy = PrivacyArea(self.ctx, self.token)
        self.encryption = EncryptionArea(self.ctx)
        self.export = ExportArea(self.ctx, self.record)
        # An encrypted store's `unlock` takes its passphrase (or its keyring entry).
        self.privacy.unlocker = EncryptionUnlocker(self.ctx)

    @classmethod
    def open(cls, data_dir: str | Path | None = None,
             overrides: dict[str, dict[str, Any]] | None = None, *,
             recover: bool = True) -> Service:
        """Load settings (defaults < config.toml < env < ``overrides``) and open the store.

        "The next start of any command recovers a partial chunk into the index": unless
        ``recover`` is False, chunks a dead recorder left behind are indexed now."""
        svc = cls(load_settings(data_dir, overrides))
        if recover:
            svc.record.recover()
        return svc

    # -- shared context (read-only for front ends) ----------------------------------------
    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def db(self) -> Database:
        """The index, for tests and benches; front ends never use it."""
        return self.ctx.db

    @property
    def device_id(self) -> str:
        return self.ctx.device_id

    def close(self) -> None:
        self.ctx.close()

    # -- across areas ---------------------------------------------------------------------
    def status(self) -> Status:
        """Recorder state, pause, disk, totals, analysis progress and what the server offers."""
        rec = self.record.state()
        return Status(**dict(rec), analysis=self.analyze.status(),
                      serve=ServeInfo(agent_command=bool(self.settings.serve.agent_command)))

    @staticmethod
    def time(value: When, what: str = "time") -> float:
        """A moment as the user typed it → unix seconds (the one parser every area uses)."""
        return moment(value, what)


__all__ = ["Service", "Settings", "models"]
