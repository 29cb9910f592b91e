"""The embedded model through the real REPL and `ask`: no key, no network, no server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.backends.local_backend import local_backend_available
from chatrepl.cli.typer_app import app
from tests.conftest import isolate
from tests.harness import lines, run_repl

pytestmark = pytest.mark.skipif(not local_backend_available(), reason="embedded model missing")
runner = CliRunner()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No OpenAI settings at all; short replies so the tests stay quick."""
    home = isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("CHATREPL_CHAT_MAX_TOKENS", "24")
    monkeypatch.setenv("CHATREPL_MAX_TOKENS", "16")
    return home


def test_ask_picks_the_embedded_model_without_a_key(offline) -> None:
    result = runner.invoke(app, ["ask", "Name a fruit."])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_ask_completion_mode_and_json(offline) -> None:
    assert runner.invoke(app, ["ask", "--mode", "complete", "1, 2, 3,"]).stdout.strip()
    raw = runner.invoke(app, ["ask", "--json", "--mode", "complete", "1, 2, 3,"]).stdout
    assert '"text_completion"' in raw


def test_ask_suffix_is_refused_plainly(offline) -> None:
    result = runner.invoke(app, ["ask", "--mode", "complete", "--suffix", "end", "x"])
    assert result.exit_code == 1
    assert "does not support insertion" in result.stderr


def test_repl_chat_and_completion_with_local_backend(offline) -> None:
    result = run_repl(lines("/backend", "Say hi.", "/complete", "/suffix END", "The sky is"))
    assert "backend: local (" in result.output and ".gguf" in result.output
    assert "does not support insertion" in result.output
    messages = result.conversation.messages
    assert [(m.role, m.mode) for m in messages] == [
        ("user", "chat"),
        ("assistant", "chat"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert all(m.backend == "local" and m.model.startswith("SmolLM2") for m in messages)
    assert all(m.content for m in messages)
    assert messages[1].usage and messages[1].usage.completion_tokens > 0
    assert result.conversation.suffix is None


def test_resume_uses_the_sessions_backend_unless_told(offline, fake_server, monkeypatch) -> None:
    run_repl(lines("local words", "/save offline-chat"))
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    resumed = run_repl(lines("more"), resume="offline-chat")
    assert resumed.repl.state.backend.name == "local"
    assert fake_server.requests == []
    switched = run_repl(lines("now remote"), resume="offline-chat", flags={"backend": "openai"})
    assert switched.repl.state.backend.name == "openai"
    assert [m.backend for m in switched.conversation.messages][-2:] == ["openai", "openai"]
    assert fake_server.last("/chat/completions").body["model"] == "gpt-4o-mini"


def test_context_shows_exact_figures_that_llama_cpp_confirms(offline) -> None:
    """/context on the embedded model (in its worker): no `~`. The second request carries the
    system prompt and history /context showed, then the first question again, which costs what
    it did the first time: so llama.cpp's prompt_tokens for it are the first's + history sent."""
    result = run_repl(lines("Say hi.", "/context", "Say hi."))
    report = result.output[result.output.index("context policy") :]
    assert "~" not in report.splitlines()[1]  # the bar
    rows = dict(re.findall(r"^(system prompt|history sent) +([\d,~]+)", report, re.MULTILINE))
    assert rows.keys() == {"system prompt", "history sent"} and "~" not in "".join(rows.values())
    assert int(rows["system prompt"]) == 4 + 21  # the reply's priming, SmolLM2's system message
    first, first_reply, again, again_reply = result.conversation.messages
    assert first.content == again.content
    assert first_reply.usage is not None and again_reply.usage is not None
    sent = int(rows["history sent"].replace(",", ""))
    assert again_reply.usage.prompt_tokens == first_reply.usage.prompt_tokens + sent
