"""The `chatrepl` console script.

Plain `chatrepl` (no arguments, the most common start) opens the REPL without importing typer:
the prompt is on screen ~35 ms sooner. Everything else goes through the typer app in cli.py.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1:
        sys.exit(run_cli())
    from chatrepl.errors import ChatReplError, describe_unexpected
    from chatrepl.startup import open_repl

    try:
        open_repl({}, None, False)
    except ChatReplError as failure:
        sys.exit(f"error: {failure}")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as failure:  # a bug: one line; `chatrepl --debug` shows the traceback
        sys.exit(f"error: {describe_unexpected(failure)}")


def run_cli() -> int:
    """The typer app, with click's usage errors as one `error:` line and exit status 1."""
    import typer

    from chatrepl.cli import app

    command = typer.main.get_command(app)
    try:
        result = command.main(prog_name="chatrepl", standalone_mode=False)
    except typer.Abort:
        return 1
    except Exception as failure:
        if not hasattr(failure, "format_message"):  # not one of click's own usage errors
            raise
        hint = " (see chatrepl --help)"
        print(f"error: {failure.format_message()}{hint}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
