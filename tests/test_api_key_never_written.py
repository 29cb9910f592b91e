"""The API key never appears in a file chatrepl writes (sessions, history, locks, anything under
its home), in an error message (even one where the server repeats the key), in `--debug` output,
or in `config show`: a realistic run with a unique key, then every file and output is searched."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.config import load_settings
from chatrepl.errors import (
    BackendError,
    ErrorBoundary,
    describe_unexpected,
    hide,
    masked,
)
from tests.harness import lines, run_repl

runner = CliRunner()
KEY = f"sk-proj-{uuid.uuid4().hex}KEYMARKER{uuid.uuid4().hex}"
ECHO = f"Incorrect API key provided: {KEY}. You can find your API key at https://example.com."


def cli(*args: str) -> list[str]:
    """Run a chatrepl command in-process; its stdout and stderr."""
    from chatrepl.cli.typer_app import app

    result = runner.invoke(app, list(args))
    return [result.stdout, result.stderr]


def debug_run(env: dict[str, str], *args: str) -> list[str]:
    """The real program under --debug, in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "chatrepl", *args], env=env, capture_output=True, text=True
    )
    return [result.stdout, result.stderr]


def files_holding(root: Path, secret: str) -> list[Path]:
    """Every file under root whose bytes contain secret."""
    return [
        path for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.fixture
def keyed(chatrepl_env, monkeypatch: pytest.MonkeyPatch):
    """chatrepl_env with a unique API key that the server insists on."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    chatrepl_env.server.api_key = KEY
    return chatrepl_env


def test_the_key_is_in_no_file_and_no_output(keyed, tmp_path: Path) -> None:
    server = keyed.server
    outputs = [
        run_repl(
            lines("hello there", "/save keyed", "/sessions", "/history", "/backend", "/models")
        ).output
    ]
    assert server.last("/chat/completions").headers["authorization"] == f"Bearer {KEY}"
    server.fail(401, ECHO)  # a server that repeats the key in its error
    failed = run_repl(lines("this one is refused"), resume="keyed").output
    assert "authentication failed" in failed and "sk-…" in failed
    outputs.append(failed)
    outputs += cli("ask", "--session", "keyed", "and then?")
    outputs += cli("ask", "--json", "hi")
    outputs += cli("config", "show")
    outputs += cli("sessions", "list")
    outputs += cli("sessions", "show", "keyed")
    server.fail(401, ECHO)
    outputs += cli("ask", "--debug", "refused again")
    server.fail(401, ECHO)
    outputs += debug_run(dict(os.environ), "ask", "--debug", "--session", "keyed", "and now?")
    assert "# api_key is set (not shown)" in "".join(outputs)
    assert "authentication failed" in outputs[-1]
    assert [text for text in outputs if KEY in text] == []
    assert files_holding(tmp_path, KEY) == []
    assert (keyed.home / "sessions" / "keyed.json").exists()
    assert (keyed.home / "history").read_text().count("hello there") == 1


def test_errors_mask_a_hidden_key_wherever_it_appears() -> None:
    hide(KEY)
    assert KEY not in str(BackendError(ECHO))
    assert str(BackendError(ECHO)).startswith("Incorrect API key provided: sk-…")
    assert KEY not in describe_unexpected(RuntimeError(f"boom {KEY}"))
    reported: list[str] = []
    with ErrorBoundary(reported.append):
        raise ValueError(f"a bug that shows {KEY}")
    assert reported and KEY not in reported[0]
    assert masked("sk-short-key!") == "sk-short-key!"  # nothing hidden, nothing changed


def test_a_short_key_is_hidden_whole() -> None:
    settings = load_settings(environ={"OPENAI_API_KEY": "tiny-key-1"}, path=Path("/nonexistent"))
    assert settings.api_key == "tiny-key-1"
    assert str(BackendError("bad key tiny-key-1")) == "bad key [hidden]"


@pytest.mark.parametrize("bad", [KEY + "\n", KEY[:20] + " " + KEY[20:], KEY + "é"])
def test_a_key_no_request_can_carry_is_one_line_without_the_key(chatrepl_env, monkeypatch, bad):
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    stdout, stderr = cli("ask", "hi")
    assert stderr.startswith("error: OPENAI_API_KEY (api_key) has a character no request can")
    assert stderr.count("\n") == 1 and KEY[8:] not in stdout + stderr
    assert chatrepl_env.server.requests == []
