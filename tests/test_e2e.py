"""End-to-end: the installed `chatrepl` program in a pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pexpect

TIMEOUT = 20
# The prompt is "chat> " with colour codes between the mode and the ">".
PROMPT = {mode: mode + r"(?:\x1b\[[0-9;]*m)*>" for mode in ("chat", "complete")}


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    """Start the installed program (or `python -m chatrepl` when not on PATH)."""
    program = shutil.which("chatrepl")
    command, argv = (
        (program, list(args)) if program else (sys.executable, ["-m", "chatrepl", *args])
    )
    return pexpect.spawn(
        command, argv, env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 120)
    )


def write_session(home: Path, name: str, question: str, answer: str) -> Path:
    """A saved session of one exchange, as chatrepl writes it."""
    from chatrepl.conversation import session_format
    from chatrepl.conversation.conversation import Conversation
    from chatrepl.conversation.messages import Message

    convo = Conversation(name=name, chat_model="gpt-4o-mini")
    convo.messages = [Message("user", question), Message("assistant", answer)]
    path = home / "sessions" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(session_format.dumps(convo))
    return path


def type_line(child: pexpect.spawn, text: str) -> None:
    child.send(text + "\r")


def test_chat_switch_save_exit_then_resume(chatrepl_env) -> None:
    chatrepl_env.server.reply = "The **answer** is 42."
    child = spawn(chatrepl_env.env)
    child.expect(PROMPT["chat"])
    type_line(child, "what is the answer?")
    child.expect("answer")
    child.expect("tokens")  # usage footer: the fake server reports usage
    child.expect(PROMPT["chat"])
    type_line(child, "/complete")
    child.expect(PROMPT["complete"])
    type_line(child, "/save e2e")
    child.expect("saved a copy as e2e")
    type_line(child, "/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    saved = json.loads((chatrepl_env.home / "sessions" / "e2e.json").read_text())
    assert saved["mode"] == "complete" and len(saved["messages"]) == 2

    child = spawn(chatrepl_env.env, "--resume", "e2e")
    child.expect("what is the answer")
    child.expect("42")
    child.expect(PROMPT["complete"])  # the session's mode comes back too
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_ctrl_c_stops_a_slow_reply_and_keeps_the_chat(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.reply = "word " * 400
    server.delay = 0.05
    child = spawn(chatrepl_env.env)
    child.expect(PROMPT["chat"])
    type_line(child, "talk slowly")
    child.expect("waiting for gpt-4o-mini")  # the spinner until the first token
    child.expect("word")
    child.sendintr()
    child.expect("interrupted", timeout=5)
    child.expect(PROMPT["chat"])
    assert server.cancelled_event.wait(5)  # the HTTP stream was closed
    server.delay = 0
    server.reply = "still alive"
    type_line(child, "are you there?")
    child.expect("still alive")
    child.expect(PROMPT["chat"])
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    saved = next((chatrepl_env.home / "sessions").glob("*.json"))
    messages = json.loads(saved.read_text())["messages"]
    assert messages[1]["interrupted"] is True and messages[1]["content"].startswith("word")
    assert messages[3]["content"] == "still alive"


def test_no_key_and_no_url_prints_one_line_and_exits_1(chatrepl_env) -> None:
    env = {k: v for k, v in chatrepl_env.env.items() if not k.startswith("OPENAI_")}
    child = spawn(env, "--backend", "openai")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    lines = [line for line in child.before.splitlines() if line.strip()]
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0] and "OPENAI_BASE_URL" in lines[0]


def test_ctrl_x_ctrl_e_edits_the_input_in_the_editor(chatrepl_env, tmp_path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'written in the editor' > \"$1\"\n")
    editor.chmod(0o755)
    child = spawn({**chatrepl_env.env, "VISUAL": str(editor)})
    child.expect(PROMPT["chat"])
    child.send("draft")
    child.sendcontrol("x")
    child.sendcontrol("e")
    child.expect("written in the editor")
    child.send("\r")
    child.expect("Echo: written in the editor")
    child.expect(PROMPT["chat"])
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "written in the editor"


def test_a_corrupt_message_found_after_the_prompt_ends_it_with_one_line(chatrepl_env) -> None:
    """A resumed session's messages are parsed once the prompt is up: a corrupt one ends the
    REPL at once, with the error and exit status 1, and the file is left as it was."""
    path = write_session(chatrepl_env.home, "fragile", "hello", "hi")
    text = path.read_text().replace('"role": "assistant"', '"role": 3')
    path.write_text(text)
    child = spawn(chatrepl_env.env, "--resume", "fragile")
    child.expect(r"error: cannot read session file \S+fragile\.json: message 2")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert path.read_text() == text


def test_ctrl_d_right_after_a_resumed_sessions_last_exchanges_leaves(chatrepl_env) -> None:
    """The last exchanges are written above the prompt with the keyboard in cooked mode, where
    a Ctrl-D is swallowed by the terminal: the slow set-up (imports in threads that could keep
    the REPL from getting back to raw mode at once) waits until that is over."""
    write_session(chatrepl_env.home, "resumed", "a question", "The last words of the session.")
    for _ in range(3):
        child = spawn(chatrepl_env.env, "--resume", "resumed")
        child.expect("The last words of the session")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
