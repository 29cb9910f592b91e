"""The confirmation dialogue before a tool runs, over any way of reading a line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from chatrepl.conversation.messages import ToolCall
from chatrepl.tools.toolbox import Approval, Approver, Tool, parse_arguments

QUESTION = "run {name}? [y]es / [n]o / [e]dit arguments / [a]lways for {name} this session: "
ANSWERS = {"y": "yes", "yes": "yes", "n": "no", "no": "no", "a": "always", "always": "always"}


def ask_approval(
    read_line: Callable[[str, str], str],
    tell: Callable[[str], None],
    tool: Tool,
    call: ToolCall,
) -> Approval:
    """Ask until a valid answer; `read_line(question, default)` returns the typed line.

    An empty answer, end of input or Ctrl-D declines: nothing runs unless the user says so.
    """
    while True:
        try:
            answer = read_line(QUESTION.format(name=tool.name), "").strip().lower()
        except EOFError:
            return Approval("no")
        if answer in ("e", "edit"):
            edited = _edit(read_line, tell, call)
            if edited is not None:
                return Approval("yes", edited)
            continue
        if answer in ANSWERS or not answer:
            return Approval(ANSWERS.get(answer, "no"))  # type: ignore[arg-type]
        tell("answer y, n, e or a")


def _edit(
    read_line: Callable[[str, str], str], tell: Callable[[str], None], call: ToolCall
) -> str | None:
    """The edited arguments as JSON text, or None when they are not a JSON object."""
    try:
        current = json.dumps(parse_arguments(call.arguments), ensure_ascii=False)
    except ValueError:
        current = call.arguments
    try:
        edited = read_line("arguments (JSON): ", current)
        parse_arguments(edited)
    except EOFError:
        return None
    except ValueError as error:
        tell(str(error))
        return None
    return edited


def terminal_approver(tell: Callable[[str], None]) -> Approver | None:
    """An approver that asks on the controlling terminal (/dev/tty), never on a piped stdin;
    None when there is no terminal (unsafe calls are then refused)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    reader = os.fdopen(fd, "r", encoding="utf-8", errors="replace")
    writer = os.fdopen(os.dup(fd), "w", encoding="utf-8")

    def read_line(question: str, default: str) -> str:
        writer.write(question + (f"[{default}] " if default else ""))
        writer.flush()
        line = reader.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n") or default

    return lambda tool, call: ask_approval(read_line, tell, tool, call)
