"""An in-memory backend that plays replies written as data: the test seam without HTTP.

Each request takes the next `Step` of the script: text chunks, tool calls, usage, a finish
reason, a delay before the first chunk, a failure before or after some chunks, or a Ctrl-C.
Every request is recorded, so a test can check exactly what the engine asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chatrepl.backends.base import (
    Capabilities,
    ChatRequest,
    Delta,
    Finish,
    Notice,
    Reply,
    Request,
    TextDelta,
    ToolCallDelta,
    ignore_notice,
)
from chatrepl.conversation.messages import Mode, ToolCall, Usage
from chatrepl.errors import BackendError


@dataclass(frozen=True)
class Step:
    """One scripted reply."""

    chunks: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None  # default: "tool_calls" with calls, else "stop"
    usage: Usage | None = None
    delay: float = 0.0  # seconds before the first chunk
    fail: str | None = None  # a BackendError with this message ...
    fail_after: int = 0  # ... after this many chunks
    interrupt_after: int | None = None  # a KeyboardInterrupt after this many chunks

    @classmethod
    def text(cls, text: str, **options: object) -> Step:
        """A reply of `text`, streamed word by word."""
        words = tuple(word for word in text.split(" "))
        chunks = tuple(w if i == len(words) - 1 else w + " " for i, w in enumerate(words))
        return cls(chunks=chunks, **options)  # type: ignore[arg-type]

    @classmethod
    def error(cls, message: str) -> Step:
        """A request that fails at once."""
        return cls(fail=message)


@dataclass
class ScriptedBackend:
    """Replies from a list of steps; runs out with a BackendError."""

    steps: list[Step] = field(default_factory=list)
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(
            suffix=True, tools=True, images=True, streaming_usage=True
        )
    )
    models: tuple[str, ...] = ("scripted-chat", "scripted-complete")
    name: str = "scripted"
    requests: list[Request] = field(default_factory=list)
    # Answers requests once the steps run out (e.g. summaries one way, replies another).
    answer: Callable[[Request], Step] | None = None
    on_notice: Notice = field(default=ignore_notice, repr=False)

    def describe(self) -> str:
        """Where replies come from."""
        return "a script"

    def default_model(self, mode: Mode) -> str:
        """The first model for chat, the second for completion."""
        return self.models[0] if mode == "chat" else self.models[-1]

    def prepare(self) -> None:
        """Nothing to set up."""

    def list_models(self) -> list[str]:
        """The scripted model names."""
        return list(self.models)

    def then(self, *steps: Step | str) -> ScriptedBackend:
        """Add steps (a string is a text reply); returns self for chaining."""
        self.steps.extend(Step.text(s) if isinstance(s, str) else s for s in steps)
        return self

    def stream(self, request: Request) -> Iterator[Delta]:
        """Play the next step as a stream."""
        step = self._next(request)
        return self._play(step)

    def respond(self, request: Request) -> Reply:
        """Play the next step as one reply."""
        step = self._next(request)
        if step.fail:
            raise BackendError(step.fail)
        return Reply("".join(step.chunks), _finish(step), step.usage, {"scripted": True})

    def _next(self, request: Request) -> Step:
        self.requests.append(request)
        if self.steps:
            return self.steps.pop(0)
        if self.answer is not None:
            return self.answer(request)
        raise BackendError("the script has no more replies")

    def _play(self, step: Step) -> Iterator[Delta]:
        if step.delay:
            time.sleep(step.delay)
        for count, chunk in enumerate(step.chunks):
            _maybe_stop(step, count)
            yield TextDelta(chunk)
        _maybe_stop(step, len(step.chunks))
        for index, call in enumerate(step.tool_calls):
            yield ToolCallDelta(index, call.id, call.name, call.arguments)
        yield Finish(_finish(step))
        if step.usage is not None:
            yield step.usage


def _maybe_stop(step: Step, count: int) -> None:
    if step.fail and count == step.fail_after:
        raise BackendError(step.fail)
    if step.interrupt_after == count:
        raise KeyboardInterrupt


def _finish(step: Step) -> str:
    return step.finish_reason or ("tool_calls" if step.tool_calls else "stop")


def chat_requests(backend: ScriptedBackend) -> list[ChatRequest]:
    """The chat requests the backend received, in order."""
    return [r for r in backend.requests if isinstance(r, ChatRequest)]
