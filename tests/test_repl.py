"""The REPL driven in-process through prompt_toolkit's pipe input, against the fake server."""

from __future__ import annotations

import json
import re

from chatrepl.conversation import session_format
from tests.harness import CTRL_C, ESC_ENTER, PASTE_END, PASTE_START, lines, run_repl


def test_history_grows_and_is_sent_whole(chatrepl_env) -> None:
    server = chatrepl_env.server
    result = run_repl(lines("/system You are terse.", "first question", "second question"))
    chats = server.bodies("/chat/completions")
    assert len(chats) == 2
    assert chats[1]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Echo: first question"},
        {"role": "user", "content": "second question"},
    ]
    assert chats[1]["stream"] is True and chats[1]["stream_options"] == {"include_usage": True}
    assert "Echo: second question" in result.output
    assert [m.role for m in result.conversation.messages] == ["user", "assistant"] * 2


def test_banner_names_backend_model_and_mode(chatrepl_env) -> None:
    output = run_repl("").output
    assert chatrepl_env.server.base_url in output
    assert "gpt-4o-mini" in output and "chat mode" in output


def test_complete_mode_sends_bare_prompt_without_history(chatrepl_env) -> None:
    server = chatrepl_env.server
    keys = lines("hello chat", "/complete", "/suffix END", "def add(a, b):", "/chat", "again")
    result = run_repl(keys)
    completion = server.last("/v1/completions")
    assert completion.path.endswith("/v1/completions")
    assert completion.body["prompt"] == "def add(a, b):"
    assert completion.body["suffix"] == "END"
    assert completion.body["model"] == "gpt-3.5-turbo-instruct"
    assert completion.body["max_tokens"] > 16
    assert "messages" not in completion.body
    sent = server.bodies("/chat/completions")[-1]["messages"]
    assert all("def add" not in m["content"] for m in sent)  # completion turns never sent as chat
    modes = [m.mode for m in result.conversation.messages]
    assert modes == ["chat", "chat", "complete", "complete", "chat", "chat"]


def test_suffix_alone_clears_it(chatrepl_env) -> None:
    run_repl(lines("/complete", "/suffix END", "/suffix", "x = "))
    assert "suffix" not in chatrepl_env.server.last("/v1/completions").body


def test_mode_and_model_commands(chatrepl_env) -> None:
    result = run_repl(lines("/mode", "/mode complete", "/model davinci-002", "/mode bogus", "hi"))
    assert "mode: chat" in result.output
    assert "unknown mode 'bogus'" in result.output
    assert chatrepl_env.server.last("/v1/completions").body["model"] == "davinci-002"
    assert result.conversation.chat_model == "gpt-4o-mini"


def test_save_then_load_round_trips(chatrepl_env) -> None:
    first = run_repl(lines("remember the number 42", "/save numbers"))
    saved = session_format.to_document(first.conversation)
    second = run_repl(lines("/new", "/load numbers", "and now?"))
    assert "remember the number 42" in second.output  # last exchanges shown after /load
    sent = chatrepl_env.server.bodies("/chat/completions")[-1]["messages"]
    assert sent[0] == {"role": "user", "content": "remember the number 42"}
    assert second.conversation.name == "numbers"
    on_disk = json.loads((chatrepl_env.home / "sessions" / "numbers.json").read_text())
    assert on_disk["messages"][:2] == saved["messages"]
    assert len(on_disk["messages"]) == 4


def test_every_turn_autosaves(chatrepl_env) -> None:
    result = run_repl(lines("autosave me please"))
    files = list((chatrepl_env.home / "sessions").glob("*.json"))
    assert [f.stem for f in files] == ["autosave-me-please"] == [result.conversation.name]
    assert len(json.loads(files[0].read_text())["messages"]) == 2


def test_rename_renames_an_autosaved_session(chatrepl_env) -> None:
    run_repl(lines("first words here", "/rename better-name"))
    names = sorted(f.stem for f in (chatrepl_env.home / "sessions").glob("*.json"))
    assert names == ["better-name"]


def test_unknown_command_names_the_closest(chatrepl_env) -> None:
    result = run_repl(lines("/hepl", "/sesions", "/zzzz", "still here"))
    assert "unknown command /hepl; did you mean /help?" in result.output
    assert "/sessions" in result.output
    assert "unknown command /zzzz; try /help" in result.output
    assert chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"] == (
        "still here"
    )


def test_help_lists_every_command(chatrepl_env) -> None:
    from chatrepl.repl.commands import COMMANDS

    output = run_repl(lines("/help")).output
    for command in COMMANDS:
        assert f"/{command.name}" in output


def test_ctrl_d_and_quit_words_exit(chatrepl_env) -> None:
    for keys in ("", lines("quit", "never sent"), lines("exit", "never"), lines("/exit", "x")):
        run_repl(keys)
    assert chatrepl_env.server.bodies("/chat/completions") == []


def test_ctrl_c_at_prompt_clears_the_line_and_keeps_going(chatrepl_env) -> None:
    run_repl("half typed" + CTRL_C + lines("sent after ctrl-c"))
    bodies = chatrepl_env.server.bodies("/chat/completions")
    assert [b["messages"][-1]["content"] for b in bodies] == ["sent after ctrl-c"]


def test_api_error_keeps_repl_running_and_loses_nothing(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.fail(500, "the model exploded")
    # The failed text is put back in the input line: pressing Enter resends it.
    result = run_repl(lines("please answer") + "\r")
    assert "error: the server failed" in result.output
    assert "the model exploded" in result.output
    assert "Traceback" not in result.output
    contents = [m.content for m in result.conversation.messages]
    assert contents == ["please answer", "Echo: please answer"]


def test_each_kind_of_api_error_is_one_line(chatrepl_env) -> None:
    server = chatrepl_env.server
    cases = [
        (401, "authentication failed"),
        (404, "not found"),
        (429, "rate limited"),
        (400, "too long for the model's context"),
    ]
    for status, expected in cases:
        message = "context_length_exceeded" if status == 400 else "nope"
        server.fail(status, message)
        output = run_repl(lines("hello") + "\x03").output
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], output


def test_connection_refused_is_one_line(chatrepl_env, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    result = run_repl(lines("anyone there?"))
    assert "error: cannot connect to http://127.0.0.1:9/v1" in result.output
    assert result.conversation.messages == []


def test_stream_dropped_mid_reply_is_one_line_and_keeps_the_partial_reply(chatrepl_env) -> None:
    full = "a fairly long reply that will be cut off in the middle"
    chatrepl_env.server.reply = full
    chatrepl_env.server.drop_after(3)
    result = run_repl(lines("go"))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    question, partial = result.conversation.messages
    assert question.content == "go"
    assert partial.interrupted and partial.content and full.startswith(partial.content)
    assert partial.content != full
    saved = json.loads((chatrepl_env.home / "sessions" / "go.json").read_text())
    assert saved["messages"][1]["interrupted"] is True


def test_pasted_multiline_text_is_one_message(chatrepl_env) -> None:
    pasted = "line one\nline two\nline three"
    run_repl(PASTE_START + pasted + PASTE_END + "\r")
    bodies = chatrepl_env.server.bodies("/chat/completions")
    assert len(bodies) == 1
    assert bodies[0]["messages"][-1]["content"] == pasted


def test_escape_enter_inserts_a_newline(chatrepl_env) -> None:
    run_repl("first" + ESC_ENTER + "second\r")
    assert chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"] == (
        "first\nsecond"
    )


def test_json_mode_sets_response_format(chatrepl_env) -> None:
    run_repl(lines("/json on", "give json", "/json off", "plain"))
    first, second = chatrepl_env.server.bodies("/chat/completions")
    assert first["response_format"] == {"type": "json_object"}
    assert "response_format" not in second


def test_usage_and_length_warning_are_shown(chatrepl_env) -> None:
    chatrepl_env.server.queue("cut", finish_reason="length")
    output = run_repl(lines("long one")).output
    assert "finish_reason=length" in output
    assert "total" in output or "tokens" in output


def test_no_usage_from_the_server_shows_estimated_counts(chatrepl_env) -> None:
    token_line = re.compile(r"^\d+ prompt \+ \d+ completion tokens( · |$)", re.MULTILINE)
    assert token_line.search(run_repl(lines("with usage")).output)
    chatrepl_env.server.no_usage = True
    output = run_repl(lines("hi")).output
    assert "Echo: hi" in output
    # No usage from the server: the figures are counted locally and marked as estimates.
    assert not token_line.search(output) and "0 prompt" not in output
    assert re.search(r"^~\d+ prompt \+ ~\d+ completion tokens", output, re.MULTILINE)


def test_sessions_and_history_commands(chatrepl_env) -> None:
    output = run_repl(lines("a message for history", "/history", "/sessions")).output
    history = output[output.index("user · chat") :]
    assert [line.rstrip() for line in history.splitlines()[:4]] == [
        "user · chat",
        "a message for history",
        "assistant · chat",
        "Echo: a message for history",
    ]
    assert re.search(r"^a-message-for-history +\S+ +2 messages *$", output, re.MULTILINE)


def test_resume_and_continue_show_last_exchanges(chatrepl_env) -> None:
    run_repl(lines("resume me later", "/save later"))
    resumed = run_repl(lines("next"), resume="later")
    assert "Echo: resume me later" in resumed.output
    assert resumed.conversation.name == "later"
    continued = run_repl("", latest=True)
    assert continued.conversation.name == "later"
    assert len(continued.conversation.messages) == 4


def test_tab_completion_of_commands_and_arguments(chatrepl_env) -> None:
    from prompt_toolkit.document import Document

    from chatrepl.repl.prompt import SlashCompleter

    result = run_repl(lines("first", "/rename alpha", "/new", "second", "/rename beta"))
    completer = SlashCompleter(result.repl.state)

    def offered(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), None)]

    assert offered("/lo") == ["/load"]
    assert offered("/load ") == ["alpha", "beta"]
    assert offered("/load b") == ["beta"]
    assert offered("/mode c") == ["chat", "complete"]
    assert "gpt-4o-mini" in offered("/model gpt")
    assert offered("hello") == []


def test_tab_in_the_prompt_completes(chatrepl_env) -> None:
    run_repl(["/comp", "\t", "\r" + lines("in completion mode")])
    assert chatrepl_env.server.last("/v1/completions").body["prompt"] == "in completion mode"


def test_models_lists_the_servers_models(chatrepl_env) -> None:
    output = run_repl(lines("/models", "/backend")).output
    assert "test-model" in output and "gpt-3.5-turbo-instruct" in output
    assert f"backend: openai ({chatrepl_env.server.base_url})" in output


def test_unwritable_session_dir_is_reported_and_the_chat_goes_on(chatrepl_env) -> None:
    (chatrepl_env.home / "sessions").write_text("a file where the directory should be")
    result = run_repl(lines("still works"))
    assert "error: autosave failed" in result.output
    assert "Echo: still works" in result.output
    assert len(result.conversation.messages) == 2


def test_retry_replaces_the_last_reply_and_asks_again(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue("first try")
    server.queue("second try")
    result = run_repl(lines("question", "/retry", "/new", "/retry"))
    first, second = server.bodies("/chat/completions")
    assert first["messages"] == second["messages"] == [{"role": "user", "content": "question"}]
    assert "nothing to retry" in result.output
    saved = json.loads((chatrepl_env.home / "sessions" / "question.json").read_text())
    assert [m["content"] for m in saved["messages"]] == ["question", "second try"]


def test_a_failed_retry_keeps_the_old_reply_in_memory_and_on_disk(chatrepl_env) -> None:
    server = chatrepl_env.server
    run_repl(lines("question one", "question two"))
    path = chatrepl_env.home / "sessions" / "question-one.json"
    before = [m["content"] for m in json.loads(path.read_text())["messages"]]
    server.fail(503, "overloaded", persistent=True)
    failed = run_repl(lines("/retry"), resume="question-one")
    assert "error: " in failed.output
    after = [m["content"] for m in json.loads(path.read_text())["messages"]]
    assert after == before and len(after) == 4
    assert [m.content for m in failed.conversation.messages] == before


def test_retry_after_switching_mode_repeats_the_completion_turn(chatrepl_env) -> None:
    server = chatrepl_env.server
    run_repl(lines("/complete", "def f(x):", "/chat", "/retry"))
    assert len(server.bodies("/completions")) == 2
    assert server.bodies("/chat/completions") == []


def test_double_slash_sends_a_message_starting_with_a_slash(chatrepl_env) -> None:
    run_repl(lines("//etc/hosts is a file"))
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "/etc/hosts is a file"


def test_continue_joins_the_rest_to_the_cut_reply(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue("the beginning", finish_reason="length")
    server.queue(" and the end")
    result = run_repl(lines("go", "/continue"))
    assert [m.content for m in result.conversation.messages] == [
        "go",
        "the beginning and the end",
    ]
    assert result.conversation.messages[-1].finish_reason == "stop"


def test_undo_and_set_are_saved_at_once(chatrepl_env) -> None:
    run_repl(lines("first", "second", "/undo", "/set temperature 0.5"))
    saved = json.loads((chatrepl_env.home / "sessions" / "first.json").read_text())
    assert [m["content"] for m in saved["messages"]] == ["first", "Echo: first"]
    assert saved["params"] == {"temperature": 0.5}
    run_repl(lines("third"), resume="first")
    assert chatrepl_env.server.last("/chat/completions").body["temperature"] == 0.5


def fake_editor(tmp_path, replacement: str):
    """An $EDITOR that replaces the file's text (a shell script)."""
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{replacement}' > \"$1\"\n")
    script.chmod(0o755)
    return str(script)


def test_edit_replaces_the_last_question_and_asks_again(
    chatrepl_env, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("VISUAL", fake_editor(tmp_path, "a better question"))
    result = run_repl(lines("a first question", "/edit"))
    contents = [m.content for m in result.conversation.messages]
    assert contents == ["a better question", "Echo: a better question"]
    bodies = chatrepl_env.server.bodies("/chat/completions")
    assert [b["messages"][-1]["content"] for b in bodies] == [
        "a first question",
        "a better question",
    ]


def test_edit_unchanged_is_cancelled(chatrepl_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VISUAL", fake_editor(tmp_path, "same"))
    result = run_repl(lines("same", "/edit"))
    assert "edit cancelled: the message is unchanged" in result.output
    assert len(chatrepl_env.server.bodies("/chat/completions")) == 1


def test_fork_copies_the_conversation_and_goes_on_there(chatrepl_env) -> None:
    result = run_repl(lines("original talk", "/fork branch", "only in the fork"))
    assert result.conversation.name == "branch"
    sessions = chatrepl_env.home / "sessions"
    original = json.loads((sessions / "original-talk.json").read_text())
    branch = json.loads((sessions / "branch.json").read_text())
    assert len(original["messages"]) == 2 and len(branch["messages"]) == 4
    assert branch["messages"][0]["content"] == "original talk"


def test_vi_editing_mode_shows_in_the_toolbar(chatrepl_env) -> None:
    (chatrepl_env.home / "config.toml").write_text('editing_mode = "vi"\n')
    result = run_repl(lines("hello"))
    assert result.repl.reader.session.app.editing_mode.name == "VI"
    toolbar = result.repl.reader._toolbar()
    assert toolbar.startswith(("INSERT", "NORMAL"))


def test_typing_after_a_failed_turn_replaces_the_offered_text(chatrepl_env) -> None:
    chatrepl_env.server.fail(500, "down")
    result = run_repl(lines("the failed question") + lines("a new one"))
    sent = [b["messages"][-1]["content"] for b in chatrepl_env.server.bodies("/chat/completions")]
    assert sent == ["the failed question", "a new one"]  # not "the failed questiona new one"
    assert [m.content for m in result.conversation.messages] == ["a new one", "Echo: a new one"]


def test_a_resumed_sessions_messages_are_parsed_after_the_prompt_and_all_kept(
    chatrepl_env, monkeypatch
) -> None:
    """The prompt of a resumed session is drawn before its messages are parsed (in the
    a thread of its own); the next turn still finds, and saves, every one of them."""
    run_repl(lines(*(f"question {n}" for n in range(10)), "/rename long"))
    path = chatrepl_env.home / "sessions" / "long.json"
    before = json.loads(path.read_text())["messages"]
    parsed_in: list[str] = []
    real = session_format.messages_at

    def recording(text: str, start: int):  # type: ignore[no-untyped-def]
        import threading

        parsed_in.append(threading.current_thread().name)
        return real(text, start)

    monkeypatch.setattr(session_format, "messages_at", recording)
    resumed = run_repl(lines("one more"), resume="long")
    assert parsed_in == ["chatrepl-parse"]
    assert "Echo: question 9" in resumed.output  # the last exchanges, shown once parsed
    after = json.loads(path.read_text())["messages"]
    assert after[:20] == before and [m["content"] for m in after[20:]] == [
        "one more",
        "Echo: one more",
    ]


def test_a_resumed_session_with_a_corrupt_message_ends_the_repl_unsaved(chatrepl_env) -> None:
    import pytest

    from chatrepl.errors import SessionError

    run_repl(lines("keep me", "/rename fragile"))
    path = chatrepl_env.home / "sessions" / "fragile.json"
    broken = path.read_text().replace('"role": "assistant"', '"role": 3')
    path.write_text(broken)
    turns = [r for r in chatrepl_env.server.requests if r.path == "/v1/chat/completions"]
    with pytest.raises(SessionError, match=r"fragile\.json: message 2"):
        run_repl(lines("not sent"), resume="fragile")
    assert [r for r in chatrepl_env.server.requests if r.path == "/v1/chat/completions"] == turns
    assert path.read_text() == broken
