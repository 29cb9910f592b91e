"""Drive the real REPL in-process: keystrokes through a prompt_toolkit pipe, output captured."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from chatrepl.cli.build import build_repl
from chatrepl.config import Overrides
from chatrepl.repl.loop import Repl

ENTER = "\r"
ESC_ENTER = "\x1b\r"
CTRL_C = "\x03"
CTRL_D = "\x04"
BATCH_PAUSE = 0.3  # seconds between batches of keys given as a list
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


@dataclass
class RunResult:
    """What a REPL run left behind."""

    repl: Repl
    output: str

    @property
    def conversation(self) -> Any:
        return self.repl.state.conversation


def lines(*typed: str) -> str:
    """Keystrokes for typing each text and pressing Enter."""
    return "".join(text + ENTER for text in typed)


def _type_slowly(pipe: Any, batches: list[str]) -> None:
    """Send each batch of keys after a pause (time for e.g. completion to run)."""
    for index, batch in enumerate(batches):
        if index:
            time.sleep(BATCH_PAUSE)
        pipe.send_text(batch)


def run_repl(
    keys: str,
    flags: dict[str, Any] | None = None,
    resume: str | None = None,
    latest: bool = False,
    width: int = 100,
) -> RunResult:
    """Type `keys` into a fresh REPL and run it until the input runs out (Ctrl-D)."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        # Ctrl-C first: a failed turn leaves its text in the line, where Ctrl-D would not exit.
        batches = [keys] if isinstance(keys, str) else list(keys)
        batches[-1] += CTRL_C + CTRL_D
        feeder = threading.Thread(target=_type_slowly, args=(pipe, batches))
        feeder.start()
        overrides = Overrides(**(flags or {}))
        repl = build_repl(overrides, resume, latest, console, input=pipe, output=DummyOutput())
        repl.run()
        feeder.join()
    close = getattr(repl.state.backend, "close", None)
    if close is not None:  # the embedded model's worker process ends with its REPL, as in a run
        close()
    return RunResult(repl, out.getvalue())
