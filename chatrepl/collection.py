"""Garbage collection held off while chatrepl makes objects that are never garbage.

Start-up (importing openai and pydantic: hundreds of thousands of long-lived objects) and a
long session's load make almost no garbage, yet each collection pass walks every object made so
far, for nothing: about 12% of `import openai` and a third of a long session's load.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_startup = threading.Lock()
_held_for_startup = False


def hold_for_startup() -> None:
    """Collections off until startup_done(): the console script's first step."""
    global _held_for_startup
    with _startup:
        if gc.isenabled():
            gc.disable()
            _held_for_startup = True


def startup_done() -> None:
    """Collections on again once start-up's slow loads are over, with the start-up's objects
    frozen out of later passes (so a full collection in the REPL stays short). Does nothing
    unless hold_for_startup() held them, so in-process callers (the tests) are unaffected."""
    global _held_for_startup
    with _startup:
        if _held_for_startup:
            _held_for_startup = False
            gc.freeze()
            gc.enable()


@contextmanager
def paused() -> Iterator[None]:
    """No collection inside the block (a session's objects being made, say)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
