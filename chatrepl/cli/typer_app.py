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
from chatrepl.ui.safe_text import sanitize

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="A terminal chat client for OpenAI-compatible APIs and an embedded local model.",
)
sessions_app = typer.Typer(
    help="List (the default), show, delete, rename, search and export saved sessions."
)
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
Functions = Annotated[
    list[str] | None,
    typer.Option(
        "--functions",
        metavar="FILE",
        help="A Python file whose public functions (typed, documented) the model may call.",
    ),
]
LogOpt = Annotated[
    bool, typer.Option("--log", help="Log each API request to the data directory's requests.jsonl.")
]
YesTools = Annotated[bool, typer.Option("--yes-tools", help="Run every tool call without asking.")]
RoleOpt = Annotated[
    str | None,
    typer.Option(
        "--role", "-R", metavar="NAME", help="A role: its system prompt, model and parameters."
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", metavar="NAME", help="An endpoint profile ([profiles.NAME])."),
]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="An OpenAI-compatible server's base URL."),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Longest wait for the next byte from the server (default 120).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chatrepl {__version__}")
        raise typer.Exit()


def report_error(line: str) -> None:
    """One `error:` line on stderr; the text (a server's message, say) made safe first."""
    typer.echo(f"error: {sanitize(line)}", err=True)


def guarded(action: Callable[[], T], debug: bool = False) -> T:
    """Run action inside the error boundary; a reported error exits with status 1."""
    with ErrorBoundary(report_error, debug) as boundary:
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
    role: RoleOpt = None,
    profile: ProfileOpt = None,
    base_url: BaseUrl = None,
    backend: BackendOpt = None,
    model_path: ModelPath = None,
    timeout: Timeout = None,
    functions: Functions = None,
    yes_tools: YesTools = False,
    log: LogOpt = False,
    debug: Debug = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Open the chat REPL (chat mode; /complete switches to completion mode; /help lists all)."""
    if ctx.invoked_subcommand is not None:
        return
    overrides = Overrides(
        model=model,
        system=system,
        role=role,
        profile=profile,
        base_url=base_url,
        backend=backend,
        model_path=model_path,
        timeout=timeout,
        debug=debug or None,
        functions=tuple(functions) if functions else None,
        tools_auto=yes_tools or None,
        log=log or None,
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
    role: RoleOpt = None,
    profile: ProfileOpt = None,
    base_url: BaseUrl = None,
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
    timeout: Timeout = None,
    tools: Annotated[
        bool, typer.Option("--tools", help="Let the model call the configured tools.")
    ] = False,
    tool: Annotated[
        list[str] | None,
        typer.Option("--tool", metavar="NAME", help="Let the model call this tool (repeatable)."),
    ] = None,
    functions: Functions = None,
    yes_tools: YesTools = False,
    log: LogOpt = False,
    temperature: Annotated[
        float | None, typer.Option("--temperature", metavar="T", help="Sampling temperature, 0-2.")
    ] = None,
    top_p: Annotated[
        float | None, typer.Option("--top-p", metavar="P", help="Nucleus sampling, 0-1.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", metavar="N", help="Seed for repeatable sampling.")
    ] = None,
    stop: Annotated[
        list[str] | None,
        typer.Option("--stop", metavar="TEXT", help="A string that ends the reply (up to 4)."),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", metavar="FILE", help="Attach a text file (repeatable)."),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", metavar="FILE", help="Attach an image (repeatable)."),
    ] = None,
    debug: Debug = False,
) -> None:
    """Answer one prompt and exit. Piped stdin is added: cat notes.txt | chatrepl ask summarize."""
    from chatrepl.cli.ask import AskOptions, run_ask

    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin
    options = AskOptions(
        words=prompt or [],
        stdin=piped,
        mode=mode,
        model=model,
        system=system,
        role=role,
        profile=profile,
        base_url=base_url,
        suffix=suffix,
        stream=not no_stream,
        json_output=json_output,
        json_mode=json_mode,
        session=session,
        max_tokens=max_tokens,
        backend=backend,
        model_path=model_path,
        timeout=timeout,
        tools=tools,
        tool_names=tuple(tool or ()),
        functions=tuple(functions or ()),
        yes_tools=yes_tools,
        log=log,
        files=tuple(file or ()),
        images=tuple(image or ()),
        parameters=tuple(
            (name, value)
            for name, value in (
                ("temperature", temperature),
                ("top_p", top_p),
                ("seed", seed),
                ("stop", stop),
            )
            if value is not None
        ),
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

    if not yes and not typer.confirm(f"Delete session {sanitize(name)}?", default=False):
        typer.echo(f"kept {sanitize(name)}: nothing was deleted")
        raise typer.Exit(1)
    guarded(lambda: delete_session(name))


@sessions_app.command("rename")
def sessions_rename(old: str, new: str) -> None:
    """Rename a saved session."""
    from chatrepl.cli.subcommands import rename_session

    guarded(lambda: rename_session(old, new))


@sessions_app.command("export")
def sessions_export(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The session to export.")],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="md|json",
            help="Markdown (roles as headings) or the session's JSON (default: from the "
            "file name, else md).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write a session as Markdown or JSON."""
    from chatrepl.cli.subcommands import export_session

    guarded(lambda: export_session(name, format, output, force))


@sessions_app.command("search")
def sessions_search(
    text: Annotated[
        list[str], typer.Argument(metavar="TEXT", help='Words that must all occur, or "a phrase".')
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="How many sessions to show.")
    ] = 20,
) -> None:
    """Search every session's messages, best matches first (exit status 1: no match)."""
    from chatrepl.cli.subcommands import search_sessions

    if not guarded(lambda: search_sessions(" ".join(text), limit)):
        raise typer.Exit(1)


@app.command("logs")
def logs_command(
    last: Annotated[
        int, typer.Option("--last", "-n", metavar="N", help="How many requests to show.")
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the log lines as they are.")
    ] = False,
) -> None:
    """Show the last requests of the request log (written with --log or log = true)."""
    from chatrepl.cli.subcommands import show_logs

    guarded(lambda: show_logs(last, as_json))


@app.command("models")
def models_command(
    profile: ProfileOpt = None,
    base_url: BaseUrl = None,
    backend: BackendOpt = None,
    model_path: ModelPath = None,
) -> None:
    """List the server's models and the embedded model."""
    from chatrepl.cli.subcommands import list_models

    overrides = Overrides(
        profile=profile, base_url=base_url, backend=backend, model_path=model_path
    )
    guarded(lambda: list_models(overrides))


@config_app.command("set-key")
def config_set_key(
    profile: Annotated[
        str | None,
        typer.Argument(metavar="[PROFILE]", help="The profile (default: the configured one)."),
    ] = None,
) -> None:
    """Store a profile's API key in the system keyring (asked for, never shown)."""
    from chatrepl.cli.subcommands import set_key

    guarded(lambda: set_key(profile))


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
