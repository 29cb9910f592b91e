"""What the REPL's commands act on: the conversation, the store, the backend and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.conversation import Conversation
from chatrepl.sessions import SessionStore


@dataclass
class ReplState:
    """Mutable state of one REPL run."""

    conversation: Conversation
    store: SessionStore
    settings: Settings
    backend: Backend
    model_cache: list[str] | None = field(default=None, repr=False)

    def models(self) -> list[str]:
        """The backend's models, fetched once per run and cached."""
        if self.model_cache is None:
            self.model_cache = self.backend.list_models()
        return self.model_cache

    def save(self) -> None:
        """Autosave the conversation once it has messages (or a file that must stay current)."""
        if self.conversation.messages or self.conversation.name:
            self.store.save(self.conversation)

    def new_conversation(self) -> Conversation:
        """A fresh conversation with the current one's mode, models and prompts."""
        old = self.conversation
        self.conversation = Conversation(
            mode=old.mode,
            chat_model=old.chat_model,
            completion_model=old.completion_model,
            system=old.system,
            suffix=old.suffix,
            backend=old.backend,
            json_mode=old.json_mode,
        )
        return self.conversation
