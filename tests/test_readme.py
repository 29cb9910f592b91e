"""The README matches the program: its two commands, --help output and the slash-command table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.repl.commands import COMMANDS

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_first_lines_give_exactly_two_commands_and_ci_runs_the_second() -> None:
    top = README.split("\n## ")[0]
    commands = re.findall(r"```sh\n(.+?)\n```", top)
    assert len(commands) == 2
    assert commands[0].endswith("&& chatrepl")
    assert commands[1].endswith("python3 -m pytest")
    extracted = subprocess.run(
        ["awk", "/^```sh$/ {n++; getline; if (n == 2) {print; exit}}", "README.md"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == commands[1]
    assert "awk" in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    "args", [["--help"], ["ask", "--help"], ["sessions", "--help"], ["config", "--help"]]
)
def test_help_sections_match_the_program(args: list[str]) -> None:
    marker = f"<!-- help: {' '.join(args)} -->\n```text\n"
    documented = README.split(marker, 1)[1].split("\n```", 1)[0]
    actual = CliRunner().invoke(app, args, terminal_width=100, prog_name="chatrepl").stdout
    assert documented.rstrip() == actual.rstrip()


def test_every_slash_command_is_documented() -> None:
    table = README.split("## Slash-commands", 1)[1].split("\n## ", 1)[0].replace("\\|", "|")
    for command in COMMANDS:
        usage = f"`/{command.name}{' ' + command.args if command.args else ''}`"
        assert f"| {usage}" in table, usage
        assert command.help in table
