"""Getting text out, end to end in a pseudo-terminal: /history through $PAGER when it is taller
than the screen (40 rows here), printed when it is not; /copy by OSC 52 to the terminal."""

from __future__ import annotations

import base64
import re

import pexpect

from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message
from chatrepl.conversation.store import SessionStore
from tests.test_e2e import PROMPT, spawn, type_line

PAGER = "sed s/^/PAGED:/"  # a pager that marks every line it shows


def text_env(chatrepl_env) -> dict[str, str]:
    """The test's environment with a marking pager and no clipboard tool, tmux or display."""
    env = {k: v for k, v in chatrepl_env.env.items() if k not in ("TMUX", "DISPLAY", "LESS")}
    env.pop("WAYLAND_DISPLAY", None)
    return {**env, "PAGER": PAGER}


def test_a_long_history_is_paged_a_short_one_printed(chatrepl_env) -> None:
    conversation = Conversation(name="long", chat_model="gpt-4o-mini")
    for index in range(30):
        conversation.add(Message("user", f"question {index}"))
        conversation.add(Message("assistant", f"answer {index}"))
    SessionStore(chatrepl_env.home / "sessions").save(conversation)
    child = spawn(text_env(chatrepl_env), "--resume", "long")
    child.expect(PROMPT["chat"])
    type_line(child, "/history")
    child.expect("PAGED:.*question 0")
    child.expect("PAGED:.*answer 29")
    child.expect(PROMPT["chat"])
    type_line(child, "/new")
    child.expect("new conversation")
    type_line(child, "short one")
    child.expect("Echo: short one")
    child.expect(PROMPT["chat"])
    type_line(child, "/history")
    child.expect("user · chat")
    shown = child.before
    child.expect("Echo: short one")
    shown += child.before
    child.expect(PROMPT["chat"])
    assert "PAGED:" not in shown + child.before
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_copy_sends_osc52_to_the_terminal(chatrepl_env) -> None:
    chatrepl_env.server.reply = "Run:\n\n```sh\necho copied\n```\n"
    child = spawn(text_env(chatrepl_env))
    child.expect(PROMPT["chat"])
    type_line(child, "a command please")
    child.expect(PROMPT["chat"])
    type_line(child, "/copy code")
    child.expect(r"\x1b\]52;c;([A-Za-z0-9+/=]+)\x07")
    assert base64.b64decode(child.match.group(1)) == b"echo copied\n"
    child.expect(re.escape("copied code block 1 of the last reply: 12 characters (OSC 52)"))
    child.expect(PROMPT["chat"])
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
