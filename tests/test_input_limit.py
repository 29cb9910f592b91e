"""A message over max_input_bytes (a paste, piped stdin) is refused in one line naming the size,
before anything is sent or saved; piped input is never read past the limit, so endless input
cannot hang `chatrepl ask`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.engine.input_limit import InputTooLarge, check_input_size, megabytes

runner = CliRunner()
MB = 1_000_000


def ask(*args: str, input: bytes | str | None = None):
    return runner.invoke(app, ["ask", *args], input=input)


@pytest.mark.parametrize(
    ("size", "shown"),
    [(10_200_000, "10.2 MB"), (4 * MB, "4 MB"), (500_000, "0.5 MB"), (2_048, "2,048 bytes")],
)
def test_sizes_are_named_for_a_person(size: int, shown: str) -> None:
    assert megabytes(size) == shown


def test_the_limit_counts_bytes_not_characters() -> None:
    check_input_size("é" * 500, 1_000)
    with pytest.raises(InputTooLarge, match="the message is 1,002 bytes, over the 1,000 bytes"):
        check_input_size("é" * 501, 1_000)


def test_ten_megabytes_piped_into_ask_are_refused_in_one_line(chatrepl_env) -> None:
    result = ask("summarize", input=b"x" * (10 * MB))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the piped input is over the 4 MB limit (max_input_bytes); nothing was sent"
    ]
    assert chatrepl_env.server.requests == []
    assert not (chatrepl_env.home / "sessions").exists() or not any(
        (chatrepl_env.home / "sessions").iterdir()
    )


def send_everything(home: Path, *settings: str) -> None:
    """No context-window check: what is under the input limit goes to the server whole."""
    (home / "config.toml").write_text("\n".join(['context = "off"', *settings]) + "\n")


def test_three_megabytes_piped_into_ask_are_sent(chatrepl_env) -> None:
    send_everything(chatrepl_env.home)
    chatrepl_env.server.reply = "a summary"
    text = "a line of a build log\n" * (3 * MB // 22)
    result = ask("summarize", input=text)
    assert result.exit_code == 0, result.output
    assert result.stdout == "a summary\n"
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == text.strip() + "\n\nsummarize"


def test_words_and_stdin_together_over_the_limit(chatrepl_env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_MAX_INPUT_BYTES", "1000")
    result = ask("y" * 600, input="x" * 600)
    assert result.exit_code == 1
    assert "error: the message is 1,202 bytes, over the 1,000 bytes limit" in result.stderr
    assert chatrepl_env.server.requests == []


def test_the_limit_is_a_setting(chatrepl_env) -> None:
    send_everything(chatrepl_env.home, "max_input_bytes = 20_000_000")
    chatrepl_env.server.reply = "ok"  # not an echo of 10 MB
    result = ask("summarize", input=b"x" * (10 * MB))
    assert result.exit_code == 0, result.stderr
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert len(sent) == 10 * MB + len("\n\nsummarize")


def test_invalid_utf8_on_stdin_is_replaced_not_a_traceback(chatrepl_env) -> None:
    result = ask("what is this", input=b"caf\xe9 \xff\xfe ok")
    assert result.exit_code == 0, result.output
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "caf\ufffd \ufffd\ufffd ok\n\nwhat is this"


def test_endless_piped_input_is_refused_not_a_hang(chatrepl_env) -> None:
    env = {**os.environ, "CHATREPL_MAX_INPUT_BYTES": "100000"}
    command = f"yes | {sys.executable} -m chatrepl ask hi"
    result = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the piped input is over the 0.1 MB limit (max_input_bytes); nothing was sent"
    )
    assert chatrepl_env.server.requests == []
