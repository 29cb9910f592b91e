"""A turn as one transaction: add the user message, stream the reply (and, later, run the tools
it asks for and continue), record everything; on failure leave the conversation as it was.

`take_turn` is the only place messages of a turn are added. `/retry` is a turn that replaces the
last exchange: the old reply stays until the new one has begun to arrive, and comes back if the
retry fails or is stopped before its first token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatrepl.backends.base import (
    Backend,
    DeltaStream,
    Finish,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import (
    Attachment,
    GenerationParams,
    Message,
    Mode,
    ToolCall,
    Usage,
)
from chatrepl.engine.history import build_request
from chatrepl.errors import ChatReplError

DEFAULT_MAX_STEPS = 10


class NothingToRetry(ChatReplError):
    """There is no earlier user message to ask again."""


class Sink(Protocol):
    """Where streamed text goes (a renderer, a spinner in front of one, a test list)."""

    def feed(self, text: str) -> None: ...


class ToolRunner(Protocol):
    """Runs the tools a reply asks for; the tool loop calls it between model steps."""

    tools: tuple[ToolSpec, ...]

    def run(self, call: ToolCall) -> str:
        """The tool's result as text (errors included, as text the model can read)."""
        ...


@dataclass(frozen=True)
class Turn:
    """What to send: the text, the mode it is made in, its attachments and parameters."""

    text: str
    mode: Mode
    attachments: tuple[Attachment, ...] = ()
    params: GenerationParams | None = None
    model: str | None = None  # another model for this turn only (else the mode's model)


@dataclass
class TurnOutcome:
    """What the turn added, and how it ended."""

    added: list[Message] = field(default_factory=list)
    interrupted: bool = False
    step_limit_reached: bool = False
    # A failure after the reply had begun: the partial reply is kept (marked interrupted).
    error: ChatReplError | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the API's response, when not streamed

    @property
    def reply(self) -> Message:
        """The last assistant message of the turn."""
        return next(m for m in reversed(self.added) if m.role == "assistant")

    @property
    def started(self) -> bool:
        """Whether anything of the reply arrived."""
        return any(m.role == "assistant" for m in self.added)


@dataclass
class TurnRunner:
    """Runs turns of one conversation against one backend."""

    conversation: Conversation
    backend: Backend
    settings: Settings
    tools: ToolRunner | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    # Called once the user message is recorded, before anything is sent (the REPL saves there).
    checkpoint: Callable[[], None] | None = None
    streaming: bool = True  # False: ask for the whole reply at once

    def take(self, turn: Turn, sink: Sink, replace_from: int | None = None) -> TurnOutcome:
        """Run one turn.

        A failure, or Ctrl-C, before the reply's first token undoes the turn (with `replace_from`,
        the replaced messages come back) and is raised. After it, the partial reply is kept,
        marked interrupted, and a failure is returned in `outcome.error`.
        """
        conversation = self.conversation
        before, updated = list(conversation.messages), conversation.updated
        if replace_from is not None:
            del conversation.messages[replace_from:]
        outcome = TurnOutcome()
        try:
            outcome.added.append(conversation.add(self._user_message(turn)))
            if replace_from is None and self.checkpoint is not None:
                self.checkpoint()
            self._steps(turn, sink, outcome)
        except (ChatReplError, KeyboardInterrupt) as stop:
            if not outcome.started:
                conversation.messages[:] = before
                conversation.updated = updated
                raise
            outcome.reply.interrupted = True
            outcome.interrupted = True
            outcome.error = stop if isinstance(stop, ChatReplError) else None
        return outcome

    def retry(self, sink: Sink, model: str | None = None) -> TurnOutcome:
        """Ask the last user message again, in the mode it was made in."""
        index = self.conversation.last_user_index()
        if index is None:
            raise NothingToRetry("nothing to retry: no message has been sent yet")
        user = self.conversation.messages[index]
        turn = Turn(user.content, user.mode, tuple(user.attachments), user.params, model)
        return self.take(turn, sink, replace_from=index)

    def _user_message(self, turn: Turn) -> Message:
        return Message(
            "user",
            turn.text,
            mode=turn.mode,
            model=turn.model or self.conversation.model_for(turn.mode),
            backend=self.backend.name,
            attachments=list(turn.attachments),
            params=turn.params,
        )

    def _steps(self, turn: Turn, sink: Sink, outcome: TurnOutcome) -> None:
        """Ask the model; while it asks for tools (and a runner is there), run them and go on."""
        for _step in range(self.max_steps):
            reply = self._stream_reply(turn, sink, outcome)
            if not reply.tool_calls or self.tools is None:
                return
            for call in reply.tool_calls:
                outcome.added.append(self.conversation.add(self._tool_result(turn, call)))
        outcome.step_limit_reached = True

    def _stream_reply(self, turn: Turn, sink: Sink, outcome: TurnOutcome) -> Message:
        tools = self.tools.tools if self.tools is not None and turn.mode == "chat" else ()
        request = build_request(
            self.conversation, turn.mode, self.settings, turn.model, turn.params, tools
        )
        reply = Message(
            "assistant", "", mode=turn.mode, model=request.model, backend=self.backend.name
        )

        def record() -> None:
            outcome.added.append(self.conversation.add(reply))

        if self.streaming:
            deltas = self.backend.stream(request)
            try:
                _collect(deltas, reply, sink, on_first=record)
            finally:
                deltas.close()
        else:
            answer = self.backend.respond(request)
            reply.content, reply.finish_reason = answer.text, answer.finish_reason
            reply.usage, outcome.raw = answer.usage, answer.raw
        if reply not in outcome.added:  # a finished reply with no text: recorded as it is
            record()
        return reply

    def _tool_result(self, turn: Turn, call: ToolCall) -> Message:
        assert self.tools is not None
        return Message(
            "tool",
            self.tools.run(call),
            mode=turn.mode,
            tool_call_id=call.id,
            name=call.name,
            backend=self.backend.name,
        )


def _collect(deltas: DeltaStream, reply: Message, sink: Sink, on_first: Callable[[], None]) -> None:
    """Fill `reply` from the stream; `on_first` runs when its first text or tool call arrives."""
    parts: list[str] = []
    calls: dict[int, ToolCall] = {}
    try:
        for delta in deltas:
            if isinstance(delta, TextDelta | ToolCallDelta) and not (parts or calls):
                on_first()
            if isinstance(delta, TextDelta):
                parts.append(delta.text)
                sink.feed(delta.text)
            elif isinstance(delta, ToolCallDelta):
                _merge_tool_call(calls, delta)
            elif isinstance(delta, Finish):
                reply.finish_reason = delta.reason
            elif isinstance(delta, Usage):
                reply.usage = delta
    finally:
        reply.content = "".join(parts)
        reply.tool_calls = list(calls.values())


def _merge_tool_call(calls: dict[int, ToolCall], delta: ToolCallDelta) -> None:
    """Tool calls stream in pieces: the first piece of an index has its id and name."""
    call = calls.get(delta.index)
    if call is None:
        call = calls[delta.index] = ToolCall(delta.id or f"call_{delta.index}", "", "")
    if delta.name and not call.name:
        call.name = delta.name
    call.arguments += delta.arguments
