"""A conversation: its per-session settings and its messages, as pure data.

What is sent to a model is built from it by `chatrepl.engine.history`; how it is saved is
`chatrepl.conversation.session_format`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chatrepl.conversation.messages import GenerationParams, Message, Mode, now


@dataclass
class Conversation:
    """A session: its settings and its messages."""

    name: str | None = None
    mode: Mode = "chat"
    chat_model: str = ""
    completion_model: str = ""
    system: str | None = None
    suffix: str | None = None
    backend: str | None = None
    json_mode: bool = False
    params: GenerationParams = field(default_factory=GenerationParams)
    context_policy: str | None = None  # summarize, trim or off; None: the config's
    context_window: int | None = None  # tokens; None: the config's or the model's
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    messages: list[Message] = field(default_factory=list)  # a property: see _read_messages
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def defer_messages(self, pending: PendingMessages) -> None:
        """Messages to be parsed when first read (a resumed session's, after its prompt)."""
        self.__dict__["_pending"] = pending

    @property
    def message_count(self) -> int:
        """How many messages, without waiting for deferred ones to be parsed."""
        pending = self.__dict__.get("_pending")
        return pending.count if pending is not None else len(self.messages)

    def load_messages(self) -> list[Message]:
        """The messages, deferred ones parsed now (SessionError if they cannot be)."""
        return self.messages

    @property
    def messages_ready(self) -> bool:
        """Whether reading `messages` would not wait (nothing deferred, or parsed by now)."""
        pending = self.__dict__.get("_pending")
        return pending is None or pending.ready

    @property
    def model(self) -> str:
        """The model of the current mode."""
        return self.model_for(self.mode)

    def model_for(self, mode: Mode) -> str:
        """The model used for turns in `mode`."""
        return self.chat_model if mode == "chat" else self.completion_model

    def set_model(self, name: str) -> None:
        """Set the model of the current mode."""
        if self.mode == "chat":
            self.chat_model = name
        else:
            self.completion_model = name

    def add(self, message: Message) -> Message:
        """Append a message and mark the conversation updated."""
        self.messages.append(message)
        self.touch()
        return message

    def touch(self) -> None:
        """Mark the conversation changed now."""
        self.updated = now()

    def first_user_text(self) -> str:
        """The first thing the user said, used to name an unnamed session."""
        return next((m.content for m in self.messages if m.role == "user"), "")

    def last_user_index(self) -> int | None:
        """Where the last user message is: the start of the last exchange."""
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].role == "user":
                return index
        return None

    def by_id(self, message_id: str) -> Message | None:
        """The message with that id, if any."""
        return next((m for m in self.messages if m.id == message_id), None)


class PendingMessages(Protocol):
    """Messages parsed once, when first asked for, by whichever thread asks first."""

    count: int  # known before they are parsed

    @property
    def ready(self) -> bool:
        """Parsed (or failed) by now."""

    def result(self) -> list[Message]:
        """The messages, parsed now if they are not yet; a SessionError if they cannot be."""


# `messages` is a property over the dataclass field, so that no code can see a resumed session
# without its deferred messages (and save it so): reading them waits for the parse.
def _read_messages(conversation: Conversation) -> list[Message]:
    state = conversation.__dict__
    pending = state.get("_pending")
    if pending is not None:
        messages = pending.result()
        if state.get("_pending") is pending:  # not replaced while it was parsed
            state["_messages"], state["_pending"] = messages, None
    return state["_messages"]


def _write_messages(conversation: Conversation, messages: list[Message]) -> None:
    conversation.__dict__["_pending"] = None
    conversation.__dict__["_messages"] = messages


Conversation.messages = property(_read_messages, _write_messages)  # type: ignore[assignment]
