"""chatrepl against llama.cpp's real OpenAI-compatible server (python -m llama_cpp.server).

Tests compare shapes and behaviour, never the model's words.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.repl.prompt import SlashCompleter
from tests.conftest import isolate
from tests.harness import lines, run_repl
from tests.test_e2e import PROMPT, spawn, type_line

runner = CliRunner()


@pytest.fixture
def llama_env(llama_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """chatrepl pointed at the llama.cpp server with OPENAI_BASE_URL and no key at all."""
    home = isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url)
    monkeypatch.setenv("CHATREPL_MODEL", llama_server.model)
    monkeypatch.setenv("CHATREPL_COMPLETION_MODEL", llama_server.model)
    monkeypatch.setenv("CHATREPL_CHAT_MAX_TOKENS", "32")
    monkeypatch.setenv("CHATREPL_MAX_TOKENS", "24")
    return home


def test_ask_chat_streams_text(llama_env) -> None:
    result = runner.invoke(app, ["ask", "Name a colour."])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert "\x1b" not in result.stdout


def test_ask_complete_streams_text(llama_env) -> None:
    result = runner.invoke(app, ["ask", "--mode", "complete", "The sky is"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_ask_json_both_modes(llama_env) -> None:
    chat = json.loads(runner.invoke(app, ["ask", "--json", "Say hi."]).stdout)
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["role"] == "assistant"
    completion = json.loads(
        runner.invoke(app, ["ask", "--json", "--mode", "complete", "1, 2,"]).stdout
    )
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["finish_reason"] in ("stop", "length")


def test_completion_sends_max_tokens_so_replies_are_not_cut_at_16(llama_env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_MAX_TOKENS", "40")
    result = runner.invoke(app, ["ask", "--json", "--mode", "complete", "Once upon a time"])
    usage = json.loads(result.stdout)["usage"]
    finish = json.loads(result.stdout)["choices"][0]["finish_reason"]
    assert usage["completion_tokens"] > 16 or finish == "stop"


def test_any_model_name_is_accepted(llama_env) -> None:
    result = runner.invoke(app, ["ask", "--model", "no-such-model", "Hi"])
    assert result.exit_code == 0, result.output


def test_repl_chat_and_completion_turns(llama_env) -> None:
    result = run_repl(lines("Say hello.", "/complete", "def square(x):"))
    messages = result.conversation.messages
    assert [(m.role, m.mode) for m in messages] == [
        ("user", "chat"),
        ("assistant", "chat"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert all(m.content for m in messages)
    assert all(m.finish_reason in ("stop", "length") for m in messages[1::2])
    # No usage chunk arrives from this server: the figures are counted locally, marked `~`.
    replies = [m for m in messages if m.role == "assistant"]
    assert all(m.usage is not None and m.estimated for m in replies)
    assert "~" in result.output
    assert not re.search(r"(?<![\d~])0 prompt", result.output)  # never a made-up zero


def test_models_and_model_completion_come_from_the_server(llama_env, llama_server) -> None:
    from prompt_toolkit.document import Document

    result = run_repl(lines("/models"))
    assert llama_server.model in result.output
    state = result.repl.state
    completer = SlashCompleter(state)
    offered = [c.text for c in completer.get_completions(Document("/model sm"), None)]
    assert offered == [llama_server.model]
    assert state.model_cache == [llama_server.model]  # fetched once, then cached


def test_fastapi_detail_error_body_is_one_line(llama_env, llama_server, monkeypatch) -> None:
    # A path the server lacks answers 404 {"detail": "Not Found"}, FastAPI's shape.
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url + "/missing")
    result = runner.invoke(app, ["ask", "Hi"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "(404): Not Found" in result.stderr


def test_context_overflow_is_one_line(llama_env) -> None:
    result = runner.invoke(app, ["ask", "word " * 3000])
    assert result.exit_code == 1
    assert "closed the stream before the reply finished" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# A word of the reply: not one of the spinner's ("waiting for smollm2…"), not an escape code.
REPLY_WORD = r"\b(?!(?:waiting|for)\b)[a-z]{3,}\b"


def test_ctrl_c_mid_stream_then_chat_goes_on(llama_env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_CHAT_MAX_TOKENS", "400")
    child = spawn(dict(os.environ))
    child.expect(PROMPT["chat"])
    type_line(child, "Write a very long story about a dragon, in many chapters.")
    child.expect("waiting for")
    child.expect(REPLY_WORD, timeout=60)  # the reply is streaming (the first token can be slow)
    time.sleep(0.5)  # ~100 tokens/s, 400 allowed: far from done
    child.sendintr()
    child.expect("interrupted", timeout=10)
    child.expect(PROMPT["chat"])
    type_line(child, "/history")
    child.expect("interrupted")
    child.expect(PROMPT["chat"])
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    saved = json.loads(next((llama_env / "sessions").glob("*.json")).read_text())
    assert saved["messages"][1]["interrupted"] is True
    assert saved["messages"][1]["content"]
