"""Session names with control or invisible characters (a newline, ESC, bidi and zero-width marks)
are refused like '/' and '..'; files that already have such names are listed with those
characters made visible, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.conversation.store import SessionStore, check_name
from chatrepl.errors import SessionError
from tests.harness import ENTER, ESC_ENTER, lines, run_repl

runner = CliRunner()
BAD_NAMES = {
    "a newline": "two\nlines",
    "ESC": "red\x1b[31mname",
    "a tab": "tab\there",
    "a carriage return": "over\rwritten",
    "DEL": "del\x7fete",
    "a C1 control": "csi\x9bname",
    "a bidi override": "evil\u202etxt.exe",
    "a zero-width space": "zero\u200bwidth",
    "a line separator": "line\u2028sep",
}


@pytest.mark.parametrize("kind", sorted(BAD_NAMES))
def test_names_with_control_or_invisible_characters_are_refused(kind: str) -> None:
    with pytest.raises(SessionError, match="no control or invisible characters") as caught:
        check_name(BAD_NAMES[kind])
    message = str(caught.value)
    assert message.isprintable() and repr(BAD_NAMES[kind]) in message


@pytest.mark.parametrize("name", ["notes", "café-notes", "日本語のメモ", "v1.2 draft", "😀 ideas"])
def test_ordinary_names_are_kept(name: str) -> None:
    assert check_name(name) == name


def test_a_huge_name_is_refused_without_echoing_it() -> None:
    with pytest.raises(SessionError) as caught:
        check_name("x" * 1_000_000)
    assert len(str(caught.value)) < 200


def test_save_with_a_newline_in_the_name_is_refused_in_the_repl(chatrepl_env) -> None:
    result = run_repl(lines("hello") + "/save bad" + ESC_ENTER + "name" + ENTER)
    assert "error: invalid session name 'bad\\nname': no control or invisible" in result.output
    saved = [path.name for path in (chatrepl_env.home / "sessions").iterdir()]
    assert saved == ["hello.json"]


def test_rename_to_a_name_with_escape_is_refused(chatrepl_env) -> None:
    run_repl(lines("hello"))
    result = runner.invoke(app, ["sessions", "rename", "hello", "x\x1b]52;c;aGk=\x07"])
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and result.stderr.count("\n") == 1
    assert "no control or invisible characters" in result.stderr
    assert (chatrepl_env.home / "sessions" / "hello.json").exists()


def write_session(root: Path, name: str) -> None:
    document = {"version": 2, "name": name, "updated": "2026-01-01T00:00:00+00:00"}
    (root / f"{name}.json").write_text(json.dumps({**document, "messages": []}))


def test_existing_files_with_such_names_are_listed_visibly(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    root.mkdir()
    for name in BAD_NAMES.values():
        write_session(root, name)
    (root / "broken\x1b[2J.json").write_text("{not json")
    listed = runner.invoke(app, ["sessions", "list"]).stdout
    rows = listed.splitlines()
    assert len(rows) == len(BAD_NAMES) + 1  # one line each
    assert all(row.isprintable() for row in rows)
    shown = ["two\\nlines", "red\\x1b[31mname", "tab\\there", "evil<U+202E>txt.exe"]
    assert all(any(row.startswith(f"{name} ") for row in rows) for name in shown)
    assert rows[-1].startswith("broken\\x1b[2J ") and "unreadable" in rows[-1]
    assert "broken\\x1b[2J.json" in rows[-1]


def test_the_repl_lists_them_visibly_and_resuming_one_is_one_line(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    root.mkdir()
    write_session(root, "red\x1b[31mname")
    assert "red\\x1b[31mname" in run_repl(lines("/sessions")).output
    result = runner.invoke(app, ["--resume", "red\x1b[31mname"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr
    assert "no control or invisible characters" in result.stderr
    assert SessionStore(root).names() == ["red\x1b[31mname"]  # the file is left as it is
