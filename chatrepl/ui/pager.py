"""Showing something taller than the screen through a pager: `$PAGER`, else less (or more).

What is shown is rendered once, with its colours; when it fits on the screen it is printed as
it is. less gets `LESS=FRX` unless LESS is set (as git does): colours shown, the text left on the
screen after quitting. A pager that cannot be started means the text is printed instead, whole.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

NOT_FOUND = (126, 127)  # the shell's status for a command it could not find or run


def show_paged(console: Console, render: Callable[[Console], None]) -> bool:
    """Print what `render` prints; through the pager when it is taller than the screen. Whether
    the pager showed it."""
    if not console.is_terminal:
        render(console)
        return False
    text = rendered(console, render)
    paged = text.count("\n") >= console.height and page(text)
    if not paged:
        console.file.write(text)
        console.file.flush()
    return paged


def rendered(console: Console, render: Callable[[Console], None]) -> str:
    """What `render` prints on a console like this one, as text with its colour codes. Nothing
    is cut to fit a terminal: a pager scrolls."""
    buffer = io.StringIO()
    twin = Console(
        file=buffer,
        width=console.width,
        color_system=console.color_system,
        no_color=console.no_color,
        highlight=False,
        force_terminal=False,
    )
    render(twin)
    return buffer.getvalue()


def pager_command() -> str | None:
    """`$PAGER`, else less or more when installed."""
    command = os.environ.get("PAGER", "").strip()
    if command:
        return command
    return next((name for name in ("less", "more") if shutil.which(name)), None)


def page(text: str) -> bool:
    """Run the pager on text; False when there is none or it could not be started."""
    command = pager_command()
    if command is None:
        return False
    environment = {**os.environ, "LESS": os.environ.get("LESS", "FRX")}
    with _interrupts_to_the_pager():
        try:
            done = subprocess.run(
                command, shell=True, input=text.encode("utf-8", "replace"), env=environment
            )
        except OSError:
            return False
    return done.returncode not in NOT_FOUND


@contextmanager
def _interrupts_to_the_pager() -> Iterator[None]:
    """While the pager runs, Ctrl-C is its business (less uses it to stop a search): chatrepl
    lets it pass rather than kill the pager. The pager itself gets the default handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
