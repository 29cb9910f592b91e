"""How many tokens the model's context window holds, and where that figure comes from."""

from __future__ import annotations

from dataclasses import dataclass

from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.context import prices
from chatrepl.conversation.conversation import Conversation


@dataclass(frozen=True)
class Window:
    """A context window: its size in tokens (None: unknown) and its source, for /context."""

    tokens: int | None
    source: str

    @property
    def known(self) -> bool:
        """Whether automatic fitting can work."""
        return self.tokens is not None


def context_window(
    settings: Settings, conversation: Conversation, backend: Backend, model: str | None = None
) -> Window:
    """The session's setting, the config's, the backend's (the embedded model's n_ctx), the
    model's published window (offline data), then what the server reports for it (one
    request, once per run: only for models the published data does not know)."""
    model = model or conversation.chat_model
    return set_window(settings, conversation, backend) or _looked_up(settings, backend, model)


def set_window(settings: Settings, conversation: Conversation, backend: Backend) -> Window | None:
    """The window when it is set, or the backend knows it: no lookup, no request."""
    if conversation.context_window:
        return Window(conversation.context_window, "this session's setting (/context window N)")
    if settings.context_window:
        return Window(settings.context_window, "context_window in the config")
    if backend.capabilities.context_window:
        return Window(backend.capabilities.context_window, f"the {backend.name} backend")
    return None


def _looked_up(settings: Settings, backend: Backend, model: str) -> Window:
    known = prices.known_context_window(model, settings.base_url, settings.provider)
    if known:
        return Window(known, f"{model}'s published window (genai-prices)")
    served = getattr(backend, "context_window_of", None)
    reported = served(model) if served is not None else None
    if reported:
        return Window(reported, f"the server's metadata for {model}")
    return Window(None, "unknown: set context_window in the config or /context window N")
