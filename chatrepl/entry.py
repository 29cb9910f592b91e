"""The `chatrepl` console script.

Plain `chatrepl` (no arguments, the most common start) opens the REPL without importing typer:
the prompt is on screen ~35 ms sooner. Everything else goes through the typer app in cli.py.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1:
        from chatrepl.cli import app

        app()
        return
    from chatrepl.errors import ChatReplError
    from chatrepl.startup import open_repl

    try:
        open_repl({}, None, False)
    except ChatReplError as failure:
        sys.exit(f"error: {failure}")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as failure:  # a bug: one line; `chatrepl --debug` shows the traceback
        sys.exit(f"error: unexpected {type(failure).__name__}: {failure} (--debug shows more)")
