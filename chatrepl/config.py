"""Settings: flags > environment > TOML config file > defaults, resolved into a frozen object."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from chatrepl.errors import ConfigError

APP_NAME = "chatrepl"
DEFAULT_CHAT_MODEL = "gpt-4o-mini"
DEFAULT_COMPLETION_MODEL = "gpt-3.5-turbo-instruct"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Secrets live here in memory only; nothing here is ever saved."""

    backend: str | None = None  # "openai", "local", or None to choose automatically
    model: str = DEFAULT_CHAT_MODEL
    completion_model: str = DEFAULT_COMPLETION_MODEL
    system: str | None = None
    max_tokens: int = 256  # completion mode; servers default to 16
    chat_max_tokens: int | None = None
    api_key: str | None = None
    base_url: str | None = None
    azure_endpoint: str | None = None
    azure_api_key: str | None = None
    api_version: str | None = None
    max_retries: int = 2
    timeout: float = 600.0
    model_path: str | None = None
    n_ctx: int = 2048
    n_threads: int = 1
    n_threads_batch: int = 1
    code_theme: str = "monokai"
    debug: bool = False

    @property
    def uses_azure(self) -> bool:
        """Whether the Azure OpenAI variables select the AzureOpenAI client."""
        return bool(self.azure_endpoint)

    @property
    def has_remote_api(self) -> bool:
        """Whether any OpenAI-compatible endpoint or key is configured."""
        return bool(self.api_key or self.base_url or self.azure_endpoint)


@dataclass(frozen=True)
class Overrides:
    """Settings given on the command line; None means "not given"."""

    backend: str | None = None
    model: str | None = None
    completion_model: str | None = None
    system: str | None = None
    model_path: str | None = None
    max_tokens: int | None = None
    chat_max_tokens: int | None = None
    debug: bool | None = None


# Environment variable -> settings field.
ENVIRONMENT = {
    "CHATREPL_BACKEND": "backend",
    "CHATREPL_MODEL": "model",
    "CHATREPL_COMPLETION_MODEL": "completion_model",
    "CHATREPL_SYSTEM": "system",
    "CHATREPL_MAX_TOKENS": "max_tokens",
    "CHATREPL_CHAT_MAX_TOKENS": "chat_max_tokens",
    "CHATREPL_MAX_RETRIES": "max_retries",
    "CHATREPL_MODEL_PATH": "model_path",
    "OPENAI_API_KEY": "api_key",
    "OPENAI_BASE_URL": "base_url",
    "AZURE_OPENAI_ENDPOINT": "azure_endpoint",
    "AZURE_OPENAI_API_KEY": "azure_api_key",
    "OPENAI_API_VERSION": "api_version",
}
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def config_dir() -> Path:
    """Where config.toml lives: $CHATREPL_HOME, else the platform's user config dir."""
    home = os.environ.get("CHATREPL_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def data_dir() -> Path:
    """Where sessions and input history live: $CHATREPL_HOME, else the user data dir."""
    home = os.environ.get("CHATREPL_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def config_path() -> Path:
    """The TOML config file."""
    return config_dir() / "config.toml"


def sessions_dir() -> Path:
    """The directory holding one JSON file per session."""
    return data_dir() / "sessions"


def history_path() -> Path:
    """The prompt's persistent input history."""
    return data_dir() / "history"


def load_settings(
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and flags (highest wins)."""
    values: dict[str, Any] = {}
    values.update(_read_config_file(path or config_path()))
    values.update(_from_environment(os.environ if environ is None else environ))
    given = asdict(overrides) if overrides is not None else {}
    values.update({k: v for k, v in given.items() if v is not None})
    return replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from error
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in {path}")
    return data


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    return {field: environ[name] for name, field in ENVIRONMENT.items() if environ.get(name)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a string from the environment or a TOML value into the field's type."""
    kind = _FIELD_TYPES[name]
    try:
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    except (TypeError, ValueError) as error:
        raise ConfigError(f"setting {name} must be a number, not {value!r}") from error
    return value if value is None else str(value)
