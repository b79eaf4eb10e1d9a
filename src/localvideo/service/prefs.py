"""The settings a user changes from the UI: privacy exclusions, retention, the agent command.

Validation happens here, before anything is written, so one bad field saves nothing; the
file is written by config.py (which keeps the user's comments and key order).
"""

from __future__ import annotations

import re
from typing import Any

from .. import config
from ..errors import UsageError
from ..units import parse_duration, parse_size
from .context import Context
from .models import PrefsUpdate, RecordPrefs


class PrefsArea:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def get(self) -> RecordPrefs:
        rec = self._ctx.settings.record
        return RecordPrefs(exclude_apps=list(rec.exclude_apps),
                           exclude_titles=list(rec.exclude_titles),
                           excluded_action=rec.excluded_action, max_bytes=rec.max_bytes,
                           max_age=rec.max_age,
                           agent_command=self._ctx.settings.serve.agent_command)

    def update(self, change: PrefsUpdate) -> RecordPrefs:
        """Validate every field, then save them to config.toml; returns the new values.

        A running recorder reads them on restart (`localvideo observe` restarts it when the
        file changes)."""
        changes: dict[str, Any] = {}
        if change.exclude_apps is not None:
            changes["exclude_apps"] = [a.strip() for a in change.exclude_apps if a.strip()]
        if change.exclude_titles is not None:
            titles = [t.strip() for t in change.exclude_titles if t.strip()]
            for t in titles:
                try:
                    re.compile(t)
                except re.error as exc:
                    raise UsageError(f"title pattern {t!r} is not a valid regex: {exc}",
                                     "use Python regex syntax, e.g. (?i)\\bbank\\b") from exc
            changes["exclude_titles"] = titles
        if change.excluded_action is not None:
            changes["excluded_action"] = change.excluded_action
        if change.max_bytes is not None and change.max_bytes != "":
            changes["max_bytes"] = parse_size(change.max_bytes, what="max_bytes")
        if change.max_age is not None and change.max_age != "":
            changes["max_age"] = parse_duration(change.max_age, what="max_age")
        if changes:
            _save(self._ctx, changes)
        return self.get()


def _save(ctx: Context, changes: dict[str, Any]) -> None:
    """One write of every change (comments and key order kept), then the running process'
    settings take the saved values."""
    fresh = config.update_settings(ctx.settings.data_dir, {"record": changes}, source="settings")
    for key in changes:
        setattr(ctx.settings.record, key, getattr(fresh.record, key))
