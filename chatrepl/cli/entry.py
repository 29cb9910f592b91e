"""The `chatrepl` console script.

Plain `chatrepl` (no arguments, the most common start) opens the REPL without importing typer:
the prompt is on screen ~35 ms sooner; `chatrepl --version` answers without it too. Everything
else goes through the typer app in cli/typer_app.py.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from chatrepl import __version__

        print(f"chatrepl {__version__}")
        return
    if len(sys.argv) > 1:
        sys.exit(run_cli())
    from chatrepl.cli.build import open_repl
    from chatrepl.config import Overrides
    from chatrepl.errors import ErrorBoundary

    try:
        with ErrorBoundary(_report_error) as boundary:
            open_repl(Overrides(), None, False)
    except KeyboardInterrupt:
        sys.exit(130)
    if boundary.failed:
        sys.exit(1)


def _report_error(line: str) -> None:
    """One `error:` line on stderr; the text (a server's message, say) made safe first."""
    from chatrepl.ui.safe_text import sanitize

    print(f"error: {sanitize(line)}", file=sys.stderr)


def run_cli() -> int:
    """The typer app, with click's usage errors as one `error:` line and exit status 1."""
    import typer

    from chatrepl.cli.typer_app import app

    command = typer.main.get_command(app)
    try:
        result = command.main(prog_name="chatrepl", standalone_mode=False)
    except typer.Abort as abort:  # click's word for Ctrl-C (and EOF at a prompt)
        return 130 if isinstance(abort.__cause__, KeyboardInterrupt) else 1
    except Exception as failure:
        if not hasattr(failure, "format_message"):  # not one of click's own usage errors
            raise
        hint = " (see chatrepl --help)"
        print(f"error: {failure.format_message()}{hint}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
