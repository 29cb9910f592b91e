"""Every slash-command handler, on the scripted backend and a temporary store (no HTTP)."""

from __future__ import annotations

import re
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


def test_every_command_is_tested() -> None:
    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    untested = [c.name for c in commands.COMMANDS if f"/{c.name}" not in sources]
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
    assert table is not None and table.rows[:2] == [
        ("scripted-chat", "scripted"),
        ("scripted-complete", "scripted"),
    ]  # then the embedded model, when installed


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


def test_save_name_copies_and_rename_renames(state: ReplState) -> None:
    chat(state, "q", "a")
    run(state, "/save first")
    saved = run(state, "/save spare").message or ""
    assert saved.startswith("saved a copy as spare") and "still first" in saved
    assert state.conversation.name == "first" and state.store.names() == ["first", "spare"]
    assert run(state, "/rename kept").message.startswith("renamed first to kept")
    assert state.conversation.name == "kept" and state.store.names() == ["kept", "spare"]
    with pytest.raises(SessionError, match="already exists"):
        run(state, "/rename spare")
    with pytest.raises(CommandError, match="usage"):
        run(state, "/rename")


def test_copy_and_export_hand_back_what_to_copy_and_write(
    state: ReplState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat(state, "q", "Two:\n\n```sh\nls\n```\n\n```py\nprint(1)\n```")
    assert run(state, "/copy").clip.text == state.conversation.messages[-1].content
    assert run(state, "/copy 1").clip.text == "ls\n"
    assert run(state, "/copy code").clip.text == "print(1)\n"
    with pytest.raises(CommandError, match="2 code blocks: /copy 1 to /copy 2"):
        run(state, "/copy 3")
    monkeypatch.chdir(tmp_path)
    run(state, "/save mine")
    assert "exported 2 messages as md to mine.md" in run(state, "/export").message
    assert (tmp_path / "mine.md").read_text().startswith("# mine\n")
    with pytest.raises(Exception, match="exists already"):
        run(state, "/export")


def test_quit_and_exit(state: ReplState) -> None:
    assert run(state, "/quit").quit and run(state, "/exit").quit


def test_unknown_commands_suggest_the_closest(state: ReplState) -> None:
    with pytest.raises(CommandError, match=r"unknown command /hlep; did you mean /help"):
        run(state, "/hlep")


def test_context_shows_the_window_and_sets_the_policy(state: ReplState) -> None:
    state.backend = ScriptedBackend(capabilities=Capabilities(context_window=2048))
    chat(state, "one two three", "four five")
    shown = run(state, "/context")
    assert shown.message is not None and shown.message.startswith("context policy: summarize")
    assert "2,048 tokens (the scripted backend)" in shown.message
    assert "% used, ▒ reply reserve, of 2,048 tokens" in shown.message
    assert shown.table is not None
    assert [row[0] for row in shown.table.rows] == [
        "system prompt",
        "summary",
        "history sent",
        "history left out",
        "reserve for the reply",
        "free",
    ]
    run(state, "/context trim")
    assert state.conversation.context_policy == "trim"
    run(state, "/context window 4096")
    assert state.conversation.context_window == 4096
    run(state, "/context window auto")
    assert state.conversation.context_window is None
    with pytest.raises(CommandError, match="use /context"):
        run(state, "/context sometimes")
    with pytest.raises(CommandError, match="number of tokens"):
        run(state, "/context window lots")


def test_context_with_an_unknown_window_says_fitting_is_off(state: ReplState) -> None:
    state.conversation.chat_model = "a-model-nobody-knows"
    shown = run(state, "/context")
    assert "automatic fitting is off until the window is known" in (shown.message or "")


def test_compact_summarizes_now(state: ReplState) -> None:
    assert run(state, "/compact").message == "nothing to summarize yet: the conversation is short"
    chat(state, "q1", "a1", "q2", "a2")
    state.backend = ScriptedBackend(capabilities=Capabilities(context_window=8192)).then("gist")
    run(state, "/compact")
    summaries = [m for m in state.conversation.messages if m.is_summary]
    assert len(summaries) == 1 and summaries[0].content.endswith("gist")


def test_usage_totals_by_model(state: ReplState) -> None:
    from chatrepl.conversation.messages import Timing, Usage

    assert run(state, "/usage").message == "no requests in this session yet"
    for model, first in (("m1", 0.5), ("m1", 1.5), ("m2", 0.2)):
        state.conversation.add(Message("user", "q"))
        state.conversation.add(
            Message("assistant", "a", model=model, usage=Usage(10, 5, 15), timing=Timing(first, 2))
        )
    table = run(state, "/usage").table
    assert table is not None
    assert table.rows == [
        ("m1", "2", "20", "10", "unknown", "1.00 s"),
        ("m2", "1", "10", "5", "unknown", "0.20 s"),
    ]


def test_tools_lists_and_switches(state: ReplState) -> None:
    from chatrepl.tools.setup import build_toolbox

    state.toolbox = build_toolbox(Settings(), print, None)
    shown = run(state, "/tools")
    assert shown.message and shown.message.startswith("tools off")
    run(state, "/tools on")
    run(state, "/tools enable read_file")
    assert state.toolbox.active and "read_file" in state.toolbox.enabled
    with pytest.raises(CommandError, match="unknown tool"):
        run(state, "/tools enable teleport")


def test_set_lists_sets_validates_and_resets(state: ReplState) -> None:
    listed = run(state, "/set").table
    assert listed is not None and [r[0] for r in listed.rows][:3] == [
        "temperature",
        "top_p",
        "max_tokens",
    ]
    assert run(state, "/set temperature 0.3").message == "temperature: 0.3 (saved with the session)"
    run(state, "/set stop END ###")
    assert state.conversation.params.temperature == 0.3
    assert state.conversation.params.stop == ("END", "###")
    run(state, "/set temperature")
    assert state.conversation.params.temperature is None
    for line, error in (
        ("/set temperature 7", "temperature must be from 0 to 2, not 7"),
        ("/set max_tokens -5", "max_tokens must be from 1 up, not -5"),
        ("/set seed x", "seed must be a whole number"),
        ("/set temprature 1", "did you mean temperature?"),
        ("/set stop a b c d e", "at most 4"),
    ):
        with pytest.raises(CommandError, match=re.escape(error)):
            run(state, line)


def test_undo_removes_the_last_exchanges(state: ReplState) -> None:
    with pytest.raises(CommandError, match="nothing to undo"):
        run(state, "/undo")
    chat(state, "q1", "a1", "q2", "a2", "q3", "a3")
    shown = run(state, "/undo").message or ""
    assert shown.startswith("removed 1 exchange (2 messages):")
    assert "user: q3" in shown and "assistant: a3" in shown
    run(state, "/undo 5")  # more than there are: all
    assert state.conversation.messages == []
    with pytest.raises(CommandError, match="number of exchanges"):
        run(state, "/undo two")


def test_continue_only_a_cut_or_interrupted_reply(state: ReplState) -> None:
    with pytest.raises(CommandError, match="nothing to continue"):
        run(state, "/continue")
    chat(state, "q", "a complete answer")
    state.conversation.messages[-1].finish_reason = "stop"
    with pytest.raises(CommandError, match="the last reply is complete"):
        run(state, "/continue")
    state.conversation.messages[-1].finish_reason = "length"
    assert run(state, "/continue").continue_reply


def test_retry_with_another_model(state: ReplState) -> None:
    chat(state, "q", "a")
    result = run(state, "/retry --model gpt-4.1")
    assert result.retry and result.retry_model == "gpt-4.1"
    with pytest.raises(CommandError, match="/retry --model NAME"):
        run(state, "/retry --mode x")
