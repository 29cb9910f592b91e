"""Builds what each command needs from the settings: store, backend, conversation, console."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from chatrepl.backends.base import Backend
from chatrepl.config import Settings, history_path, load_settings, sessions_dir
from chatrepl.conversation import MODES, Conversation
from chatrepl.errors import CommandError, SessionError
from chatrepl.sessions import SessionStore

if TYPE_CHECKING:
    from rich.console import Console

    from chatrepl.app import Repl

SECRET_FIELDS = ("api_key", "azure_api_key")


@dataclass(frozen=True)
class AskRequest:
    """Everything `chatrepl ask` was given."""

    words: list[str]
    piped: str | None = None
    mode: str = "chat"
    model: str | None = None
    system: str | None = None
    suffix: str | None = None
    stream: bool = True
    json_output: bool = False
    json_mode: bool = False
    session: str | None = None
    max_tokens: int | None = None
    flags: dict[str, Any] = field(default_factory=dict)


def open_repl(flags: dict[str, Any], resume: str | None, latest: bool) -> None:
    """Start the REPL on the terminal, new or on a resumed session."""
    from rich.console import Console

    build_repl(flags, resume, latest, Console(highlight=False)).run()


def build_repl(
    flags: dict[str, Any],
    resume: str | None,
    latest: bool,
    console: Console,
    input: Any = None,
    output: Any = None,
) -> Repl:
    """The REPL with its state, on the given console and prompt input/output."""
    from chatrepl.app import Repl
    from chatrepl.prompt import PromptReader
    from chatrepl.state import ReplState

    settings = load_settings(flags)
    store = SessionStore(sessions_dir())
    name = store.latest() if latest else resume
    if latest and name is None:
        raise SessionError("no saved session to continue yet")
    conversation = store.load(name) if name else None
    backend = _backend_for(settings, conversation, flags)
    conversation = _apply_flags(conversation or new_conversation(settings, backend), flags)
    state = ReplState(conversation, store, settings, backend)
    return Repl(state, console, PromptReader(state, history_path(), input=input, output=output))


def run_ask_command(request: AskRequest) -> bool:
    """`chatrepl ask`; True when the person interrupted the reply."""
    from rich.console import Console

    from chatrepl.ask import AskOptions, compose_prompt, run_ask

    prompt = compose_prompt(request.words, request.piped)
    if not prompt:
        raise CommandError("nothing to ask: give a prompt or pipe text into chatrepl ask")
    if request.mode not in MODES:
        raise CommandError(f"unknown mode {request.mode!r}: use chat or complete")
    flags = {
        **request.flags,
        "max_tokens": request.max_tokens if request.mode == "complete" else None,
        "chat_max_tokens": request.max_tokens if request.mode == "chat" else None,
    }
    settings = load_settings(flags)
    store = SessionStore(sessions_dir()) if request.session else None
    conversation = _ask_conversation(store, request.session)
    backend = _backend_for(settings, conversation, flags)
    conversation = conversation or new_conversation(settings, backend, name=request.session)
    _apply_ask_options(conversation, request, backend)
    out = Console(highlight=False)
    plain = not out.is_terminal or bool(os.environ.get("NO_COLOR"))
    options = AskOptions(prompt, request.stream, request.json_output, markdown=not plain)
    run_ask(options, conversation, settings, backend, out, Console(stderr=True), store)
    return conversation.messages[-1].interrupted


def new_conversation(settings: Settings, backend: Backend, name: str | None = None) -> Conversation:
    """A fresh conversation with the configured models and system prompt."""
    chat_model, completion_model = settings.model, settings.completion_model
    if backend.name == "local":
        chat_model = completion_model = backend.list_models()[0]
    return Conversation(
        name=name,
        chat_model=chat_model,
        completion_model=completion_model,
        system=settings.system,
        backend=backend.name,
    )


def _backend_for(settings: Settings, conversation: Conversation | None, flags: dict) -> Backend:
    from chatrepl.backends.factory import build_backend

    session_backend = conversation.backend if conversation else None
    backend = build_backend(settings, None if flags.get("backend") else session_backend)
    if conversation is not None and backend.name != conversation.backend:
        # The session's models belong to its old backend: take the new one's defaults.
        fresh = new_conversation(settings, backend)
        conversation.backend = backend.name
        conversation.chat_model = fresh.chat_model
        conversation.completion_model = fresh.completion_model
    return backend


def _apply_flags(conversation: Conversation, flags: dict[str, Any]) -> Conversation:
    if flags.get("model"):
        conversation.chat_model = flags["model"]
    if flags.get("system"):
        conversation.system = flags["system"]
    return conversation


def _ask_conversation(store: SessionStore | None, name: str | None) -> Conversation | None:
    if store is None or name is None or not store.exists(name):
        return None
    return store.load(name)


def _apply_ask_options(conversation: Conversation, request: AskRequest, backend: Backend) -> None:
    conversation.mode = request.mode  # type: ignore[assignment]
    if request.model:
        conversation.set_model(request.model)
    if request.system:
        conversation.system = request.system
    if request.suffix is not None:
        if request.suffix and not backend.supports_suffix:
            raise CommandError(f"the {backend.name} backend's model does not support insertion")
        conversation.suffix = request.suffix or None
    conversation.json_mode = request.json_mode


def list_sessions() -> None:
    """`chatrepl sessions list`."""
    store = SessionStore(sessions_dir())
    for info in store.list():
        print(f"{info.name}\t{info.updated}\t{info.summary}")


def show_session(name: str) -> None:
    """`chatrepl sessions show NAME`."""
    from rich.console import Console

    from chatrepl import view

    view.transcript(Console(highlight=False), SessionStore(sessions_dir()).load(name).messages)


def delete_session(name: str) -> None:
    """`chatrepl sessions delete NAME`."""
    SessionStore(sessions_dir()).delete(name)
    print(f"deleted {name}")


def rename_session(old: str, new: str) -> None:
    """`chatrepl sessions rename OLD NEW`."""
    SessionStore(sessions_dir()).rename(old, new)
    print(f"renamed {old} to {new}")


def show_config() -> None:
    """`chatrepl config show`: every setting and its value, secrets masked."""
    settings = load_settings()
    for item in fields(Settings):
        value = getattr(settings, item.name)
        if item.name in SECRET_FIELDS and value:
            value = "(set)"
        print(f"{item.name} = {value!r}")
