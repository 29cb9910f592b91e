"""Builds what the commands need from the settings: store, backend, conversation, the REPL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatrepl.backends.base import Backend
from chatrepl.config import Overrides, Settings, history_path, load_settings, sessions_dir
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.store import SessionBusy, SessionStore
from chatrepl.errors import SessionError

if TYPE_CHECKING:
    from rich.console import Console

    from chatrepl.repl.loop import Repl
    from chatrepl.tools.toolbox import Toolbox


def open_repl(overrides: Overrides, resume: str | None, latest: bool) -> None:
    """Start the REPL on the terminal, new or on a resumed session."""
    build_repl(overrides, resume, latest, None).run()


def build_repl(
    overrides: Overrides,
    resume: str | None,
    latest: bool,
    console: Console | None,
    input: Any = None,
    output: Any = None,
) -> Repl:
    """The REPL with its state, on the given console (None: the terminal's, made when first
    printed to) and prompt input/output."""
    from chatrepl.repl.loop import Repl
    from chatrepl.repl.prompt import PromptReader
    from chatrepl.repl.state import ReplState

    settings = load_settings(overrides)
    store = session_store(keep_open=True)  # its sessions locked while open
    name = store.latest() if latest else resume
    if latest and name is None:
        raise SessionError("no saved session to continue yet")
    conversation = open_session(store, name, console, input, output) if name else None
    try:
        backend = backend_for(settings, conversation)
    except BaseException:
        store.close()
        raise
    conversation = conversation or new_conversation(settings, backend)
    apply_overrides(conversation, overrides)
    state = ReplState(conversation, store, settings, backend)
    repl = Repl(state, console, PromptReader(state, history_path(), input=input, output=output))
    state.make_toolbox = lambda: _toolbox(settings, repl)
    if settings.has_tools:
        state.tools()  # on from the start; else made at the first /tools
    return repl


def _toolbox(settings: Settings, repl: Repl) -> Toolbox:
    from chatrepl.tools.setup import build_toolbox

    return build_toolbox(settings, repl.notify_tool, repl.approve_tool)


def session_store(keep_open: bool = False) -> SessionStore:
    """The store of the data directory's sessions, keeping the search index up to date."""
    from chatrepl.config import search_index_path
    from chatrepl.conversation.search_index import SearchIndex

    return SessionStore(sessions_dir(), keep_open, SearchIndex(search_index_path()))


def open_session(
    store: SessionStore,
    name: str,
    console: Console | None,
    input: Any = None,
    output: Any = None,
) -> Conversation:
    """Open a saved session in this REPL. One open in another chatrepl is never opened twice
    (the last to save would overwrite the other's turns): a copy of it, a fork, is offered."""
    try:
        return store.load(name, defer_messages=True)  # parsed once the prompt is drawn
    except SessionBusy as busy:
        question = f"{busy}. Open a copy of it under a new name (a fork)? [Y/n] "
        if not confirm(question, input, output):
            raise SessionError(f"{busy}; not opened") from None
    fork = store.fork(name)
    from chatrepl.ui import views

    console = console or views.terminal_console()
    views.info(console, f"opened a fork of {name} as {fork.name}; {name} stays as it is")
    return fork


def confirm(question: str, input: Any = None, output: Any = None) -> bool:
    """A yes/no question on the terminal: Enter or y means yes; n, Ctrl-C or Ctrl-D no."""
    from prompt_toolkit import PromptSession

    try:
        answer = PromptSession(input=input, output=output).prompt(question)
    except (KeyboardInterrupt, EOFError):
        return False
    return answer.strip().lower() in ("", "y", "yes")


def new_conversation(settings: Settings, backend: Backend, name: str | None = None) -> Conversation:
    """A fresh conversation with the backend's models and the configured system prompt."""
    return Conversation(
        name=name,
        chat_model=backend.default_model("chat"),
        completion_model=backend.default_model("complete"),
        system=settings.system,
        backend=backend.name,
    )


def backend_for(settings: Settings, conversation: Conversation | None) -> Backend:
    """The backend for a new or resumed conversation (a setting beats the session's own)."""
    from chatrepl.backends.registry import build_backend

    backend = build_backend(settings, conversation.backend if conversation else None)
    if conversation is not None and backend.name != conversation.backend:
        # The session's models belong to its old backend: take the new one's defaults.
        conversation.backend = backend.name
        conversation.chat_model = backend.default_model("chat")
        conversation.completion_model = backend.default_model("complete")
    return backend


def apply_overrides(conversation: Conversation, overrides: Overrides) -> None:
    """Command-line model and system prompt win over a resumed session's."""
    if overrides.model:
        conversation.chat_model = overrides.model
    if overrides.completion_model:
        conversation.completion_model = overrides.completion_model
    if overrides.system:
        conversation.system = overrides.system
