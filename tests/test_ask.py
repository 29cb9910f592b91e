"""`chatrepl ask` through typer's CliRunner against the fake server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from chatrepl.cli.typer_app import app

runner = CliRunner()


def ask(*args: str, input: str | None = None):
    return runner.invoke(app, ["ask", *args], input=input)


def test_ask_streams_plain_text_when_not_a_terminal(chatrepl_env) -> None:
    chatrepl_env.server.reply = "# Title\n\n**bold** and `code`"
    result = ask("hello there")
    assert result.exit_code == 0, result.output
    assert result.stdout == "# Title\n\n**bold** and `code`\n"
    assert "\x1b" not in result.output
    body = chatrepl_env.server.last("/chat/completions").body
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert body["stream"] is True


def test_piped_stdin_is_joined_with_the_prompt(chatrepl_env) -> None:
    result = ask("summarize", input="line one\nline two\n")
    assert result.exit_code == 0
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "line one\nline two\n\nsummarize"


def test_stdin_alone_is_the_prompt(chatrepl_env) -> None:
    assert ask(input="only stdin").exit_code == 0
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "only stdin"


def test_json_prints_the_api_response(chatrepl_env) -> None:
    result = ask("hi", "--json")
    assert result.exit_code == 0
    response = json.loads(result.stdout)
    assert response["object"] == "chat.completion"
    assert response["choices"][0]["message"]["content"] == "Echo: hi"
    assert chatrepl_env.server.last("/chat/completions").body.get("stream") in (None, False)


def test_no_stream(chatrepl_env) -> None:
    result = ask("hi", "--no-stream")
    assert result.stdout == "Echo: hi\n"


def test_mode_complete_with_suffix_model_and_max_tokens(chatrepl_env) -> None:
    result = ask(
        "def f():",
        "--mode",
        "complete",
        "--suffix",
        "# end",
        "--max-tokens",
        "40",
        "--model",
        "davinci-002",
    )
    assert result.exit_code == 0, result.output
    body = chatrepl_env.server.last("/v1/completions").body
    assert body["prompt"] == "def f():"
    assert body["suffix"] == "# end" and body["max_tokens"] == 40 and body["model"] == "davinci-002"
    assert result.stdout.strip()


def test_completion_always_sends_max_tokens(chatrepl_env) -> None:
    ask("x", "--mode", "complete")
    assert chatrepl_env.server.last("/v1/completions").body["max_tokens"] == 256


def test_system_and_json_mode(chatrepl_env) -> None:
    ask("hi", "--system", "be brief", "--json-mode")
    body = chatrepl_env.server.last("/chat/completions").body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["response_format"] == {"type": "json_object"}


def test_session_continues_and_saves(chatrepl_env) -> None:
    assert ask("first", "--session", "work").exit_code == 0
    assert ask("second", "--session", "work").exit_code == 0
    sent = chatrepl_env.server.last("/chat/completions").body["messages"]
    assert [m["content"] for m in sent] == ["first", "Echo: first", "second"]
    saved = json.loads((chatrepl_env.home / "sessions" / "work.json").read_text())
    assert len(saved["messages"]) == 4


def test_api_error_exits_1_with_one_line(chatrepl_env) -> None:
    chatrepl_env.server.fail(401, "Incorrect API key provided")
    result = ask("hi")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: authentication failed")
    assert "Traceback" not in result.output


def test_detail_style_error_body_is_read(chatrepl_env) -> None:
    chatrepl_env.server.fail(404, "Model not found", style="detail")
    result = ask("hi")
    assert result.exit_code == 1
    assert "Model not found" in result.stderr


def test_usage_errors_exit_1(chatrepl_env) -> None:
    assert ask("hi", "--mode", "poem").exit_code == 1
    empty = ask(input="")
    assert empty.exit_code == 1 and "nothing to ask" in empty.stderr
    assert ask("hi", "--session", "../x").exit_code == 1


def test_no_color_gives_plain_text(chatrepl_env, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    chatrepl_env.server.reply = "**bold**"
    assert ask("hi").stdout == "**bold**\n"


def test_no_key_and_no_url_is_one_line(chatrepl_env, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("CHATREPL_BACKEND", "")
    import chatrepl.backends.local_backend as local

    monkeypatch.setattr(local, "local_backend_available", lambda: False)
    result = ask("hi")
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.stderr and "OPENAI_BASE_URL" in result.stderr
    assert result.stderr.count("\n") == 1


def test_generation_parameters_are_options_and_are_validated(chatrepl_env) -> None:
    result = ask("--temperature", "0.2", "--seed", "7", "--stop", "END", "hi")
    assert result.exit_code == 0, result.output
    body = chatrepl_env.server.last("/chat/completions").body
    assert (body["temperature"], body["seed"], body["stop"]) == (0.2, 7, ["END"])
    for args, message in (
        (["--temperature", "5"], "temperature must be from 0 to 2, not 5"),
        (["--max-tokens", "-5"], "max_tokens must be at least 1"),
    ):
        bad = ask(*args, "hi")
        assert bad.exit_code == 1 and message in bad.stderr, bad.stderr
    assert len(chatrepl_env.server.bodies("/chat/completions")) == 1  # nothing bad was sent


def test_a_suffix_in_chat_mode_is_refused(chatrepl_env) -> None:
    result = ask("--suffix", "END", "hi")
    assert result.exit_code == 1
    assert "--suffix is for completion mode" in result.stderr
    assert chatrepl_env.server.bodies("/chat/completions") == []
