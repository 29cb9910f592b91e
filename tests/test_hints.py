"""Every hint chatrepl prints names commands and options that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer

from chatrepl.cli.typer_app import app
from chatrepl.repl.commands import COMMANDS

PACKAGE = Path(__file__).resolve().parent.parent / "chatrepl"
SLASH = re.compile(r"(?<![\w/.~])/([a-z][a-z-]*)\b")
OPTION = re.compile(r"(?<![\w-])--([a-z][a-z-]+)\b")
# Strings that mention paths or other programs' options, not chatrepl's.
NOT_HINTS = ("/dev/", "/etc/", "/v1", "/tmp", "/usr", "/bin", "pip install", "python -m")


def strings() -> list[tuple[str, str]]:
    """Every string literal a user can see (not docstrings), f-strings' parts too, by file."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree) if _has_docstring(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [] if id(node) in docstrings else [(path.name, node.value)]
    return found


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    return (
        isinstance(body, list)
        and bool(body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


def options() -> set[str]:
    """Every --option of every chatrepl command and subcommand, and of slash-commands."""
    names: set[str] = set()
    pending = [typer.main.get_command(app)]
    while pending:
        command = pending.pop()
        for parameter in command.params:
            names.update(o.removeprefix("--") for o in parameter.opts if o.startswith("--"))
        pending.extend(getattr(command, "commands", {}).values())
    for command in COMMANDS:
        names.update(OPTION.findall(command.args))
    return names


def test_every_slash_command_in_a_hint_exists() -> None:
    known = {name for c in COMMANDS for name in (c.name, *c.aliases)}
    wrong = [
        (where, text)
        for where, text in strings()
        if not any(mark in text for mark in NOT_HINTS)
        for name in SLASH.findall(text)
        if name not in known
    ]
    assert wrong == []


def test_every_option_in_a_hint_exists() -> None:
    known = options() | {"no-deps", "help"}  # pip's, and click's own
    wrong = [
        (where, name)
        for where, text in strings()
        if "pip " not in text and " " in text.strip()  # a lone "--x" is an argv item
        for name in OPTION.findall(text)
        if name not in known
    ]
    assert wrong == []
