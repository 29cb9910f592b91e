"""A turn as one transaction: add the user message, stream the reply (and, later, run the tools
it asks for and continue), record everything; on failure leave the conversation as it was.

`take_turn` is the only place messages of a turn are added. `/retry` is a turn that replaces the
last exchange: the old reply stays until the new one has begun to arrive, and comes back if the
retry fails or is stopped before its first token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from chatrepl.backends.base import (
    Backend,
    CompletionRequest,
    DeltaStream,
    Finish,
    Request,
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
    Timing,
    ToolCall,
    Usage,
)
from chatrepl.engine.history import build_request, last_user_text, request_params
from chatrepl.errors import ChatReplError

DEFAULT_MAX_STEPS = 10


class NothingToRetry(ChatReplError):
    """There is no earlier user message to ask again."""


class Sink(Protocol):
    """Where streamed text goes (a renderer, a spinner in front of one, a test list)."""

    def feed(self, text: str) -> None: ...


class ContextFitter(Protocol):
    """Keeps requests inside the model's context window (see chatrepl/context/fitting.py)."""

    def make_room(self, pending: Sequence[Message], params: GenerationParams | None) -> None:
        """Before a turn: summarize old exchanges if needed (raises nothing it cannot explain)."""
        ...

    def fit(self, params: GenerationParams | None) -> AbstractSet[str]:
        """The ids of messages to leave out of this request. Raises ChatReplError."""
        ...

    def check_completion(self, prompt: str, params: GenerationParams | None) -> None:
        """Refuse a completion prompt larger than the window. Raises ChatReplError."""
        ...

    def estimate_usage(self, request: Request, reply: Message) -> Usage | None:
        """Usage counted locally, for a server that reported none."""
        ...

    def learn(self, request: Request, usage: Usage) -> None:
        """A server's reported usage, to calibrate later estimates."""
        ...


class ToolRunner(Protocol):
    """Runs the tools a reply asks for; the tool loop calls it between model steps."""

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """The tools offered to the model now (none: the request carries no tools)."""
        ...

    def run(self, call: ToolCall) -> str:
        """The tool's result as text (errors included, as text the model can read)."""
        ...

    def end_of_reply(self) -> bool:
        """After a reply's calls have run: True stops the loop (e.g. the user declined one)."""
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
    context: ContextFitter | None = None  # fits chat requests into the window
    # Told of every request when it ends: (request, reply or None, error or None, "reply").
    observe: Callable[[Request, Message | None, str | None, str], None] | None = None

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
        user = self._user_message(turn)
        if self.context is not None and turn.mode == "chat" and replace_from is None:
            params = request_params(conversation, "chat", self.settings, turn.params)
            self.context.make_room([user], params)  # a summary is committed: kept on failure
            before, updated = list(conversation.messages), conversation.updated
        try:
            outcome.added.append(conversation.add(user))
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

    def retry(self, sink: Sink, model: str | None = None, text: str | None = None) -> TurnOutcome:
        """Ask the last user message again (or `text` in its place), in the mode it was made in."""
        index = self.conversation.last_user_index()
        if index is None:
            raise NothingToRetry("nothing to retry: no message has been sent yet")
        user = self.conversation.messages[index]
        turn = Turn(text or user.content, user.mode, tuple(user.attachments), user.params, model)
        return self.take(turn, sink, replace_from=index)

    def extend(self, sink: Sink) -> TurnOutcome:
        """Continue the last reply (cut off at the length limit, or interrupted): completion
        mode sends the prompt with the text so far; chat mode asks the model to go on. The new
        text is joined to the same message; a failure before any of it changes nothing."""
        conversation = self.conversation
        reply = conversation.messages[-1] if conversation.messages else None
        if reply is None or reply.role != "assistant":
            raise NothingToRetry("nothing to continue: the last message is not a reply")
        request = self._continuation(reply)
        more = Message("assistant", "", mode=reply.mode, model=request.model)
        outcome = TurnOutcome()
        deltas = self.backend.stream(request)
        try:
            _collect(deltas, more, sink, on_first=lambda: outcome.added.append(reply))
        except (ChatReplError, KeyboardInterrupt) as stop:
            if not outcome.started:
                raise
            outcome.interrupted = True
            outcome.error = stop if isinstance(stop, ChatReplError) else None
        finally:
            deltas.close()
        _join(reply, more, outcome.interrupted)
        conversation.touch()
        return outcome

    def _continuation(self, reply: Message) -> Request:
        user_index = self.conversation.last_user_index()
        turn_params = (
            self.conversation.messages[user_index].params if user_index is not None else None
        )
        request = build_request(
            self.conversation, reply.mode, self.settings, reply.model, turn_params
        )
        if isinstance(request, CompletionRequest):
            return replace(request, prompt=request.prompt + reply.content)
        return replace(request, messages=(*request.messages, Message("user", CONTINUE)))

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
        for step in range(self.max_steps):
            # A forced tool_choice holds for the first request only: repeated, it would make
            # the model call tools until the step limit.
            reply = self._stream_reply(turn, sink, outcome, first=step == 0)
            if not reply.tool_calls or self.tools is None:
                return
            for call in reply.tool_calls:
                outcome.added.append(self.conversation.add(self._tool_result(turn, call)))
            if self.tools.end_of_reply():
                return
        outcome.step_limit_reached = True

    def _stream_reply(self, turn: Turn, sink: Sink, outcome: TurnOutcome, first: bool) -> Message:
        request = self._request(turn, first)
        reply = Message(
            "assistant", "", mode=turn.mode, model=request.model, backend=self.backend.name
        )
        started = time.perf_counter()
        first_token: list[float] = []

        def record() -> None:
            first_token.append(time.perf_counter() - started)
            outcome.added.append(self.conversation.add(reply))

        try:
            self._receive(request, reply, sink, outcome, record)
        except BaseException as failure:
            reply.timing = Timing(first_token[0] if first_token else None, _since(started))
            self._observe(request, reply if first_token else None, failure)
            raise
        reply.timing = Timing(first_token[0] if first_token else None, _since(started))
        if reply not in outcome.added:  # a finished reply with no text: recorded as it is
            record()
        if self.context is not None and reply.usage is not None:
            self.context.learn(request, reply.usage)
        elif self.context is not None:
            reply.usage = self.context.estimate_usage(request, reply)
            reply.estimated = reply.usage is not None
        self._observe(request, reply, None)
        return reply

    def _receive(
        self,
        request: Request,
        reply: Message,
        sink: Sink,
        outcome: TurnOutcome,
        record: Callable[[], None],
    ) -> None:
        """Fill `reply`, streamed or whole."""
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

    def _observe(
        self, request: Request, reply: Message | None, failure: BaseException | None
    ) -> None:
        if self.observe is None:
            return
        error = None
        if failure is not None:
            error = "interrupted" if isinstance(failure, KeyboardInterrupt) else str(failure)
        self.observe(request, reply, error, "reply")

    def _request(self, turn: Turn, first: bool) -> Request:
        """The next request of the turn, fitted into the context window."""
        conversation = self.conversation
        tools = self.tools.tools if self.tools is not None and turn.mode == "chat" else ()
        choice = self.settings.tool_choice if first else None
        omit: AbstractSet[str] = frozenset()
        if self.context is not None:
            params = request_params(conversation, turn.mode, self.settings, turn.params)
            if turn.mode == "chat":
                omit = self.context.fit(params)
            else:
                self.context.check_completion(last_user_text(conversation), params)
        return build_request(
            conversation, turn.mode, self.settings, turn.model, turn.params, tools, choice, omit
        )

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


CONTINUE = (
    "Continue your last reply exactly where it stopped, without repeating anything and "
    "without any preamble."
)


def _join(reply: Message, more: Message, interrupted: bool) -> None:
    """Put the continuation's text and ending into the reply it continues."""
    reply.content += more.content
    reply.finish_reason = more.finish_reason
    reply.interrupted = interrupted
    if reply.usage is not None and more.usage is not None:
        reply.usage = Usage(
            reply.usage.prompt_tokens + more.usage.prompt_tokens,
            reply.usage.completion_tokens + more.usage.completion_tokens,
            reply.usage.total_tokens + more.usage.total_tokens,
        )


def _since(started: float) -> float:
    return time.perf_counter() - started


def _merge_tool_call(calls: dict[int, ToolCall], delta: ToolCallDelta) -> None:
    """Tool calls stream in pieces: the first piece of an index has its id and name."""
    call = calls.get(delta.index)
    if call is None:
        call = calls[delta.index] = ToolCall(delta.id or f"call_{delta.index}", "", "")
    if delta.name and not call.name:
        call.name = delta.name
    call.arguments += delta.arguments
