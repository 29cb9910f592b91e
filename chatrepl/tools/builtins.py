"""Built-in tools, off until enabled: two read-only ones that run without asking, and two that
always ask (run_shell unless its command starts with an allowed prefix)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatrepl.backends.base import ToolSpec
from chatrepl.tools.toolbox import Tool

MAX_FILE_BYTES = 1_000_000
SHELL_TIMEOUT = 60.0
FETCH_TIMEOUT = 20.0


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def read_file(arguments: dict[str, Any]) -> str:
    """The text of a file (the first MAX_FILE_BYTES bytes)."""
    path = Path(str(arguments["path"])).expanduser()
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if b"\0" in data[:8192]:
        return f"error: {path} is a binary file"
    text = data[:MAX_FILE_BYTES].decode("utf-8", "replace")
    return text + ("\n[file cut at 1 MB]" if len(data) > MAX_FILE_BYTES else "")


def list_directory(arguments: dict[str, Any]) -> str:
    """A directory's entries, one per line, directories marked with a slash."""
    path = Path(str(arguments.get("path") or ".")).expanduser()
    entries = sorted(path.iterdir(), key=lambda entry: entry.name)
    return "\n".join(entry.name + ("/" if entry.is_dir() else "") for entry in entries)


def run_shell(arguments: dict[str, Any]) -> str:
    """Run a command with the user's shell; its exit status, stdout and stderr."""
    import subprocess

    done = subprocess.run(
        str(arguments["command"]),
        shell=True,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=SHELL_TIMEOUT,
        stdin=subprocess.DEVNULL,
        executable=os.environ.get("SHELL") or None,
    )
    return f"exit status {done.returncode}\n{done.stdout}" + (
        f"\nstderr:\n{done.stderr}" if done.stderr else ""
    )


def fetch_url(arguments: dict[str, Any]) -> str:
    """The text of a web page (HTML tags removed), through the standard library's urllib."""
    import html
    import re
    import urllib.request

    url = str(arguments["url"])
    if not url.startswith(("http://", "https://")):
        return "error: only http and https URLs can be fetched"
    request = urllib.request.Request(url, headers={"User-Agent": "chatrepl"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
        raw = response.read(MAX_FILE_BYTES + 1)
        kind = response.headers.get("content-type", "")
        charset = response.headers.get_content_charset() or "utf-8"
    text = raw[:MAX_FILE_BYTES].decode(charset, "replace")
    if "html" in kind:
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
        text = html.unescape(re.sub(r"(?s)<[^>]+>", " ", text))
        text = re.sub(r"[ \t]*\n\s*", "\n", re.sub(r"[ \t]+", " ", text)).strip()
    return text + ("\n[page cut at 1 MB]" if len(raw) > MAX_FILE_BYTES else "")


BUILTINS: dict[str, tuple[ToolSpec, Callable[[dict[str, Any]], str], bool]] = {
    "read_file": (
        ToolSpec(
            "read_file",
            "Read a text file and return its contents.",
            _object({"path": {"type": "string", "description": "The file's path"}}, ["path"]),
        ),
        read_file,
        True,
    ),
    "list_directory": (
        ToolSpec(
            "list_directory",
            "List the entries of a directory (directories end with /).",
            _object({"path": {"type": "string", "description": "The directory (default .)"}}, []),
        ),
        list_directory,
        True,
    ),
    "run_shell": (
        ToolSpec(
            "run_shell",
            "Run a shell command on the user's machine and return its output.",
            _object({"command": {"type": "string"}}, ["command"]),
        ),
        run_shell,
        False,
    ),
    "fetch_url": (
        ToolSpec(
            "fetch_url",
            "Fetch a web page by URL and return its text.",
            _object({"url": {"type": "string"}}, ["url"]),
        ),
        fetch_url,
        False,
    ),
}


def builtin_tools(shell_allow: tuple[str, ...] = ()) -> list[Tool]:
    """Every built-in tool; run_shell runs without asking only for allow-listed commands."""

    def allow_listed(arguments: dict[str, Any]) -> bool:
        return shell_allowed(str(arguments.get("command", "")), shell_allow)

    return [
        Tool(spec, function, "built-in", safe, allow_listed if name == "run_shell" else None)
        for name, (spec, function, safe) in BUILTINS.items()
    ]


def shell_allowed(command: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a command starts with an allowed prefix, word for word (`git status` allows
    `git status -s`, not `git statusx` nor `git status; rm -rf ~`)."""
    import shlex

    if any(mark in command for mark in (";", "&", "|", "`", "$(", ">", "<", "\n")):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return any(words[: len(p.split())] == shlex.split(p) for p in prefixes if p.strip())
