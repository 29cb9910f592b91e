"""The bodies of `chatrepl sessions ...` and `chatrepl config ...`."""

from __future__ import annotations

import sys
from dataclasses import fields

from chatrepl.config import Overrides, Settings, load_settings, sessions_dir
from chatrepl.conversation.store import SessionStore
from chatrepl.ui.safe_text import one_line, sanitize

SECRET_FIELDS = ("api_key", "azure_api_key")


def list_sessions() -> None:
    """`chatrepl sessions list`: name, last change and size, in aligned columns."""
    store = SessionStore(sessions_dir())
    rows = [
        (one_line(info.name), one_line(info.updated).replace("T", " ")[:19], one_line(info.summary))
        for info in store.list()
    ]
    if not rows:
        print(f"no saved sessions yet ({store.root})", file=sys.stderr)
        return
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for name, updated, summary in rows:
        print(f"{name.ljust(widths[0])}  {updated.ljust(widths[1])}  {summary}")


def show_session(name: str) -> None:
    """`chatrepl sessions show NAME`."""

    from chatrepl.ui import views

    console = views.terminal_console()
    messages = SessionStore(sessions_dir()).load(name).messages
    if console.is_terminal:
        views.transcript(console, messages)
        return
    # Piped (copied, saved): the same text without rich's padding to the full width.
    with console.capture() as captured:
        views.transcript(console, messages)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def delete_session(name: str) -> None:
    """`chatrepl sessions delete NAME`."""
    from chatrepl.cli.build import session_store

    session_store().delete(name)
    print(sanitize(f"deleted {name}"))


def rename_session(old: str, new: str) -> None:
    """`chatrepl sessions rename OLD NEW`."""
    from chatrepl.cli.build import session_store

    session_store().rename(old, new)
    print(sanitize(f"renamed {old} to {new}"))


def export_session(name: str, format: str | None, output: str | None, force: bool) -> None:
    """`chatrepl sessions export NAME`: Markdown or JSON, to a file or to stdout."""
    import sys
    from pathlib import Path

    from chatrepl.conversation.export import export_text, format_of, write_export

    conversation = SessionStore(sessions_dir()).load(name)
    text = export_text(conversation, format_of(output, format))
    if output is None:
        sys.stdout.write(sanitize(text) if sys.stdout.isatty() else text)
        return
    path = Path(output).expanduser()
    write_export(path, text, force)
    print(sanitize(f"exported {name} to {path}"))


def search_sessions(text: str, limit: int) -> bool:
    """`chatrepl sessions search TEXT`: matching sessions, best first; False when none match.
    A terminal gets a table with the matches highlighted; a pipe one tab-separated line each."""
    import sys

    from chatrepl.cli.build import session_store
    from chatrepl.errors import CommandError
    from chatrepl.ui import views

    if limit < 1:
        raise CommandError(f"--limit must be at least 1, not {limit}")
    hits = session_store().search(text, limit)
    if not hits:
        print(sanitize(f"no session matches {text!r}"), file=sys.stderr)
        return False
    console = views.terminal_console()
    if not console.is_terminal:
        for hit in hits:
            print("\t".join(one_line(str(cell)) for cell in views.search_row(hit)))
        return True
    console.print(views.table(views.SEARCH_HEADERS, [views.search_row(hit) for hit in hits]))
    return True


def show_config() -> None:
    """`chatrepl config show`: the settings in effect as valid TOML, secrets masked, unset
    ones as comments, so the output can start a config file."""
    from chatrepl.config import config_path
    from chatrepl.profiles import plaintext_key_warnings

    for warning in plaintext_key_warnings(config_path()):
        print(f"# {sanitize(warning)}")
    settings = load_settings()
    tables = []
    for item in fields(Settings):
        value = getattr(settings, item.name)
        if item.name in SECRET_FIELDS and value:
            print(f"# {item.name} is set (not shown)")
        elif value is None:
            print(f"# {item.name} is not set")
        elif isinstance(value, dict):
            tables.append((item.name, value))
        else:
            print(f"{item.name} = {toml_value(value)}")
    for name, table in tables:
        for key, inner in table.items():
            print(f"\n[{name}.{toml_key(key)}]")
            for field_name, field_value in inner.items() if isinstance(inner, dict) else ():
                if field_name in SECRET_FIELDS:
                    print(f"# {field_name} is set (not shown)")
                    continue
                print(f"{toml_key(field_name)} = {toml_value(field_value)}")


def toml_value(value: object) -> str:
    """A TOML literal: strings quoted (JSON's escapes are TOML's), lists and tables inline."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    return json.dumps(str(value), ensure_ascii=False)


def toml_key(key: object) -> str:
    """A bare key when it can be one, else a quoted one."""
    import json
    import re

    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)


LOG_COLUMNS = ("time", "model", "kind", "tokens", "cost", "first", "total", "tok/s", "end", "error")


def show_logs(last: int, as_json: bool) -> None:
    """`chatrepl logs`: the last requests, as a table or as the JSON lines."""
    import json

    from chatrepl.config import request_log_path
    from chatrepl.context.request_log import read_log

    path = request_log_path()
    records = read_log(path, last)
    if as_json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        return
    if not records:
        print(f"no requests logged yet ({path}; chatrepl --log, or log = true in the config)")
        return
    from rich.console import Console

    from chatrepl.ui import views

    rows = [_log_row(record) for record in records]
    console = views.terminal_console()
    if not console.is_terminal:  # piped: no terminal width to fit, keep every cell whole
        console = Console(highlight=False, width=200)
    console.print(views.table(LOG_COLUMNS, rows))


def _log_row(record: dict) -> tuple[str, ...]:
    """One request as a row: short time, tokens, cost, seconds, speed, how it ended."""
    tilde = "~" if record.get("tokens_estimated") else ""
    tokens = ""
    if record.get("prompt_tokens") is not None:
        tokens = f"{tilde}{record['prompt_tokens']}+{tilde}{record.get('completion_tokens', 0)}"
    cost = record.get("cost_usd")
    retries = record.get("retries") or 0
    end = (record.get("finish_reason") or "") + (f" ({retries} retries)" if retries else "")
    return (
        str(record.get("time", ""))[11:19],
        str(record.get("model", "")),
        str(record.get("kind", "")),
        tokens,
        f"${float(cost):.6f}" if cost is not None else "",
        _seconds(record.get("first_token_s")),
        _seconds(record.get("duration_s")),
        str(record.get("tokens_per_s") or ""),
        end,
        str(record.get("error") or ""),
    )


def _seconds(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else ""


def list_models(overrides: Overrides) -> None:
    """`chatrepl models`: the server's models and the embedded model, one a line."""
    from chatrepl.backends.registry import build_backend, embedded_model, model_rows
    from chatrepl.errors import ConfigError

    settings = load_settings(overrides)
    try:
        backend = build_backend(settings)
    except ConfigError:
        embedded = embedded_model(settings)
        if embedded is None:
            raise
        print(f"{sanitize(embedded)}  (local)")
        return
    for name, where in model_rows(backend, settings):
        print(f"{sanitize(name)}  ({where})")


def set_key(profile: str | None) -> None:
    """`chatrepl config set-key [PROFILE]`: ask for a key (hidden) and keep it in the keyring."""
    import typer

    from chatrepl.config import _read_config_file, config_path
    from chatrepl.errors import ConfigError
    from chatrepl.profiles import find_profile, store_key

    data = _read_config_file(config_path())  # not load_settings: the key may be what is missing
    name = profile or data.get("profile")
    if not name:
        raise ConfigError("name a profile: chatrepl config set-key NAME ([profiles.NAME])")
    find_profile(name, data.get("profiles") or {})
    key = typer.prompt(f"API key for profile {name}", hide_input=True).strip()
    if not key:
        raise ConfigError("no key given: nothing stored")
    store_key(name, key)
    print(sanitize(f"stored the key of profile {name} in the system keyring"))
