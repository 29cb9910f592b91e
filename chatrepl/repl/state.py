"""What the REPL's commands act on: the conversation, the store, the backend and settings."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatrepl.backends.base import Backend
from chatrepl.config import Settings, request_log_path
from chatrepl.context.meter import Meter, money
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Attachment
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import ErrorBoundary, SessionError

if TYPE_CHECKING:
    from chatrepl.context.fitting import ContextKeeper
    from chatrepl.context.request_log import RequestObserver
    from chatrepl.engine.turn import TurnRunner
    from chatrepl.tools.toolbox import Toolbox


@dataclass
class ReplState:
    """Mutable state of one REPL run."""

    conversation: Conversation
    store: SessionStore
    settings: Settings
    backend: Backend
    model_cache: list[str] | None = field(default=None, repr=False)
    toolbox: Toolbox | None = field(default=None, repr=False)  # made by tools() when needed
    make_toolbox: Callable[[], Toolbox] | None = field(default=None, repr=False)
    notify: Callable[[str], None] = field(default=print, repr=False)  # one dim line
    meter: Meter = field(init=False, repr=False)
    meter_text: str = ""  # the toolbar's context use and session cost, as of the last turn
    observer: RequestObserver | None = field(default=None, repr=False)  # the request log
    pending: list[Attachment] = field(default_factory=list)  # /file, /image: for the next message
    _keeper: ContextKeeper | None = field(default=None, repr=False)
    _background: list[threading.Thread] = field(default_factory=list, repr=False)
    _models: Future[list[str]] | None = field(default=None, repr=False)
    role: str | None = None  # the role chosen with -R or /role

    def __post_init__(self) -> None:
        self.role = self.role or self.settings.role
        self._watch_backend()

    def _watch_backend(self) -> None:
        self.meter = Meter(self.settings, free=self.backend.capabilities.embedded)
        self.observer = None
        if self.settings.log:
            from chatrepl.context.request_log import RequestLog, RequestObserver

            log = RequestLog(request_log_path(), bodies=self.settings.log_bodies)
            self.observer = RequestObserver(log, self.backend, self.meter.cost_of)

    def fetch_models_in_background(self) -> None:
        """Start fetching the backend's model list, once per run (and per backend)."""
        if self._models is not None:
            return
        future: Future[list[str]] = Future()
        self._models = future
        if self.model_cache is not None:
            future.set_result(self.model_cache)
            return
        threading.Thread(target=self._fetch_models, args=(future,), daemon=True).start()

    def _fetch_models(self, future: Future[list[str]]) -> None:
        try:
            names = self.backend.list_models()
        except BaseException as error:  # shown by /models; completion just offers nothing
            future.set_exception(error)
        else:
            self.model_cache = names
            future.set_result(names)

    def models(self) -> list[str]:
        """The backend's models, fetched once per run and cached (waits for the fetch; a
        failed fetch is tried again next time)."""
        self.fetch_models_in_background()
        future = self._models
        assert future is not None
        try:
            return future.result()
        except BaseException:
            self._models = None
            raise

    def model_completions(self) -> list[str]:
        """The models fetched so far, without waiting: none while the fetch is under way."""
        self.fetch_models_in_background()
        future = self._models
        if future is None or not future.done() or future.exception() is not None:
            return []
        return future.result()

    def switch_backend(self, settings: Settings, backend: Backend) -> None:
        """Go on with another backend (`/profile`): the conversation keeps its messages."""
        old, models = self.backend, (self.settings.model, self.settings.completion_model)
        backend.on_notice = old.on_notice
        self.settings, self.backend = settings, backend
        self.model_cache, self._models = None, None
        self._watch_backend()
        conversation = self.conversation
        changed = models != (settings.model, settings.completion_model)
        if changed or backend.name != conversation.backend:  # the old models are the old server's
            conversation.chat_model = backend.default_model("chat")
            conversation.completion_model = backend.default_model("complete")
        conversation.backend = backend.name
        close = getattr(old, "close", None)  # the embedded model's worker process
        if callable(close):
            close()
        backend.prepare()

    def tools(self) -> Toolbox | None:
        """The toolbox, made now if it was not yet (the first /tools, or tools configured)."""
        if self.toolbox is None and self.make_toolbox is not None:
            self.toolbox = self.make_toolbox()
        return self.toolbox

    def runner(self, checkpoint: Callable[[], None] | None = None) -> TurnRunner:
        """Runs turns of the current conversation."""
        from chatrepl.engine.turn import TurnRunner

        tools = self.toolbox if self.backend.capabilities.tools else None
        return TurnRunner(
            self.conversation,
            self.backend,
            self.settings,
            tools=tools,
            max_steps=self.settings.tool_steps,
            checkpoint=checkpoint,
            context=self.context(),
            observe=self.observer,
        )

    def context(self) -> ContextKeeper:
        """The context keeper of the current conversation (a new one after /new or /load);
        token counting is imported with the first one, not at start-up."""
        from chatrepl.context.fitting import ContextKeeper

        keeper = self._keeper
        if (
            keeper is None
            or keeper.conversation is not self.conversation
            or keeper.backend is not self.backend
        ):
            self._keeper = ContextKeeper(
                self.conversation, self.backend, self.settings, self.notify, observe=self.observer
            )
        return self._keeper

    def parse_in_background(self, parsed: Callable[[], None]) -> None:
        """Parse a resumed session's messages while the user types (`parsed` is called then,
        in that thread, also when they turn out corrupt: settle() raises that error)."""

        def parse() -> None:
            with contextlib.suppress(SessionError):
                self.conversation.load_messages()
            parsed()

        self._start_background(parse, "chatrepl-parse")

    def refresh_meter_in_background(self, done: Callable[[], None]) -> None:
        """Count a resumed (or loaded) session while the user types: the toolbar then shows its
        context use and cost (`done` redraws it), and the first turn finds every message
        counted. Nothing else touches the conversation until `settle()` has waited for it."""
        if not self.conversation.message_count:
            self.meter_text = ""  # a new conversation has used nothing yet
            return

        def count() -> None:
            with ErrorBoundary(lambda line: None):  # counting never stops the chat
                self.refresh_meter()
                done()

        self._start_background(count, "chatrepl-count")

    def _start_background(self, work: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=work, name=name, daemon=True)
        self._background.append(thread)
        thread.start()

    def settle(self) -> None:
        """Wait for the background parse and count, if under way (Ctrl-C stops the waiting, not
        them: the next call waits again). A resumed session whose messages turn out to be
        corrupt raises its SessionError here: nothing of it can be saved."""
        while self._background:
            self._background[0].join()
            self._background.pop(0)
        self.conversation.load_messages()

    def refresh_meter(self) -> None:
        """Recount what the toolbar shows: context used and the session's cost."""
        parts = []
        budget = self.context().budget()
        if budget.window.tokens:
            tilde = "" if budget.exact else "~"
            parts.append(f"context {tilde}{budget.used / budget.window.tokens:.0%}")
        total, complete = self.meter.session_cost(self.conversation)
        if total or (complete and any(m.usage for m in self.conversation.messages)):
            parts.append(money(total) + ("" if complete else "+"))
        self.meter_text = " · ".join(parts)

    def save(self) -> None:
        """Autosave the conversation once it has messages; a session emptied by a failed first
        turn is not left behind on disk."""
        conversation = self.conversation
        if conversation.messages:
            self.store.save(conversation)
        elif conversation.name:
            self.store.discard_if_unused(conversation)

    def open(self, name: str) -> Conversation:
        """Switch to a saved session: this one is saved first, that one locked (SessionBusy when
        another chatrepl has it open), then this one's lock let go."""
        self.save()
        previous = self.conversation.name
        self.conversation = self.store.load(name)
        if previous != self.conversation.name:
            self.store.release(previous)
        return self.conversation

    def new_conversation(self) -> Conversation:
        """A fresh conversation with the current one's mode, models and prompts; the current one
        is saved and its lock let go."""
        old = self.conversation
        self.save()
        self.store.release(old.name)
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

    def close(self) -> None:
        """Let go of every session this REPL holds (at exit)."""
        self.store.close()
