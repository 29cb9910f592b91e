"""/file and /image: attach files to the next message (shown in the toolbar until it is sent)."""

from __future__ import annotations

import shlex

from chatrepl.conversation.messages import Attachment
from chatrepl.engine.attachments import describe, read_image, read_texts
from chatrepl.errors import CommandError
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState

FILE_USAGE = "use /file PATH... (globs welcome), /file to list, /file clear to drop them all"


def file_command(state: ReplState, arg: str) -> Result:
    """Attach text files to the next message; alone, list what is attached; `clear` drops it."""
    if not arg:
        return pending_table(state)
    if arg == "clear":
        dropped, state.pending[:] = len(state.pending), []
        return Result(f"dropped {dropped} attachment{'' if dropped == 1 else 's'}")
    added = read_texts(_paths(arg), state.settings.attach_limit, state.pending)
    return _attached(state, added)


def image_command(state: ReplState, arg: str) -> Result:
    """Attach an image to the next message, for a model that can see."""
    backend = state.backend
    if not backend.capabilities.images:
        raise CommandError(f"the {backend.name} backend's model cannot take images")
    paths = _paths(arg)
    if len(paths) != 1:
        raise CommandError("use /image PATH (one image at a time)")
    return _attached(state, [read_image(paths[0])])


def pending_table(state: ReplState) -> Result:
    """What goes with the next message."""
    if not state.pending:
        return Result("nothing attached; " + FILE_USAGE)
    rows = [(describe(item),) for item in state.pending]
    return Result("attached to your next message:", table=Table(("file",), rows))


def _attached(state: ReplState, added: list[Attachment]) -> Result:
    names = {item.name for item in added}
    state.pending[:] = [item for item in state.pending if item.name not in names] + added
    shown = ", ".join(describe(item) for item in added)
    return Result(f"attached to your next message: {shown}")


def _paths(arg: str) -> list[str]:
    try:
        return shlex.split(arg)
    except ValueError as error:  # an unclosed quote
        raise CommandError(f"{error}: {FILE_USAGE}") from None
