"""What the REPL's commands act on: the conversation, the store, the backend and settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.store import SessionStore
from chatrepl.engine.turn import TurnRunner


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

    def runner(self, checkpoint: Callable[[], None] | None = None) -> TurnRunner:
        """Runs turns of the current conversation."""
        return TurnRunner(self.conversation, self.backend, self.settings, checkpoint=checkpoint)

    def save(self) -> None:
        """Autosave the conversation once it has messages; a session emptied by a failed first
        turn is not left behind on disk."""
        conversation = self.conversation
        if conversation.messages:
            self.store.save(conversation)
        elif conversation.name:
            self.store.discard_if_unused(conversation)

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
            params=old.params,
        )
        return self.conversation
