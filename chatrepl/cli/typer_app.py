"""Command line: `chatrepl` opens the REPL; `ask`, `sessions` and `config` do one thing and exit.

Heavy libraries (openai, prompt_toolkit, rich.markdown, llama_cpp) are imported only by the
commands that need them, so `--version` and `--help` stay instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from chatrepl import __version__
from chatrepl.config import Overrides
from chatrepl.errors import ErrorBoundary

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A terminal chat client for OpenAI-compatible APIs and an embedded local model.",
)
sessions_app = typer.Typer(help="List (the default), show, delete and rename saved sessions.")
config_app = typer.Typer(help="Where the config file is and what is in effect.")
app.add_typer(sessions_app, name="sessions")
app.add_typer(config_app, name="config")

Model = Annotated[
    str | None, typer.Option("--model", "-m", metavar="NAME", help="Model (deployment on Azure).")
]
System = Annotated[
    str | None, typer.Option("--system", "-s", metavar="TEXT", help="System prompt (chat mode).")
]


def _backend_help() -> str:
    from chatrepl.backends.registry import NAMES, help_text

    return f"{' or '.join(NAMES)} (default: automatic). {help_text()}."


def _backend_metavar() -> str:
    from chatrepl.backends.registry import NAMES

    return "|".join(NAMES)


BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", "-b", metavar=_backend_metavar(), help=_backend_help()),
]
ModelPath = Annotated[
    str | None,
    typer.Option("--model-path", metavar="FILE", help="A GGUF file for the local backend."),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chatrepl {__version__}")
        raise typer.Exit()


def guarded(action: Callable[[], T], debug: bool = False) -> T:
    """Run action inside the error boundary; a reported error exits with status 1."""
    with ErrorBoundary(lambda line: typer.echo(f"error: {line}", err=True), debug) as boundary:
        return action()
    assert boundary.failed
    raise typer.Exit(1)


@app.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    resume: Annotated[
        str | None,
        typer.Option("--resume", "-r", metavar="NAME", help="Reopen a saved session by name."),
    ] = None,
    continue_: Annotated[
        bool, typer.Option("--continue", "-c", help="Reopen the most recent session.")
    ] = False,
    model: Model = None,
    system: System = None,
    backend: BackendOpt = None,
    model_path: ModelPath = None,
    debug: Debug = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Open the chat REPL (chat mode; /complete switches to completion mode; /help lists all)."""
    if ctx.invoked_subcommand is not None:
        return
    overrides = Overrides(
        model=model, system=system, backend=backend, model_path=model_path, debug=debug or None
    )
    guarded(lambda: _run_repl(overrides, resume, continue_), debug)


def _run_repl(overrides: Overrides, resume: str | None, latest: bool) -> None:
    from chatrepl.cli.build import open_repl

    open_repl(overrides, resume, latest)


@app.command()
def ask(
    prompt: Annotated[
        list[str] | None, typer.Argument(metavar="PROMPT", help="The prompt (stdin is added).")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", metavar="chat|complete", help="chat or complete.")
    ] = "chat",
    model: Model = None,
    system: System = None,
    suffix: Annotated[
        str | None,
        typer.Option("--suffix", metavar="TEXT", help="Insertion suffix (complete mode)."),
    ] = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Wait for the whole reply.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the API response as JSON.")
    ] = False,
    json_mode: Annotated[
        bool, typer.Option("--json-mode", help="Ask for a JSON object reply (chat mode).")
    ] = False,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", metavar="NAME", help="Continue a saved session and save into it."
        ),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", metavar="N", help="Reply length limit.")
    ] = None,
    backend: BackendOpt = None,
    model_path: ModelPath = None,
    debug: Debug = False,
) -> None:
    """Answer one prompt and exit. Piped stdin is added: cat notes.txt | chatrepl ask summarize."""
    from chatrepl.cli.ask import AskOptions, run_ask

    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    options = AskOptions(
        words=prompt or [],
        piped=piped,
        mode=mode,
        model=model,
        system=system,
        suffix=suffix,
        stream=not no_stream,
        json_output=json_output,
        json_mode=json_mode,
        session=session,
        max_tokens=max_tokens,
        backend=backend,
        model_path=model_path,
        debug=debug,
    )
    interrupted = guarded(lambda: run_ask(options), debug)
    if interrupted:
        raise typer.Exit(130)


@sessions_app.callback(invoke_without_command=True)
def sessions_default(ctx: typer.Context) -> None:
    """`chatrepl sessions` alone lists them."""
    if ctx.invoked_subcommand is None:
        sessions_list()


@config_app.callback(invoke_without_command=True)
def config_default(ctx: typer.Context) -> None:
    """`chatrepl config` alone shows its help."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


@sessions_app.command("list")
def sessions_list() -> None:
    """List saved sessions, most recent first."""
    from chatrepl.cli.subcommands import list_sessions

    guarded(list_sessions)


@sessions_app.command("show")
def sessions_show(name: str) -> None:
    """Print a session's messages."""
    from chatrepl.cli.subcommands import show_session

    guarded(lambda: show_session(name))


@sessions_app.command("delete")
def sessions_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False
) -> None:
    """Delete a saved session."""
    from chatrepl.cli.subcommands import delete_session

    if not yes and not typer.confirm(f"Delete session {name}?", default=False):
        raise typer.Exit(1)
    guarded(lambda: delete_session(name))


@sessions_app.command("rename")
def sessions_rename(old: str, new: str) -> None:
    """Rename a saved session."""
    from chatrepl.cli.subcommands import rename_session

    guarded(lambda: rename_session(old, new))


@config_app.command("path")
def config_path_command() -> None:
    """Print where the config file is read from."""
    from chatrepl.config import config_path

    typer.echo(str(config_path()))


@config_app.command("show")
def config_show() -> None:
    """Print the settings in effect (secrets masked)."""
    from chatrepl.cli.subcommands import show_config

    guarded(show_config)
