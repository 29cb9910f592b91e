"""Terminal details the REPL needs around a streamed reply."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

try:
    import termios
except ImportError:  # Windows: nothing to do
    termios = None  # type: ignore[assignment]


def print_dim(line: str, stream: TextIO | None = None) -> None:
    """One dim line, as views.info prints it, without importing rich (for start-up): plain when
    the stream is not a terminal or NO_COLOR is set. The text is made safe first."""
    from chatrepl.ui.safe_text import sanitize

    stream = stream or sys.stdout
    text = sanitize(line)
    if stream.isatty() and not os.environ.get("NO_COLOR"):
        text = f"\x1b[2m{text}\x1b[0m"
    stream.write(text + "\n")
    stream.flush()


@contextmanager
def typeahead_hidden(stream: TextIO | None = None) -> Iterator[None]:
    """Keys typed while a reply streams are not echoed over it; they reach the next prompt."""
    stream = stream or sys.stdin
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd) if termios and stream.isatty() else None
    except (AttributeError, OSError, ValueError):
        saved = None
    if saved is None:
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block inside has finished (e.g. printing one Markdown block).

    A KeyboardInterrupt in the middle of a print would leave half a block on screen and the
    whole block still pending, so it would appear twice.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
