"""Typed settings: defaults in code < ``<data-dir>/config.toml`` < environment < flags.

The state root is chosen first (``--data-dir`` > ``LOCALVIDEO_HOME`` > platformdirs), because
the config file lives inside it. Sections mirror the boxes of the design: ``[record]``,
``[analyze]``, ``[synth]``, ``[serve]``. An environment variable
``LOCALVIDEO_<SECTION>_<FIELD>`` (e.g. ``LOCALVIDEO_RECORD_FPS=1``) overrides the file, and a
flag overrides both.

Every field is checked when the settings are loaded, not when a value is first used: a bad
value raises :class:`ConfigError` naming where it came from (the file, the environment
variable or the flag), the key (``section.field``) and what would be accepted. The field
descriptions below are those "what would be accepted" texts; they also describe the fields
in the JSON schema (:func:`settings_schema`).

Writes go through tomlkit (:func:`update_settings`), which changes only the keys being set,
so the user's comments, blank lines and key order survive a save from the UI or the CLI.

The section models are plain pydantic models; pydantic-settings (which pulls in asyncio,
argparse and dotenv) and tomlkit are imported only when settings are loaded or saved, so
modules that import this one for its types stay cheap to import.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, UsageError
from .units import parse_duration, parse_size

# Windows whose pixels must never reach the disk unless the user removes them.
DEFAULT_EXCLUDE_APPS = [
    "1password", "bitwarden", "keepassxc", "keepass", "lastpass", "dashlane", "enpass",
    "keychain access", "seahorse", "kwalletmanager",
]
DEFAULT_EXCLUDE_TITLES = [
    r"(?i)\bprivate browsing\b", r"(?i)\bincognito\b", r"(?i)\binprivate\b",
    r"(?i)\b(1password|bitwarden|keepassxc|lastpass)\b",
]

SECTIONS = ("record", "analyze", "synth", "serve")
ENV_PREFIX = "LOCALVIDEO_"
CONFIG_NAME = "config.toml"

# A change set as the service's settings area passes it: {"record": {"fps": 1.0}, ...}.
SettingsChanges = dict[str, dict[str, Any]]

_NONE_WORDS = ("", "none", "null")


def _none_if_empty(value: Any) -> Any:
    # Environment variables and form fields cannot say "unset" except with a word.
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    return value


def _text_list(value: Any) -> Any:
    # "a, b" (or a JSON list) from an environment variable or a flag; blank entries dropped.
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"is not a JSON list ({exc})") from exc
        else:
            value = value.split(",")
    if isinstance(value, list | tuple):
        return [v.strip() if isinstance(v, str) else v for v in value
                if not (isinstance(v, str) and not v.strip())]
    return value


def _url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("is not an http:// or https:// URL")
    return value


class _Section(BaseModel):
    # forbid: a typo in config.toml is an error, not a silently ignored line.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RecordSettings(_Section):
    mode: Literal["active-window", "display"] = Field(
        default="active-window",
        description="active-window (the focused window) or display (whole monitors)")
    display: str = Field(
        default="1",
        description="a monitor number from 1, or all")
    fps: float = Field(
        default=2.0, gt=0, le=60,
        description="a number of frames per second above 0 and at most 60")
    chunk_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="a number of seconds per chunk file above 0 and at most 3600")
    codec: Literal["auto", "hevc", "h264"] = Field(
        default="auto",
        description="auto (hardware HEVC if it works, else H.264), hevc or h264")
    # x264-style CRF, mapped per encoder; 32 measured ≤ 20 MB/h with text still OCR-exact.
    quality: int = Field(
        default=32, ge=0, le=51,
        description="a whole number from 0 to 51 (x264-style CRF, lower is better)")
    canvas_max: int = Field(
        default=1920, ge=64, le=8192,
        description="a whole number of pixels from 64 to 8192 (the canvas' long side)")
    max_bytes: int = Field(
        default=20 * 1000**3, ge=0,
        description="a size such as 20GB, or a number of bytes (0 or more)")
    max_age: float = Field(
        default=30 * 86400.0, ge=0,
        description="an age such as 30d or 12h, or a number of seconds (0 or more)")
    min_free_bytes: int = Field(
        default=1000**3, ge=0,
        description="a size such as 1GB, or a number of bytes (0 or more)")
    exclude_apps: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE_APPS),
        description="a list of app names, matched regardless of case")
    exclude_titles: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE_TITLES),
        description=r"a list of Python regular expressions matched against window titles, "
                    r"e.g. (?i)\bbank\b")
    excluded_action: Literal["blank", "skip"] = Field(
        default="blank",
        description="blank (a flat grey frame, the time kept) or skip (nothing encoded)")
    # auto: Wayland whenever WAYLAND_DISPLAY is set (a DISPLAY there is XWayland, blind to
    # native windows), else X11; see capture/registry.py.
    backend: Literal["auto", "x11", "wayland"] = Field(
        default="auto",
        description="auto (Wayland on a Wayland session, else X11), x11 or wayland")

    @field_validator("display", mode="before")
    @classmethod
    def _display(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "all":
            return text
        if text.isdigit() and int(text) >= 1:
            return str(int(text))
        raise ValueError("is not a monitor number from 1 or 'all'")

    @field_validator("max_bytes", "min_free_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_size(value)
            except UsageError as exc:
                raise ValueError("is not a size") from exc
        return value

    @field_validator("max_age", mode="before")
    @classmethod
    def _age(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except UsageError as exc:
                raise ValueError("is not a duration") from exc
        return value

    @field_validator("exclude_apps", "exclude_titles", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _text_list(value)

    @field_validator("exclude_titles")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"holds {pattern!r}, which is not a valid regex ({exc})") from exc
        return value

    @field_validator("mode", "codec", "excluded_action", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class AnalyzeSettings(_Section):
    reasoner: Literal["auto", "offline", "anthropic", "openai", "gemini"] = Field(
        default="auto",
        description="auto, offline, anthropic, openai or gemini")
    model: str | None = Field(
        default=None,
        description="a model name the endpoint knows (empty: the reasoner's default)")
    base_url: str | None = Field(
        default=None,
        description="an http:// or https:// URL (empty: the provider's default)")
    window: float = Field(
        default=300.0, gt=0, le=86400,
        description="seconds of activity per observation (e.g. 300 or 5m), above 0 and at "
                    "most 86400")
    keyframe_interval: float = Field(
        default=10.0, gt=0, le=3600,
        description="seconds between key frames while content changes, above 0 and at most 3600")
    ocr_lang: str = Field(
        default="eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
        description="a tesseract language code such as eng, deu or eng+deu")
    ocr_engine: Literal["auto", "library", "program"] = Field(
        default="auto",
        description="how tesseract runs: auto, library (in process, through tesserocr) or "
                    "program (the tesseract executable, one process per read)")
    embed_model: str = Field(
        default="wordllama", pattern=r"^[A-Za-z0-9_.-]+$",
        description="the embedding model for search by meaning: wordllama (bundled), hashing, "
                    "or one fetched with `localvideo models pull NAME`")
    max_images: int = Field(
        default=4, ge=0, le=32,
        description="a whole number of key frames per observation, 0 to 32")
    retries: int = Field(
        default=2, ge=0, le=10,
        description="a whole number of retries per request, 0 to 10")
    timeout: float = Field(
        default=120.0, gt=0, le=3600,
        description="seconds per reasoner request, above 0 and at most 3600")
    images: bool | None = Field(
        default=None,
        description="true, false, or empty to decide from the model's name (OpenAI-compatible "
                    "servers)")
    local_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [11434, 1234, 8080],
        description="loopback ports probed (GET /v1/models on 127.0.0.1 only) for a local "
                    "OpenAI-compatible server to offer: Ollama 11434, LM Studio 1234, "
                    "llama.cpp 8080; an empty list probes nothing")

    @field_validator("model", "base_url", "images", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return _none_if_empty(value)

    @field_validator("local_ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        return _text_list(value)

    @field_validator("reasoner", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("window", "keyframe_interval", "timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except UsageError as exc:
                raise ValueError("is not a duration") from exc
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _url(value)


class SynthSettings(_Section):
    backend: Literal["diffusers", "comfyui", "replicate", "fal", "veo", "runway"] = Field(
        default="diffusers",
        description="diffusers, comfyui, or a hosted provider: replicate, fal, veo, runway")
    comfy_url: str = Field(
        default="http://127.0.0.1:8188",
        description="an http:// or https:// URL of a ComfyUI server")
    models_dir: str | None = Field(
        default=None,
        description="a folder path (empty: <data-dir>/models)")
    hosted_poll: float = Field(
        default=2.0, ge=0.01, le=60,
        description="seconds between status checks of a hosted job (replicate, fal, veo, "
                    "runway)")

    @field_validator("models_dir", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return _none_if_empty(value)

    @field_validator("comfy_url")
    @classmethod
    def _comfy_url(cls, value: str) -> str:
        return _url(value) or value


class ServeSettings(_Section):
    host: str = Field(
        default="127.0.0.1", min_length=1,
        description="a host name or IP address to bind, e.g. 127.0.0.1")
    port: int = Field(
        default=8765, ge=1, le=65535,
        description="a TCP port from 1 to 65535")
    # Nothing runs without it: `act` refuses and names this setting.
    agent_command: str | None = Field(
        default=None,
        description="a command line such as claude -p (empty: handing tasks to an agent is off)")

    @field_validator("agent_command", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return _none_if_empty(value)


SECTION_MODELS: dict[str, type[_Section]] = {
    "record": RecordSettings, "analyze": AnalyzeSettings,
    "synth": SynthSettings, "serve": ServeSettings,
}


class _Sections(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    record: RecordSettings = Field(default_factory=lambda: RecordSettings())
    analyze: AnalyzeSettings = Field(default_factory=lambda: AnalyzeSettings())
    synth: SynthSettings = Field(default_factory=lambda: SynthSettings())
    serve: ServeSettings = Field(default_factory=lambda: ServeSettings())


class Settings(_Sections):
    """The settings of one command: the state root and the four sections."""

    data_dir: Path

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

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
    if raw:
        path = Path(raw).expanduser()
    else:
        # appauthor=False: on Windows the default author is the app name again, which made
        # %LOCALAPPDATA%\localvideo\localvideo. A store already there is kept in use.
        path = Path(platformdirs.user_data_dir("localvideo", appauthor=False))
        nested = Path(platformdirs.user_data_dir("localvideo"))
        if nested != path and (nested / "index.sqlite3").exists():
            path = nested
    if path.exists() and not path.is_dir():
        raise UsageError(f"data dir {path} exists and is not a folder",
                         "pass --data-dir with a folder path (it is created when missing)")
    return path.resolve()


def settings_schema() -> dict[str, Any]:
    """JSON schema of the four sections (types, defaults, ranges, choices, descriptions),
    for the UI and the OpenAPI document."""
    return _Sections.model_json_schema()


# ---------------------------------------------------------------------------------------------
# Loading: pydantic-settings layers the sources, and errors are traced back to their source.

# The file's values for the load in progress (pydantic-settings builds sources per class,
# not per call, so the file layer reaches its source through this variable).
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("localvideo_config_file",
                                                             default=None)


@functools.cache
def _layered() -> type[_Sections]:
    """The pydantic-settings class, built on first use (importing pydantic-settings costs
    about 100 ms, which the modules that import ``Settings`` for its type need not pay)."""
    from pydantic.fields import FieldInfo
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    class FileSource(PydanticBaseSettingsSource):
        def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
            return (_FILE_VALUES.get() or {}).get(field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            return dict(_FILE_VALUES.get() or {})

    class Layered(BaseSettings, _Sections):
        # LOCALVIDEO_RECORD_CHUNK_SECONDS: split once, at the section name.
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, env_nested_delimiter="_", env_nested_max_split=1,
            case_sensitive=False, extra="forbid", validate_assignment=True,
            # Lists come as "a, b" (or JSON); the models parse them, so errors name the key.
            enable_decoding=False)

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # Highest priority first: flags (passed as init values) > environment > file;
            # the defaults in the models come last of all. No .env file, no secrets dir.
            return init_settings, env_settings, FileSource(settings_cls)

    return Layered


@contextmanager
def _file_layer(values: dict[str, Any]) -> Iterator[None]:
    token = _FILE_VALUES.set(values)
    try:
        yield
    finally:
        _FILE_VALUES.reset(token)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}",
                          "fix the file or move it away to use the defaults") from exc
    return {name: _norm_keys(values) if isinstance(values, dict) else values
            for name, values in doc.items()}


def _norm_keys(values: dict[str, Any]) -> dict[str, Any]:
    # `chunk-seconds` and `chunk_seconds` are the same setting (flags are spelled with dashes).
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _given(overrides: SettingsChanges | None) -> SettingsChanges:
    """Flag values that were given (None means the flag was not passed)."""
    out: SettingsChanges = {}
    for section, values in (overrides or {}).items():
        given = {k: v for k, v in _norm_keys(values).items() if v is not None}
        if given:
            out[section] = given
    return out


def _env_name(section: str, key: str) -> str | None:
    want = f"{ENV_PREFIX}{section}_{key}".upper()
    return next((k for k in os.environ if k.upper() == want), None)


def load_settings(data_dir: str | Path | None = None,
                  overrides: SettingsChanges | None = None) -> Settings:
    """Build settings for one command. ``overrides`` holds flag values (None = not given)."""
    root = resolve_data_dir(data_dir)
    path = root / CONFIG_NAME
    file_values = _read_file(path)
    flags = _given(overrides)
    try:
        with _file_layer(file_values):
            layered = _layered()(**cast(dict[str, Any], flags))
    except ValidationError as exc:
        raise _config_error(exc, lambda s, k: _source(path, flags, s, k)) from None
    except ValueError as exc:
        # pydantic-settings' own SettingsError (a ValueError) when it cannot read the environment.
        raise ConfigError(f"cannot read the {ENV_PREFIX}* environment variables: {exc}",
                          "fix or unset the variable it names") from exc
    return Settings(data_dir=root, record=layered.record, analyze=layered.analyze,
                    synth=layered.synth, serve=layered.serve)


def _source(path: Path, flags: SettingsChanges, section: str, key: str | None) -> tuple[str, str]:
    """Where a bad value came from, and how to fix it there."""
    if key is not None and key in flags.get(section, {}):
        flag = "--" + key.replace("_", "-")
        return f"flag {flag}", f"pass a valid {flag}"
    env = _env_name(section, key) if key is not None else None
    if env:
        return f"environment {env}", f"fix or unset {env}"
    if key is None and section in flags:
        return "flags", f"sections are: {', '.join(SECTIONS)}"
    return str(path), f"fix that line in {path}, or delete it to use the default"


_PROBLEMS = {
    "float_parsing": "is not a number", "float_type": "is not a number",
    "int_parsing": "is not a whole number", "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "bool_parsing": "is not true or false", "bool_type": "is not true or false",
    "string_type": "is not text", "list_type": "is not a list",
    "literal_error": "is not one of the choices",
    "greater_than": "is out of range", "greater_than_equal": "is out of range",
    "less_than": "is out of range", "less_than_equal": "is out of range",
    "string_too_short": "is empty", "string_pattern_mismatch": "is not in the expected form",
    "model_type": "is not a table", "dict_type": "is not a table",
}


def _config_error(exc: ValidationError, source: Any) -> ConfigError:
    """One ConfigError for all the bad values: each line names its source, its key, the value
    and what would be accepted. ``source(section, key)`` returns (where, how to fix)."""
    lines: list[str] = []
    hints: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        section = loc[0]
        key = loc[1] if len(loc) > 1 else None
        where, fix = source(section, key)
        if key is None:
            if err["type"] == "extra_forbidden":
                lines.append(f"{where}: unknown section [{section}]")
                hints.append(f"sections are: {', '.join(SECTIONS)}")
            else:
                lines.append(f"{where}: [{section}] {_PROBLEMS.get(err['type'], err['msg'])}")
                hints.append(fix)
            continue
        model = SECTION_MODELS.get(section)
        fields = model.model_fields if model else {}
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown setting {key!r} in [{section}]")
            hints.append(f"known settings in [{section}]: {', '.join(fields)}")
            continue
        name = f"{section}.{key}" + "".join(f"[{i}]" for i in loc[2:])
        if err["type"] == "value_error":
            problem = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            problem = _PROBLEMS.get(err["type"], err["msg"].lower())
        use = fields[key].description if key in fields else None
        lines.append(f"{where}: {name} = {err['input']!r} {problem}"
                     + (f"; use {use}" if use else ""))
        hints.append(fix)
    return ConfigError("\n".join(lines), "; ".join(dict.fromkeys(hints)))


# ---------------------------------------------------------------------------------------------
# Saving: validate the change with the same models, then edit config.toml in place.

def update_settings(data_dir: str | Path | None, changes: SettingsChanges, *,
                    source: str = "settings") -> Settings:
    """Validate ``changes`` ({section: {field: value}}) and write them into config.toml.

    Values are normalised as at load ("3GB" → 3000000000, "7d" → 604800.0); None removes the
    key, so the default applies again. A bad value raises :class:`ConfigError` naming
    ``source`` and the key, and nothing is written. Only the changed keys are touched: the
    file's comments, blank lines and key order stay. Returns the settings as a fresh load
    sees them (an environment variable still beats the file)."""
    root = resolve_data_dir(data_dir)
    path = root / CONFIG_NAME
    changes = {s: _norm_keys(v) for s, v in changes.items()}
    for section, values in changes.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise ConfigError(f"{source}: unknown section [{section}]",
                              f"sections are: {', '.join(SECTIONS)}")
    file_values = _read_file(path)
    merged = {s: dict(v) if isinstance(v, dict) else v for s, v in file_values.items()}
    for section, values in changes.items():
        target = merged.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value

    def where(section: str, key: str | None) -> tuple[str, str]:
        if key is not None and key in changes.get(section, {}):
            return source, "send a valid value"
        return str(path), f"fix that line in {path}, or delete it to use the default"

    try:
        checked = _Sections.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, where) from None
    _write_changes(path, {
        section: {key: (None if value is None else
                        getattr(getattr(checked, section), key))
                  for key, value in values.items()}
        for section, values in changes.items()})
    return load_settings(root)


def save_setting(settings: Settings, section: str, key: str, value: Any) -> None:
    """Persist one setting into config.toml and set it on ``settings`` (kept for callers that
    hold a Settings; new code calls :func:`update_settings`)."""
    if section not in SECTIONS:
        raise UsageError(f"unknown section {section!r}", f"sections are: {', '.join(SECTIONS)}")
    name = key.replace("-", "_")
    fresh = update_settings(settings.data_dir, {section: {name: value}})
    setattr(getattr(settings, section), name, getattr(getattr(fresh, section), name))


def _write_changes(path: Path, changes: dict[str, dict[str, Any]]) -> None:
    import tomlkit
    from tomlkit.items import Table

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = tomlkit.parse(text)
    for section, values in changes.items():
        table = doc.get(section)
        if not isinstance(table, Table):
            table = tomlkit.table()
            doc[section] = table
        for key, value in values.items():
            # Keep the spelling the user wrote (`chunk-seconds` stays `chunk-seconds`).
            spelled = next((k for k in table if str(k).replace("-", "_") == key), key)
            if value is None:
                if spelled in table:
                    del table[spelled]
            elif isinstance(value, list) and len(value) > 2:
                arr = tomlkit.array()
                arr.extend(value)
                table[spelled] = arr.multiline(True)
            else:
                table[spelled] = value
    _write_private(path, tomlkit.dumps(doc))


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with an owner-only (0600) file: a crash leaves the old file
    or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)   # mkstemp already makes it 0600; this says so where it matters
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
