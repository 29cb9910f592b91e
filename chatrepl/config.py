"""Settings: flags > environment > TOML config file > defaults, resolved into a frozen object."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from chatrepl.errors import ConfigError, hide

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
    connect_timeout: float = 10.0  # seconds to open the connection
    timeout: float = 120.0  # the longest wait for the server's next byte, the first included
    model_path: str | None = None
    n_ctx: int = 2048
    n_threads: int = 1
    n_threads_batch: int = 1
    embedded_isolation: bool = True  # the embedded model runs in a worker process
    code_theme: str = "monokai"
    editing_mode: str = "emacs"  # or "vi": the input line's key bindings
    max_input_bytes: int = 4_000_000  # a message's largest size (chatrepl/engine/input_limit.py)
    attach_limit: int = 500_000  # bytes of text files attached to one message (/file, ask -f)
    debug: bool = False
    # Tools the model may call (see chatrepl/tools/).
    functions: tuple[str, ...] = ()  # Python files whose public functions are tools
    tools: tuple[str, ...] = ()  # built-in tools to enable: read_file, list_directory, ...
    tools_auto: bool = False  # run every tool call without asking
    tool_choice: str | None = None  # auto, none, required, or a tool's name
    tool_steps: int = 10  # model calls per turn while it keeps asking for tools
    tool_result_limit: int = 20_000  # characters of a tool's result sent to the model
    shell_allow: tuple[str, ...] = ()  # run_shell commands that run without asking, by prefix
    mcp: Mapping[str, Any] = field(default_factory=dict)  # [mcp.NAME] tables
    # Presets (chatrepl/roles.py, chatrepl/profiles.py): [roles.NAME] and [profiles.NAME].
    role: str | None = None  # the role in use: its system prompt, model and parameters
    roles: Mapping[str, Any] = field(default_factory=dict)
    profile: str | None = None  # the endpoint profile in use
    profiles: Mapping[str, Any] = field(default_factory=dict)
    # Fitting long conversations into the context window (see chatrepl/context/).
    context: str = "summarize"  # summarize, trim or off
    context_window: int | None = None  # tokens; default: the backend's or the model's known one
    reply_reserve: int = 1024  # tokens kept free for the reply (or max_tokens when smaller)
    summarize_at: float = 0.8  # summarize when the history fills this much of the window
    provider: str | None = None  # price table to use (genai-prices provider id), e.g. openai
    # Generation parameters (chatrepl/parameters.py); /set changes them per session.
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    log: bool = False  # one JSON line per API request in the data directory's requests.jsonl
    log_bodies: bool = False  # ... with the messages sent and the reply

    @property
    def uses_azure(self) -> bool:
        """Whether the Azure OpenAI variables select the AzureOpenAI client."""
        return bool(self.azure_endpoint)

    @property
    def has_tools(self) -> bool:
        """Whether tools beyond the built-ins are configured (tools are then on at start)."""
        return bool(self.functions or self.mcp or self.tools)

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
    timeout: float | None = None
    debug: bool | None = None
    functions: tuple[str, ...] | None = None
    tools: tuple[str, ...] | None = None
    tools_auto: bool | None = None
    log: bool | None = None
    base_url: str | None = None
    profile: str | None = None
    role: str | None = None


# Environment variable -> settings field.
ENVIRONMENT = {
    "CHATREPL_BACKEND": "backend",
    "CHATREPL_MODEL": "model",
    "CHATREPL_COMPLETION_MODEL": "completion_model",
    "CHATREPL_SYSTEM": "system",
    "CHATREPL_MAX_TOKENS": "max_tokens",
    "CHATREPL_CHAT_MAX_TOKENS": "chat_max_tokens",
    "CHATREPL_MAX_RETRIES": "max_retries",
    "CHATREPL_MAX_INPUT_BYTES": "max_input_bytes",
    "CHATREPL_TIMEOUT": "timeout",
    "CHATREPL_CONNECT_TIMEOUT": "connect_timeout",
    "CHATREPL_MODEL_PATH": "model_path",
    "CHATREPL_PROFILE": "profile",
    "OPENAI_API_KEY": "api_key",
    "OPENAI_BASE_URL": "base_url",
    "AZURE_OPENAI_ENDPOINT": "azure_endpoint",
    "AZURE_OPENAI_API_KEY": "azure_api_key",
    "OPENAI_API_VERSION": "api_version",
}
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
SECRET_SETTINGS = ("api_key", "azure_api_key")  # never shown, never written
DURATIONS = ("timeout", "connect_timeout")  # seconds, finite and above zero
# Generation parameters, validated like /set's.
GENERATION = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")
LENGTHS = ("max_tokens", "chat_max_tokens", "context_window", "reply_reserve", "tool_steps")


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


def request_log_path() -> Path:
    """The request log (written only with `--log` or `log = true`)."""
    return data_dir() / "requests.jsonl"


def search_index_path() -> Path:
    """The full-text index of the sessions' messages (derived from them; rebuilt when missing)."""
    return data_dir() / "search.sqlite3"


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
    given = {k: v for k, v in given.items() if v is not None}
    values.update(_preset_values({**values, **given}, environ))  # a profile, then a role
    values.update(given)
    settings = replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
    for name in SECRET_SETTINGS:
        hide(getattr(settings, name))  # masked in every error message from now on
        _check_key(name, getattr(settings, name))
    return settings


def _preset_values(values: Mapping[str, Any], environ: Mapping[str, str] | None) -> dict[str, Any]:
    """What the chosen profile and role set: above the config file and environment, below
    flags."""
    if not any(values.get(key) for key in ("profiles", "roles", "profile", "role")):
        return {}  # the usual case: nothing to check, and no need to import roles at start-up
    from chatrepl.profiles import check_profile, profile_settings
    from chatrepl.roles import all_roles, find_role

    preset: dict[str, Any] = {}
    profiles, roles = values.get("profiles") or {}, values.get("roles") or {}
    for name, table in _table("profiles", profiles).items():
        check_profile(name, table)
    all_roles(_table("roles", roles))  # every one checked, used or not
    if values.get("profile"):
        environ = os.environ if environ is None else environ
        preset.update(profile_settings(values["profile"], profiles, environ))
    if values.get("role"):
        role = find_role(values["role"], roles)
        preset.update(
            {"chat_max_tokens" if k == "max_tokens" else k: v for k, v in role.values.items()}
        )
    return preset


def _table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"setting {name} must be a table")
    return value


def switch_profile(settings: Settings, name: str) -> Settings:
    """The settings with another endpoint profile in effect (`/profile NAME`)."""
    values = _preset_values({"profile": name, "profiles": settings.profiles}, None)
    switched = replace(settings, profile=name, **{k: _coerce(k, v) for k, v in values.items()})
    hide(switched.api_key)
    _check_key("api_key", switched.api_key)
    return switched


def _check_key(name: str, key: str | None) -> None:
    """A key goes into an HTTP header: a stray space, line break or accent cannot be sent."""
    bad = next((i for i, c in enumerate(key or "") if not "!" <= c <= "~"), None)
    if bad is not None:
        variable = next(env for env, target in ENVIRONMENT.items() if target == name)
        raise ConfigError(
            f"{variable} ({name}) has a character no request can carry, at position {bad + 1} "
            f"of {len(key or '')}: a space, a line break or a non-ASCII letter?"
        )


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import tomllib  # only when there is a file to read

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
    if name in GENERATION and value is not None:
        return _parameter(name, value)
    if name in LENGTHS and value is not None:
        return _length(name, value)
    if name in CHOICES:
        return _check_choice(name, value)
    if name == "code_theme":
        return _code_theme(value)
    if kind.startswith("tuple"):
        return _strings(name, value)
    if kind.startswith("Mapping"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"setting {name} must be a table")
        return dict(value)
    try:
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return _seconds(name, float(value)) if name in DURATIONS else float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    except (TypeError, ValueError) as error:
        raise ConfigError(f"setting {name} must be a number, not {value!r}") from error
    return value if value is None else str(value)


CHOICES = {
    "editing_mode": ("emacs", "vi"),
    "context": ("summarize", "trim", "off"),
}


def _check_choice(name: str, value: Any) -> Any:
    allowed = CHOICES.get(name)
    if allowed is not None and value not in allowed:
        raise ConfigError(f"setting {name} must be {' or '.join(allowed)}, not {value!r}")
    return value


def _code_theme(value: Any) -> str:
    """A Pygments style name (checked only when one is configured)."""
    from pygments.styles import get_all_styles

    if str(value) not in set(get_all_styles()):
        raise ConfigError(
            f"unknown code_theme {value!r}: use a Pygments style such as monokai, "
            "github-dark, one-dark, solarized-light (python -m pygments -L styles lists them)"
        )
    return str(value)


def _length(name: str, value: Any) -> int:
    """A count of tokens or steps: a whole number of at least 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} must be a whole number, not {value!r}") from None
    if number < 1 or isinstance(value, bool):
        raise ConfigError(f"setting {name} must be at least 1, not {value!r}")
    return number


def _parameter(name: str, value: Any) -> Any:
    from chatrepl.parameters import parse

    try:
        return parse(name, value)
    except ValueError as error:
        raise ConfigError(f"setting {error}") from None


def _strings(name: str, value: Any) -> tuple[str, ...]:
    """A list of strings (a lone string is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"setting {name} must be a list of strings, not {value!r}")
    return tuple(items)


def _seconds(name: str, seconds: float) -> float:
    """A wait in seconds must be finite and above zero."""
    if not 0 < seconds < math.inf:
        raise ConfigError(f"setting {name} must be a number of seconds above 0, not {seconds:g}")
    return seconds
