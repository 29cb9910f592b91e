"""The `chatrepl` console script.

The most common starts, plain `chatrepl`, `chatrepl --resume NAME` and `chatrepl --continue`,
open the REPL without importing typer (the prompt is on screen ~80 ms sooner); `chatrepl
--version` answers without it too. Everything else goes through the typer app in
cli/typer_app.py, which takes the same options.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    from chatrepl import collection

    collection.hold_for_startup()  # on again once the backend has loaded (backends/loader.py)
    try:
        _run(sys.argv[1:])
    finally:
        collection.startup_done()


def _run(args: list[str]) -> None:
    if args == ["--version"]:
        from chatrepl import __version__

        print(f"chatrepl {__version__}")
        return
    start = repl_start(args)
    if start is None:
        sys.exit(run_cli())
    from chatrepl.cli.build import open_repl
    from chatrepl.config import Overrides
    from chatrepl.errors import ErrorBoundary

    try:
        with ErrorBoundary(_report_error) as boundary:
            open_repl(Overrides(), *start)
    except KeyboardInterrupt:
        sys.exit(130)
    if boundary.failed:
        sys.exit(1)


def repl_start(args: list[str]) -> tuple[str | None, bool] | None:
    """(session to resume, whether to continue the latest) when the arguments only open the
    REPL in one of the common ways; None for anything else (the typer app parses it)."""
    if not args:
        return None, False
    if args in (["--continue"], ["-c"]):
        return None, True
    if len(args) == 2 and args[0] in ("--resume", "-r") and not args[1].startswith("-"):
        return args[1], False
    return None


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
