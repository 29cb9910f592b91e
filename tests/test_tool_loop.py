"""The tool loop end to end: the REPL and `ask` against the fake server, which streams tool-call
deltas (arguments in pieces, parallel calls); every request is checked against the spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from tests.harness import CTRL_C, lines, run_repl

FILES = Path(__file__).parent / "tool_files"
FUNCTIONS = str(FILES / "functions.py")


def config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def sent_roles(body: dict) -> list[str]:
    return [m["role"] for m in body["messages"]]


def test_a_call_confirmed_yes_runs_and_the_model_continues(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("add", {"a": 2, "b": 40}), text="Let me add.")
    result = run_repl(lines("what is 2 + 40?", "y"), flags={"functions": (FUNCTIONS,)})
    first, second = server.bodies("/chat/completions")
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "big", "explode", "greet"]
    assert sent_roles(second) == ["user", "assistant", "tool"]
    assert second["messages"][2]["content"] == "42"
    assert second["messages"][1]["tool_calls"][0]["function"]["arguments"] == ('{"a": 2, "b": 40}')
    assert "tool add(a=2, b=40)" in result.output
    assert "Tool said: 42" in result.output
    roles = [m.role for m in result.conversation.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_declining_sends_a_declined_result_and_returns_to_the_prompt(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("explode", {"reason": "x"}))
    result = run_repl(lines("do it", "n", "next question"), flags={"functions": (FUNCTIONS,)})
    bodies = server.bodies("/chat/completions")
    assert len(bodies) == 2  # no follow-up request after the decline
    assert bodies[1]["messages"][2] == {
        "role": "tool",
        "tool_call_id": bodies[1]["messages"][1]["tool_calls"][0]["id"],
        "content": "declined by the user: the tool was not run",
    }
    assert bodies[1]["messages"][-1]["content"] == "next question"
    assert "boom" not in result.output


def test_edit_the_arguments_then_always(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("add", {"a": 1}))
    server.queue_tool_calls(("add", {"a": 5}))
    keys = lines("first", "e") + "\x15" + lines('{"a": 100}', "second", "a")
    server.queue("done")
    result = run_repl(keys, flags={"functions": (FUNCTIONS,)})
    tool_results = [m.content for m in result.conversation.messages if m.role == "tool"]
    assert tool_results[0] == "102"  # the edited arguments ran (b defaults to 2)
    calls = [m.tool_calls[0].arguments for m in result.conversation.messages if m.tool_calls]
    assert calls[0] == '{"a": 100}'


def test_always_allows_the_tool_for_the_rest_of_the_session(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("add", {"a": 1}))
    server.queue("ok")
    server.queue_tool_calls(("add", {"a": 2}))
    result = run_repl(lines("one", "a", "two"), flags={"functions": (FUNCTIONS,)})
    assert [m.content for m in result.conversation.messages if m.role == "tool"] == ["3", "4"]
    assert result.output.count("run add?") <= 1


def test_parallel_calls_with_split_arguments_are_assembled(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(
        ("add", {"a": 1, "b": 1}), ("greet", {"name": "Ada", "style": "formal"})
    )
    result = run_repl(lines("both"), flags={"functions": (FUNCTIONS,), "tools_auto": True})
    results = [m.content for m in result.conversation.messages if m.role == "tool"]
    assert results == ["2", "Good day, Ada"]
    follow_up = server.bodies("/chat/completions")[-1]
    assert sent_roles(follow_up) == ["user", "assistant", "tool", "tool"]


def test_the_step_limit_stops_the_loop_with_a_clear_line(chatrepl_env) -> None:
    config(chatrepl_env.home, "tool_steps = 2\n")
    server = chatrepl_env.server
    for _ in range(3):
        server.queue_tool_calls(("add", {"a": 1}))
    result = run_repl(lines("loop"), flags={"functions": (FUNCTIONS,), "tools_auto": True})
    assert len(server.bodies("/chat/completions")) == 2
    assert "stopped: the tool-call step limit was reached" in result.output


def test_a_tool_that_raises_is_an_error_result_and_one_line(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("explode", {"reason": "disk"}))
    result = run_repl(lines("go"), flags={"functions": (FUNCTIONS,), "tools_auto": True})
    assert "explode failed: RuntimeError: boom: disk" in result.output
    assert "Traceback" not in result.output
    assert "Tool said: error: RuntimeError: boom: disk" in result.output


def test_ctrl_c_at_the_confirmation_stops_the_loop_and_keeps_the_history(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("add", {"a": 1}), text="Calling a tool.")
    result = run_repl([lines("go"), CTRL_C, lines("after")], flags={"functions": (FUNCTIONS,)})
    roles = [m.role for m in result.conversation.messages]
    assert roles[:2] == ["user", "assistant"] and roles[-1] == "assistant"
    assert result.conversation.messages[1].tool_calls  # kept, with no result
    last = server.bodies("/chat/completions")[-1]
    # The unanswered call is not sent (the API would refuse it); its text is.
    assert sent_roles(last) == ["user", "assistant", "user"]
    assert "tool_calls" not in last["messages"][1]


def test_tool_calls_are_saved_resumed_and_resent_in_order(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.queue_tool_calls(("add", {"a": 3}))
    run_repl(
        lines("add please", "/save tooly"), flags={"functions": (FUNCTIONS,), "tools_auto": True}
    )
    saved = json.loads((chatrepl_env.home / "sessions" / "tooly.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "tool", "assistant"]
    resumed = run_repl(lines("/history", "and then?"), resume="tooly")
    assert "tool add" in resumed.output and "result of add" in resumed.output
    last = server.bodies("/chat/completions")[-1]
    assert sent_roles(last) == ["user", "assistant", "tool", "assistant", "user"]
    assert last["messages"][2]["tool_call_id"] == last["messages"][1]["tool_calls"][0]["id"]


def test_the_tools_command(chatrepl_env) -> None:
    output = run_repl(
        lines("/tools", "/tools enable read_file", "/tools auto add", "/tools off", "/tools bogus"),
        flags={"functions": (FUNCTIONS,)},
    ).output
    import re

    def row(name: str) -> list[str]:
        found = re.findall(rf"^{name} +(.+?) {{2,}}(yes|no) +(.+?) *$", output, re.MULTILINE)
        return [" | ".join(match) for match in found]

    assert row("read_file") == [
        "built-in | no | without asking (read-only)",
        "built-in | yes | without asking (read-only)",  # after /tools enable read_file
        "built-in | yes | without asking (read-only)",
        "built-in | yes | without asking (read-only)",
    ]
    assert row("add")[1:3] == [
        "python functions.py | yes | after asking",
        "python functions.py | yes | without asking (allowed)",  # after /tools auto add
    ]
    statuses = re.findall(r"^tools (on|off)$", output, re.MULTILINE)
    assert statuses == ["on", "on", "on", "off"]
    assert "error: use /tools, /tools on|off, /tools enable|disable|auto NAME" in output


def test_tools_off_sends_no_tools(chatrepl_env) -> None:
    run_repl(lines("/tools off", "hello"), flags={"functions": (FUNCTIONS,)})
    assert "tools" not in chatrepl_env.server.last("/chat/completions").body


def test_no_tools_configured_sends_no_tools(chatrepl_env) -> None:
    run_repl(lines("hello"))
    assert "tools" not in chatrepl_env.server.last("/chat/completions").body


def test_ask_with_functions_and_yes_tools(chatrepl_env) -> None:
    chatrepl_env.server.queue_tool_calls(("add", {"a": 20, "b": 22}))
    result = CliRunner().invoke(app, ["ask", "--functions", FUNCTIONS, "--yes-tools", "sum?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("Tool said: 42")
    assert "tool add(a=20, b=22)" in result.stderr


def test_ask_without_a_terminal_refuses_unsafe_tools(chatrepl_env) -> None:
    chatrepl_env.server.queue_tool_calls(("add", {"a": 1}))
    done = subprocess.run(
        [sys.executable, "-m", "chatrepl", "ask", "--functions", FUNCTIONS, "question"],
        input="piped text that must not answer the confirmation\ny\ny\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )
    assert done.returncode == 0, done.stderr
    assert "refused (no terminal to confirm" in done.stderr
    assert "Tool said: declined by the user" not in done.stdout  # the loop stopped there
    bodies = chatrepl_env.server.bodies("/chat/completions")
    assert len(bodies) == 1


def test_ask_tool_enables_a_builtin(chatrepl_env, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("ship on friday")
    chatrepl_env.server.queue_tool_calls(("read_file", {"path": str(notes)}))
    result = CliRunner().invoke(app, ["ask", "--tool", "read_file", "what do my notes say?"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("Tool said: ship on friday")
    body = chatrepl_env.server.bodies("/chat/completions")[0]
    assert [t["function"]["name"] for t in body["tools"]] == ["read_file"]


def test_ask_with_an_unknown_tool_is_one_line(chatrepl_env) -> None:
    result = CliRunner().invoke(app, ["ask", "--tool", "teleport", "hi"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown tool 'teleport': known tools are")


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_ask_confirms_on_the_terminal_while_stdin_is_piped(chatrepl_env) -> None:
    import pexpect

    chatrepl_env.server.queue_tool_calls(("add", {"a": 7}))
    command = f"echo 'y' | {sys.executable} -m chatrepl ask --functions {FUNCTIONS} 'add?'"
    child = pexpect.spawn("bash", ["-c", command], env=os.environ, encoding="utf-8", timeout=60)
    child.expect_exact("run add? [y]es / [n]o / [e]dit arguments / [a]lways for add")
    child.sendline("y")
    child.expect_exact("Tool said: 9")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_an_mcp_tool_in_the_repl(chatrepl_env) -> None:
    pytest.importorskip("mcp")
    server_file = FILES / "mcp_server.py"
    config(chatrepl_env.home, f'[mcp.demo]\ncommand = ["{sys.executable}", "{server_file}"]\n')
    chatrepl_env.server.queue_tool_calls(("shout", {"text": "hello mcp"}))
    result = run_repl(lines("shout it", "y"))
    first = chatrepl_env.server.bodies("/chat/completions")[0]
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["count_words", "shout"]
    assert "Tool said: HELLO MCP" in result.output
