"""What every backend offers: neutral requests in, typed deltas out. Backends never print."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatrepl.conversation.messages import GenerationParams, Message, Mode, Usage

__all__ = [
    "Backend",
    "Capabilities",
    "ChatRequest",
    "CompletionRequest",
    "Delta",
    "DeltaStream",
    "Finish",
    "Notice",
    "Reply",
    "Request",
    "TextDelta",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "ignore_notice",
]

# Told one line of news while a request waits (e.g. "rate limited; retrying in 2 s (1 of 2)").
Notice = Callable[[str], None]


def ignore_notice(text: str) -> None:
    """The default listener: backends report notices; whoever shows them sets `on_notice`."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments' JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ChatRequest:
    """A chat request: the history to send (already chosen), the system prompt and tools."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None  # "auto", "none", "required", or a tool's name
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True)
class CompletionRequest:
    """A legacy Completions request: one free-form prompt, optional insertion suffix."""

    model: str
    prompt: str
    suffix: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


Request = ChatRequest | CompletionRequest


@dataclass(frozen=True)
class TextDelta:
    """A piece of the reply's text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call: calls are told apart by `index`; arguments arrive in parts."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Finish:
    """Why the model stopped: "stop", "length", "tool_calls", "content_filter", ..."""

    reason: str | None


Delta = TextDelta | ToolCallDelta | Usage | Finish


class DeltaStream(Protocol):
    """A reply as it streams: iterate for deltas; `close()` stops it and frees the connection."""

    def __iter__(self) -> Iterator[Delta]: ...

    def __next__(self) -> Delta: ...

    def close(self) -> None: ...


@dataclass
class Reply:
    """A whole (non-streamed) reply; `raw` is the API response as JSON-ready data."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; code outside backends/ asks this, never a backend's name."""

    chat: bool = True
    completion: bool = True
    suffix: bool = False
    json_mode: bool = True
    tools: bool = False
    images: bool = False  # user messages may carry images (vision models)
    streaming_usage: bool = False  # usage arrives at the end of a stream
    token_counting: bool = False  # the backend can count tokens exactly, offline
    context_window: int | None = None  # tokens, when known
    embedded: bool = False  # runs on this machine (in or beside this process): no server, no key


class Backend(Protocol):
    """A source of model replies."""

    name: str
    capabilities: Capabilities
    on_notice: Notice  # set by the REPL or `ask` to show what a wait is about; never printed here

    def describe(self) -> str:
        """Where replies come from: a base URL, or "embedded" and a model file."""
        ...

    def default_model(self, mode: Mode) -> str:
        """The model a new conversation uses in `mode`."""
        ...

    def prepare(self) -> None:
        """Start any slow set-up (imports, client, model load) in the background."""
        ...

    def stream(self, request: Request) -> DeltaStream:
        """The reply as it is generated (a generator). Raises BackendError."""
        ...

    def respond(self, request: Request) -> Reply:
        """The whole reply at once. Raises BackendError."""
        ...

    def list_models(self) -> list[str]:
        """Model names the backend offers. Raises BackendError."""
        ...
