"""The conversation as pure data: messages, per-session settings, and what gets sent to the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatrepl.backends.base import Mode

FORMAT_VERSION = 1
MODES: tuple[Mode, ...] = ("chat", "complete")


def now() -> str:
    """The current time as an ISO 8601 string in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Message:
    """One message; completion-mode turns are stored too but never sent as chat history."""

    role: str
    content: str
    mode: Mode = "chat"
    model: str | None = None
    backend: str | None = None
    time: str = field(default_factory=now)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; unset optional fields are left out."""
        return {k: v for k, v in vars(self).items() if v is not None and v is not False}


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
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    messages: list[Message] = field(default_factory=list)

    @property
    def model(self) -> str:
        """The model of the current mode."""
        return self.chat_model if self.mode == "chat" else self.completion_model

    def set_model(self, name: str) -> None:
        """Set the model of the current mode."""
        if self.mode == "chat":
            self.chat_model = name
        else:
            self.completion_model = name

    def add(self, message: Message) -> Message:
        """Append a message and mark the conversation updated."""
        self.messages.append(message)
        self.updated = now()
        return message

    def chat_messages(self) -> list[dict[str, str]]:
        """The history sent to Chat Completions: system prompt, then chat-mode turns only."""
        sent = [{"role": "system", "content": self.system}] if self.system else []
        sent += [
            {"role": m.role, "content": m.content}
            for m in self.messages
            if m.mode == "chat" and m.role in ("user", "assistant") and m.content
        ]
        return sent

    def first_user_text(self) -> str:
        """The first thing the user said, used to name an unnamed session."""
        return next((m.content for m in self.messages if m.role == "user"), "")

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form saved on disk."""
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "updated": self.updated,
            "mode": self.mode,
            "chat_model": self.chat_model,
            "completion_model": self.completion_model,
            "system": self.system,
            "suffix": self.suffix,
            "backend": self.backend,
            "json_mode": self.json_mode,
            "messages": [m.to_dict() for m in self.messages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} chatrepl session")
        if data.get("mode", "chat") not in MODES:
            raise ValueError(f"unknown mode {data.get('mode')!r}")
        messages = data.get("messages", [])
        if not isinstance(messages, list):
            raise ValueError("messages must be a list")
        return cls(
            name=data.get("name"),
            mode=data.get("mode", "chat"),
            chat_model=data.get("chat_model", ""),
            completion_model=data.get("completion_model", ""),
            system=data.get("system"),
            suffix=data.get("suffix"),
            backend=data.get("backend"),
            json_mode=bool(data.get("json_mode", False)),
            created=data.get("created") or now(),
            updated=data.get("updated") or now(),
            messages=[_message_from_dict(m) for m in messages],
        )


def _message_from_dict(data: Any) -> Message:
    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
        raise ValueError("a message needs a role and a text content")
    if data.get("role") not in ("user", "assistant", "system"):
        raise ValueError(f"unknown message role {data.get('role')!r}")
    known = Message.__dataclass_fields__
    return Message(**{k: v for k, v in data.items() if k in known})
