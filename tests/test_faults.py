"""The fault suite: every way a server can misbehave, met by the REPL and by `ask`.

Each fault ends with one `error:` line, no traceback, nothing lost (the partial reply kept and
saved, or the turn undone and the text offered again), within the timeout the test sets.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pexpect
import pytest
from typer.testing import CliRunner

from chatrepl.backends.openai_backend import MAX_REPLY_CHARS
from chatrepl.cli.typer_app import app
from tests.fakeserver import FAULT_KINDS, FakeOpenAI
from tests.harness import lines, run_repl
from tests.test_e2e import PROMPT, spawn, type_line

FULL = "a reply long enough to be cut off somewhere in the middle"
TIMEOUT = "1"  # seconds: the longest wait for the server's next byte in these tests
pytestmark = pytest.mark.timeout(30)  # a fault that hangs the client fails the test


@dataclass(frozen=True)
class Case:
    """A fault, what the error line says, and whether part of the reply arrives first."""

    kind: str
    error: str
    partial: bool
    after: int = 3  # SSE events before the fault: the role chunk and two pieces of text
    retries: int = 2  # the SDK's retries (a retried hang would simply succeed the second time)

    def inject(self, server: FakeOpenAI) -> None:
        """Make the server's next generation request meet this fault."""
        if self.kind == "retry_after":
            server.fail(503, retry_after=3600)
        else:
            server.inject(self.kind, after=self.after)


CASES = [
    Case("hang", "no data from the server for 1 s", partial=False, retries=0),
    Case("stall", "no data from the server for 1 s", partial=True),
    Case("bad_json", "data that is not valid JSON", partial=True),
    Case("html", "answered with a web page, not the API", partial=False),
    Case("error_event", "the server sent an error: The server had an error", partial=True),
    Case("huge", f"the reply passed {MAX_REPLY_CHARS:,} characters", partial=True),
    Case("retry_after", "it asks to wait 60 min: try again after", partial=False),
    Case("reset", "broke off mid-reply", partial=True),
    Case("no_choices", "answered without any choices", partial=False),
]
IDS = [case.kind for case in CASES]


def test_every_fault_mode_is_in_the_suite() -> None:
    assert set(FAULT_KINDS) <= set(IDS)


@pytest.fixture
def env(chatrepl_env, monkeypatch):
    """The fake server, a 1 s timeout and the SDK's retries on (they must not wait an hour)."""
    monkeypatch.setenv("CHATREPL_TIMEOUT", TIMEOUT)
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", "2")
    chatrepl_env.server.reply = FULL
    return chatrepl_env


def meet(env, monkeypatch, case: Case) -> None:
    """Set the case's retries and arm its fault."""
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", str(case.retries))
    case.inject(env.server)


def wait_for_the_question(server: FakeOpenAI, seconds: float = 10) -> None:
    """Return once a chat request has reached the server (other requests may come first)."""
    deadline = time.monotonic() + seconds
    while not server.bodies("/chat/completions"):
        assert time.monotonic() < deadline, "the question never reached the server"
        time.sleep(0.05)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def check_partial(content: str, case: Case) -> None:
    """The kept part of the reply is what arrived: a beginning of it, not all of it."""
    if case.kind == "huge":
        assert content == "x" * MAX_REPLY_CHARS
    else:
        assert content and FULL.startswith(content) and content != FULL


def saved_messages(home, name: str) -> list[dict]:
    return json.loads((home / "sessions" / f"{name}.json").read_text())["messages"]


# ---------------------------------------------------------------- the REPL


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_repl_meets_the_fault_with_one_line_and_loses_nothing(env, monkeypatch, case) -> None:
    meet(env, monkeypatch, case)
    # Enter again once the prompt is back: an undone turn resends its text, else a new one.
    result = run_repl([lines("tell me"), "\r" if not case.partial else lines("and then?")])
    errors = error_lines(result.output)
    assert len(errors) == 1 and case.error in errors[0], result.output
    assert "Traceback" not in result.output
    messages = result.conversation.messages
    assert sum(m.role == "user" for m in messages) == (2 if case.partial else 1)
    if case.partial:
        question, partial, *_rest = messages
        assert question.content == "tell me" and partial.interrupted
        check_partial(partial.content, case)
        assert "(interrupted: the partial reply is kept)" in result.output
    else:  # undone, offered again, resent: answered this time
        assert [m.content for m in messages] == ["tell me", FULL]
    on_disk = saved_messages(env.home, result.conversation.name)
    assert [m["content"] for m in on_disk] == [m.content for m in messages]
    assert on_disk[1].get("interrupted", False) is case.partial


# ---------------------------------------------------------------- `chatrepl ask`


def ask(*args: str):
    return CliRunner().invoke(app, ["ask", *args])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ask_meets_the_fault_with_one_line_and_exit_1(env, monkeypatch, case) -> None:
    assert ask("first", "--session", "work").exit_code == 0
    meet(env, monkeypatch, case)
    result = ask("tell me", "--session", "work", "--timeout", TIMEOUT)
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and case.error in errors[0], result.stderr
    assert "Traceback" not in result.output
    on_disk = saved_messages(env.home, "work")
    assert [m["content"] for m in on_disk[:2]] == ["first", FULL]  # intact
    if case.partial:  # printed before the error, and saved
        check_partial(result.stdout.rstrip("\n"), case)
        assert on_disk[3]["interrupted"] is True
        check_partial(on_disk[3]["content"], case)
    else:
        assert result.stdout == ""


def test_ask_no_stream_meets_faults_with_one_line(env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", "0")
    for kind in ("hang", "html", "bad_json", "error_event", "no_choices", "reset", "huge"):
        env.server.inject(kind)
        result = ask("tell me", "--no-stream", "--timeout", TIMEOUT)
        assert result.exit_code == 1, (kind, result.output)
        assert len(error_lines(result.stderr)) == 1, (kind, result.stderr)
        assert "Traceback" not in result.output and result.stdout == ""


# ---------------------------------------------------------------- retries and timeouts


def test_each_retry_is_one_dim_line_then_the_reply(env) -> None:
    env.server.fail(429, retry_after=0.2)
    env.server.fail(503, retry_after=0.2)
    result = run_repl(lines("hello"))
    assert "rate limited; retrying in 0.2 s (1 of 2)" in result.output
    assert "server error 503; retrying in 0.2 s (2 of 2)" in result.output
    assert FULL in result.output and not error_lines(result.output)
    assert len(env.server.bodies("/chat/completions")) == 3


def test_ask_shows_retries_on_stderr(env) -> None:
    env.server.fail(500)
    result = ask("hello")
    assert result.exit_code == 0
    assert result.stdout == FULL + "\n"
    assert "server error 500; retrying in" in result.stderr and "(1 of 2)" in result.stderr


def test_a_retry_after_over_a_minute_is_not_waited_for(env) -> None:
    env.server.fail(429, retry_after=61)
    result = ask("hello")
    assert result.exit_code == 1
    assert "rate limited or out of quota (429)" in result.stderr
    assert "it asks to wait 61 s: try again after" in result.stderr
    assert "retrying" not in result.stderr
    assert len(env.server.bodies("/chat/completions")) == 1


def test_a_silent_server_is_retried_with_a_notice(env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", "1")
    env.server.inject("hang")
    result = ask("hello", "--timeout", "0.5")
    assert "no answer from the server; retrying in" in result.stderr and "(1 of 1)" in result.stderr
    assert result.stdout == FULL + "\n" and result.exit_code == 0


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: a connection to it is never accepted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_connect_timeout_is_its_own_limit(env, monkeypatch, unanswered_port: int) -> None:
    base_url = f"http://127.0.0.1:{unanswered_port}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("CHATREPL_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("CHATREPL_MAX_RETRIES", "0")
    result = run_repl(lines("anyone?"))
    assert error_lines(result.output) == [
        f"error: cannot connect to {base_url} within 0.5 s: "
        "is the server running and the URL right?"
    ]
    assert result.conversation.messages == []


def test_bad_timeouts_are_one_line(env, monkeypatch) -> None:
    for value in ("0", "-3", "inf"):
        result = ask("hello", "--timeout", value)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: setting timeout must be a number of seconds")
    monkeypatch.setenv("CHATREPL_CONNECT_TIMEOUT", "soon")
    result = ask("hello")
    assert result.exit_code == 1
    assert result.stderr == "error: setting connect_timeout must be a number, not 'soon'\n"
    assert not env.server.bodies("/chat/completions")


# ---------------------------------------------------------------- Ctrl-C at every wait


def test_ctrl_c_before_the_headers_cancels_the_turn(env) -> None:
    env.server.inject("hang")
    child = spawn(env.env, "--timeout", "60")
    child.expect(PROMPT["chat"])
    type_line(child, "are you there")
    wait_for_the_question(env.server)  # sent: now waiting for the headers
    child.sendintr()
    child.expect(r"\(cancelled\)", timeout=5)
    child.expect(PROMPT["chat"], timeout=5)
    child.expect("are you there", timeout=5)  # the text is back in the input line
    assert env.server.cancelled_event.wait(5)  # the request was abandoned, not left open
    child.sendcontrol("c")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_ctrl_c_in_a_stalled_stream_keeps_the_partial_reply(env) -> None:
    env.server.inject("stall", after=3)
    child = spawn(env.env, "--timeout", "60")
    child.expect(PROMPT["chat"])
    type_line(child, "go on")
    child.expect("a reply")
    child.sendintr()
    child.expect("interrupted", timeout=5)
    child.expect(PROMPT["chat"], timeout=5)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    saved = next((env.home / "sessions").glob("*.json"))
    reply = json.loads(saved.read_text())["messages"][1]
    assert reply["interrupted"] is True and reply["content"] == FULL[:8]


def test_ctrl_c_during_a_retry_back_off(env) -> None:
    env.server.fail(503, retry_after=30)
    child = spawn(env.env)
    child.expect(PROMPT["chat"])
    type_line(child, "hello")
    child.expect(r"server error 503; retrying in 30 s \(1 of 2\)")
    child.sendintr()
    child.expect(r"\(cancelled\)", timeout=5)
    child.expect(PROMPT["chat"], timeout=5)
    child.sendcontrol("c")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert len(env.server.bodies("/chat/completions")) == 1


def test_ctrl_c_while_connecting(env, monkeypatch, unanswered_port: int) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{unanswered_port}/v1")
    child = spawn(env.env)  # connect_timeout 10 s: Ctrl-C comes first
    child.expect(PROMPT["chat"])
    type_line(child, "hello")
    child.expect("waiting for")
    time.sleep(2)  # the client is built and the connection attempt under way (it never ends)
    child.sendintr()
    child.expect(r"\(cancelled\)", timeout=5)
    child.expect(PROMPT["chat"], timeout=5)
    child.sendcontrol("c")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_ctrl_c_in_ask_before_the_first_token_exits_130(env) -> None:
    env.server.inject("hang")
    child = spawn(env.env, "ask", "hello")
    wait_for_the_question(env.server)  # now waiting for the server
    child.sendintr()
    child.expect(pexpect.EOF, timeout=5)
    child.close()
    assert child.exitstatus == 130
    assert "Traceback" not in child.before
