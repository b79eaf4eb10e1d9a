"""Typed settings: defaults in code < ``<data-dir>/config.toml`` < environment < flags.

The state root is chosen first (``--data-dir`` > ``LOCALVIDEO_HOME`` > platformdirs), because
the config file lives inside it. Sections mirror the boxes of the design: ``[record]``,
``[analyze]``, ``[synth]``, ``[serve]``. An environment variable
``LOCALVIDEO_<SECTION>_<FIELD>`` (e.g. ``LOCALVIDEO_RECORD_FPS=1``) overrides the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError, UsageError

# Windows whose pixels must never reach the disk unless the user removes them.
DEFAULT_EXCLUDE_APPS = [
    "1password", "bitwarden", "keepassxc", "keepass", "lastpass", "dashlane", "enpass",
    "keychain access", "seahorse", "kwalletmanager",
]
DEFAULT_EXCLUDE_TITLES = [
    r"(?i)\bprivate browsing\b", r"(?i)\bincognito\b", r"(?i)\binprivate\b",
    r"(?i)\b(1password|bitwarden|keepassxc|lastpass)\b",
]


@dataclass
class RecordSettings:
    mode: str = "active-window"          # active-window | display
    display: str = "1"                   # 1-based monitor number, or "all"
    fps: float = 2.0
    chunk_seconds: float = 60.0
    codec: str = "auto"                  # auto | hevc | h264
    quality: int = 32                    # x264-style CRF; mapped per encoder (lower = better);
                                         # 32 measured ≤ 20 MB/h with text still OCR-exact
    canvas_max: int = 1920               # cap on the canvas' long side
    max_bytes: int = 20 * 1000**3        # retention: total chunk bytes
    max_age: float = 30 * 86400.0        # retention: seconds
    min_free_bytes: int = 1000**3        # pause recording below this much free disk
    exclude_apps: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE_APPS))
    exclude_titles: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE_TITLES))
    excluded_action: str = "blank"       # blank | skip


@dataclass
class AnalyzeSettings:
    reasoner: str = "auto"               # auto | offline | anthropic | openai | gemini
    model: str | None = None
    base_url: str | None = None
    window: float = 300.0                # seconds of activity per observation
    keyframe_interval: float = 10.0      # steady cadence while content changes
    ocr_lang: str = "eng"
    max_images: int = 4                  # key frames sent per observation
    retries: int = 2                     # per request, before an observation stays pending
    timeout: float = 120.0               # seconds per reasoner request
    images: bool | None = None           # force images on/off for OpenAI-compatible servers


@dataclass
class SynthSettings:
    backend: str = "diffusers"           # diffusers | comfyui
    comfy_url: str = "http://127.0.0.1:8188"
    models_dir: str | None = None        # default: <data-dir>/models


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    agent_command: str | None = None     # e.g. "claude -p" — nothing runs without it


@dataclass
class Settings:
    data_dir: Path
    record: RecordSettings = field(default_factory=RecordSettings)
    analyze: AnalyzeSettings = field(default_factory=AnalyzeSettings)
    synth: SynthSettings = field(default_factory=SynthSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.toml"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "index.sqlite3"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "observer-recordings"

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / "clips"

    @property
    def models_dir(self) -> Path:
        return Path(self.synth.models_dir) if self.synth.models_dir else self.data_dir / "models"


def resolve_data_dir(flag: str | Path | None = None) -> Path:
    raw = flag if flag not in (None, "") else os.environ.get("LOCALVIDEO_HOME")
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("localvideo"))
    if path.exists() and not path.is_dir():
        raise UsageError(f"data dir {path} exists and is not a folder",
                         "pass --data-dir with a folder path (it is created when missing)")
    return path.resolve()


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
        if tp is str:
            return str(value)
        if origin is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {value!r} as {getattr(tp, '__name__', tp)}") from exc
    return value


def _apply(section: Any, values: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(section))
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}",
                              f"known settings: {', '.join(sorted(names))}")
        setattr(section, name, _coerce(value, hints[name], f"{where}.{key}"))


SECTIONS = ("record", "analyze", "synth", "serve")


def load_settings(data_dir: str | Path | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Build settings for one command. ``overrides`` holds flag values (None = not given)."""
    settings = Settings(data_dir=resolve_data_dir(data_dir))
    if settings.config_path.exists():
        try:
            doc = tomllib.loads(settings.config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {settings.config_path}: {exc}",
                              "fix the file or move it away to use defaults") from exc
        for name, values in doc.items():
            if name not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"{settings.config_path}: unknown section [{name}]",
                                  f"sections are: {', '.join(SECTIONS)}")
            _apply(getattr(settings, name), values, f"{settings.config_path} [{name}]")
    for name in SECTIONS:
        section = getattr(settings, name)
        prefix = f"LOCALVIDEO_{name.upper()}_"
        env = {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
        if env:
            _apply(section, env, f"environment {prefix}*")
    for name, values in (overrides or {}).items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            _apply(getattr(settings, name), given, "flag")
    return settings


def save_setting(settings: Settings, section: str, key: str, value: Any) -> None:
    """Persist one setting into config.toml (used by the web UI's settings page)."""
    if section not in SECTIONS:
        raise UsageError(f"unknown section {section!r}", f"sections are: {', '.join(SECTIONS)}")
    _apply(getattr(settings, section), {key: value}, f"[{section}]")
    doc: dict[str, dict[str, Any]] = {}
    if settings.config_path.exists():
        doc = tomllib.loads(settings.config_path.read_text())
    doc.setdefault(section, {})[key] = getattr(getattr(settings, section), key.replace("-", "_"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.config_path.with_suffix(".tmp")
    tmp.write_text(_dump_toml(doc))
    os.replace(tmp, settings.config_path)


def _dump_toml(doc: dict[str, dict[str, Any]]) -> str:
    import json

    lines: list[str] = []
    for section, values in doc.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is None:
                continue
            # JSON literals are valid TOML for strings, numbers, booleans and flat lists.
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    return "\n".join(lines)
