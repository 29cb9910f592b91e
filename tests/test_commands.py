"""Every slash-command handler, on the scripted backend and a temporary store (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatrepl.backends.base import Capabilities
from chatrepl.backends.scripted import ScriptedBackend
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import CommandError, SessionError
from chatrepl.repl import commands
from chatrepl.repl.state import ReplState


@pytest.fixture
def state(tmp_path: Path) -> ReplState:
    conversation = Conversation(chat_model="chat-m", completion_model="comp-m", backend="scripted")
    return ReplState(conversation, SessionStore(tmp_path / "s"), Settings(), ScriptedBackend())


def run(state: ReplState, line: str) -> commands.Result:
    return commands.dispatch(state, line)


def chat(state: ReplState, *texts: str) -> None:
    for index, text in enumerate(texts):
        state.conversation.add(Message("user" if index % 2 == 0 else "assistant", text))


def test_every_command_has_a_unit_test_here() -> None:
    source = Path(__file__).read_text()
    untested = [c.name for c in commands.COMMANDS if f'"/{c.name}' not in source]
    assert untested == []


def test_help_lists_every_command(state: ReplState) -> None:
    table = run(state, "/help").table
    assert table is not None
    listed = " ".join(row[0] for row in table.rows)
    assert all(f"/{c.name}" in listed for c in commands.COMMANDS)
    assert run(state, "/?").table == table


def test_modes(state: ReplState) -> None:
    assert run(state, "/complete").message == "complete mode, model comp-m"
    assert state.conversation.mode == "complete"
    assert run(state, "/chat").message == "chat mode, model chat-m"
    assert "chat" in (run(state, "/mode").message or "")
    run(state, "/mode complete")
    assert state.conversation.mode == "complete"
    with pytest.raises(CommandError, match="unknown mode"):
        run(state, "/mode dream")


def test_model_shows_and_sets_the_current_modes_model(state: ReplState) -> None:
    assert run(state, "/model").message == "chat model: chat-m"
    run(state, "/model other")
    run(state, "/complete")
    run(state, "/model comp-2")
    assert (state.conversation.chat_model, state.conversation.completion_model) == (
        "other",
        "comp-2",
    )


def test_models_lists_the_backends_models(state: ReplState) -> None:
    table = run(state, "/models").table
    assert table is not None and [row[0] for row in table.rows] == [
        "scripted-chat",
        "scripted-complete",
    ]


def test_backend_names_where_replies_come_from(state: ReplState) -> None:
    assert run(state, "/backend").message == "backend: scripted (a script)"


def test_system(state: ReplState) -> None:
    assert run(state, "/system be brief").message == "system prompt: be brief"
    assert state.conversation.system == "be brief"
    assert run(state, "/system").message == "system prompt: be brief"
    run(state, "/system clear")
    assert state.conversation.system is None


def test_suffix_set_clear_and_refused_where_unsupported(state: ReplState) -> None:
    run(state, "/suffix END")
    assert state.conversation.suffix == "END"
    assert run(state, "/suffix").message == "suffix cleared"
    assert state.conversation.suffix is None
    state.backend = ScriptedBackend(capabilities=Capabilities(suffix=False))
    with pytest.raises(CommandError, match="does not support insertion"):
        run(state, "/suffix END")


def test_json(state: ReplState) -> None:
    run(state, "/json on")
    assert state.conversation.json_mode
    assert run(state, "/json").message.endswith("on")  # type: ignore[union-attr]
    run(state, "/json off")
    assert not state.conversation.json_mode
    with pytest.raises(CommandError):
        run(state, "/json maybe")


def test_retry_asks_the_app_to_retry_only_after_a_message(state: ReplState) -> None:
    with pytest.raises(CommandError, match="nothing to retry"):
        run(state, "/retry")
    chat(state, "q", "a")
    assert run(state, "/retry").retry is True
    assert [m.content for m in state.conversation.messages] == ["q", "a"]  # nothing removed yet


def test_new_keeps_settings_and_starts_empty(state: ReplState) -> None:
    state.conversation.system = "sys"
    chat(state, "q", "a")
    run(state, "/new")
    assert state.conversation.messages == [] and state.conversation.system == "sys"


def test_save_load_sessions_and_history(state: ReplState) -> None:
    chat(state, "first question", "first answer")
    saved = run(state, "/save mine").message or ""
    assert saved.startswith("saved as mine")
    table = run(state, "/sessions").table
    assert table is not None and table.rows[0][0] == "mine"
    run(state, "/new")
    loaded = run(state, "/load mine")
    assert [m.content for m in loaded.transcript] == ["first question", "first answer"]
    assert [m.content for m in run(state, "/history").transcript] == [
        "first question",
        "first answer",
    ]
    with pytest.raises(CommandError, match="usage"):
        run(state, "/load")
    with pytest.raises(SessionError):
        run(state, "/load nothing-here")


def test_history_and_sessions_when_empty(state: ReplState) -> None:
    assert run(state, "/history").message == "no messages yet"
    assert run(state, "/sessions").message == "no saved sessions yet"


def test_quit_and_exit(state: ReplState) -> None:
    assert run(state, "/quit").quit and run(state, "/exit").quit


def test_unknown_commands_suggest_the_closest(state: ReplState) -> None:
    with pytest.raises(CommandError, match=r"unknown command /hlep; did you mean /help"):
        run(state, "/hlep")
