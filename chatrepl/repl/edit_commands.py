"""The handlers of /set, /undo and /continue: parameters, taking exchanges back, going on."""

from __future__ import annotations

import difflib
from copy import deepcopy
from dataclasses import replace
from pathlib import Path

from chatrepl import parameters
from chatrepl.conversation.messages import Message, now
from chatrepl.errors import CommandError
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState


def set_command(state: ReplState, arg: str) -> Result:
    """`/set` lists; `/set NAME VALUE` sets; `/set NAME` resets to the default."""
    name, _, value = arg.partition(" ")
    if not name:
        return _parameter_table(state)
    if name not in parameters.BY_NAME:
        close = difflib.get_close_matches(name, list(parameters.BY_NAME), n=1)
        hint = (
            f"; did you mean {close[0]}?" if close else f"; one of {', '.join(parameters.BY_NAME)}"
        )
        raise CommandError(f"unknown parameter {name!r}{hint}")
    conversation = state.conversation
    try:
        parsed = parameters.parse(name, value.strip()) if value.strip() else None
    except ValueError as error:
        raise CommandError(str(error)) from None
    conversation.params = conversation.params.with_value(name, parsed)
    conversation.touch()
    now = getattr(conversation.params, name)
    return Result(f"{name}: {parameters.shown(now)} (saved with the session)")


def _parameter_table(state: ReplState) -> Result:
    params = state.conversation.params
    rows = [
        (p.name, parameters.shown(getattr(params, p.name)), p.help) for p in parameters.PARAMETERS
    ]
    return Result(
        "this session's parameters (/set NAME VALUE, /set NAME resets)",
        table=Table(("parameter", "value", "what it does"), rows),
    )


def undo_command(state: ReplState, arg: str) -> Result:
    """Remove the last N exchanges (saved at once); their text is shown once, dimmed."""
    count = _count(arg)
    conversation = state.conversation
    starts = [i for i, m in enumerate(conversation.messages) if m.role == "user"]
    if not starts:
        raise CommandError("nothing to undo: no message has been sent yet")
    start = starts[-min(count, len(starts))]
    removed = conversation.messages[start:]
    covered = [m for m in removed if m.is_summary]
    if covered:
        raise CommandError("cannot undo past a summary (it stands for older messages)")
    del conversation.messages[start:]
    conversation.touch()
    exchanges = sum(1 for m in removed if m.role == "user")
    return Result(
        f"removed {exchanges} exchange{'s' if exchanges > 1 else ''} "
        f"({len(removed)} messages):\n{_removed_text(removed)}"
    )


def continue_command(state: ReplState, arg: str) -> Result:
    """Ask the app to continue the last reply when it was cut off or interrupted."""
    last = state.conversation.messages[-1] if state.conversation.messages else None
    if last is None or last.role != "assistant":
        raise CommandError("nothing to continue: the last message is not a reply")
    if not (last.interrupted or last.finish_reason == "length"):
        raise CommandError("the last reply is complete (it was not cut off or interrupted)")
    return Result(continue_reply=True)


def _count(arg: str) -> int:
    if not arg:
        return 1
    try:
        count = int(arg)
    except ValueError:
        raise CommandError(f"/undo takes a number of exchanges, not {arg!r}") from None
    if count < 1:
        raise CommandError("/undo takes a number of exchanges of at least 1")
    return count


def _removed_text(messages: list[Message]) -> str:
    return "\n".join(f"{m.role}: {m.content}" for m in messages if m.content)


def edit_command(state: ReplState, arg: str) -> Result:
    """Edit the last user message in $VISUAL/$EDITOR, then ask it again (like /retry)."""
    index = state.conversation.last_user_index()
    if index is None:
        raise CommandError("nothing to edit: no message has been sent yet")
    original = state.conversation.messages[index].content
    edited = edit_text(original).strip()
    if not edited or edited == original.strip():
        return Result("edit cancelled: the message is unchanged")
    return Result(retry=True, retry_text=edited)


def edit_text(text: str) -> str:
    """`text` after the user's editor ($VISUAL, $EDITOR, else vi) has changed it."""
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="chatrepl-edit-") as folder:
        path = Path(folder) / "message.md"
        path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot start the editor {editor!r}: {error}") from None
        if done.returncode != 0:
            raise CommandError(f"the editor {editor!r} exited with status {done.returncode}")
        return path.read_text(encoding="utf-8", errors="replace")


def fork_command(state: ReplState, arg: str) -> Result:
    """Copy the conversation so far into a new session, and continue there."""
    old = state.conversation
    if not old.messages:
        raise CommandError("nothing to fork yet: the conversation is empty")
    state.save()
    copy = replace(old, name=None, messages=deepcopy(old.messages), created=now(), extra={})
    base = arg.strip() or f"{old.name or 'chat'}-fork"
    name = base if arg.strip() else state.store.new_name(base)
    copy.name = name
    state.store.save(copy)
    state.store.release(old.name)
    state.conversation = copy
    return Result(f"forked into {name}: {len(copy.messages)} messages; {old.name} is unchanged")
