"""One turn: build the request for the current mode, stream the reply, record both messages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from chatrepl.backends.base import (
    Backend,
    ChatRequest,
    CompletionRequest,
    Delta,
    Finish,
    Reply,
    Request,
    TextDelta,
    Usage,
)
from chatrepl.config import Settings
from chatrepl.conversation import Conversation, Message
from chatrepl.errors import BackendError


class Sink(Protocol):
    """Where streamed text goes (a renderer)."""

    def feed(self, text: str) -> None: ...


@dataclass
class TurnOutcome:
    """The recorded reply and whether the person interrupted it."""

    reply: Message
    interrupted: bool = False


def build_request(conversation: Conversation, settings: Settings) -> Request:
    """The request for the conversation's mode; the last message is the new user input."""
    if conversation.mode == "complete":
        return CompletionRequest(
            model=conversation.completion_model,
            prompt=conversation.messages[-1].content,
            max_tokens=settings.max_tokens,
            suffix=conversation.suffix,
        )
    return ChatRequest(
        model=conversation.chat_model,
        messages=conversation.chat_messages(),
        json_mode=conversation.json_mode,
        max_tokens=settings.chat_max_tokens,
    )


def add_user_message(conversation: Conversation, text: str, backend: Backend) -> Message:
    """Record what the person typed, in the conversation's mode."""
    return conversation.add(
        Message(
            "user", text, mode=conversation.mode, model=conversation.model, backend=backend.name
        )
    )


def stream_turn(
    conversation: Conversation, settings: Settings, backend: Backend, sink: Sink
) -> TurnOutcome:
    """Stream a reply to the last user message into sink and record it.

    On BackendError the user message is removed again and the error re-raised, so the
    conversation is as it was. Ctrl-C keeps the partial reply, marked interrupted.
    """
    user = conversation.messages[-1]
    reply = _reply_message(conversation, backend)
    deltas = backend.stream(build_request(conversation, settings))
    parts: list[str] = []
    interrupted = False
    try:
        _consume(deltas, reply, parts, sink)
    except KeyboardInterrupt:
        interrupted = True
    except BackendError:
        conversation.messages.remove(user)
        raise
    finally:
        deltas.close()  # type: ignore[attr-defined]
        reply.content = "".join(parts)
    reply.interrupted = interrupted
    conversation.add(reply)
    return TurnOutcome(reply, interrupted)


def respond_turn(conversation: Conversation, settings: Settings, backend: Backend) -> Reply:
    """Ask for the whole reply at once (no streaming) and record it."""
    user = conversation.messages[-1]
    try:
        answer = backend.respond(build_request(conversation, settings))
    except BackendError:
        conversation.messages.remove(user)
        raise
    reply = _reply_message(conversation, backend)
    reply.content, reply.finish_reason = answer.text, answer.finish_reason
    reply.usage = answer.usage.as_dict() if answer.usage else None
    conversation.add(reply)
    return answer


def _reply_message(conversation: Conversation, backend: Backend) -> Message:
    return Message(
        "assistant", "", mode=conversation.mode, model=conversation.model, backend=backend.name
    )


def _consume(deltas: Iterable[Delta], reply: Message, parts: list[str], sink: Sink) -> None:
    for delta in deltas:
        if isinstance(delta, TextDelta):
            parts.append(delta.text)
            sink.feed(delta.text)
        elif isinstance(delta, Finish):
            reply.finish_reason = delta.reason
        elif isinstance(delta, Usage):
            reply.usage = delta.as_dict()
