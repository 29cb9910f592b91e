"""What every backend offers: requests in, typed deltas out. Backends never print."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Mode = Literal["chat", "complete"]


@dataclass(frozen=True)
class ChatRequest:
    """A Chat Completions request: the whole history, led by the system prompt."""

    model: str
    messages: list[dict[str, str]]
    json_mode: bool = False
    max_tokens: int | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """A legacy Completions request: one free-form prompt, optional insertion suffix."""

    model: str
    prompt: str
    max_tokens: int
    suffix: str | None = None


Request = ChatRequest | CompletionRequest


@dataclass(frozen=True)
class TextDelta:
    """A piece of the reply's text."""

    text: str


@dataclass(frozen=True)
class Usage:
    """Token counts, when the server reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def as_dict(self) -> dict[str, int]:
        """The counts as stored in a session."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Finish:
    """Why the model stopped: "stop", "length", "content_filter", ..."""

    reason: str | None


Delta = TextDelta | Usage | Finish


@dataclass
class Reply:
    """A whole (non-streamed) reply; `raw` is the API response as JSON-ready data."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A source of model replies. Streams are generators: closing one closes the connection."""

    name: str
    supports_suffix: bool

    def describe(self) -> str:
        """Where replies come from: a base URL or a model file path."""
        ...

    def prepare(self) -> None:
        """Start any slow set-up (imports, client, model load) in the background."""
        ...

    def stream(self, request: Request) -> Iterator[Delta]:
        """Yield the reply as it is generated. Raises BackendError."""
        ...

    def respond(self, request: Request) -> Reply:
        """Return the whole reply at once. Raises BackendError."""
        ...

    def list_models(self) -> list[str]:
        """Model names the backend offers. Raises BackendError."""
        ...
