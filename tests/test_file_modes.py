"""What chatrepl creates is private: directories 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.conversation.store import SessionStore
from chatrepl.files import private_dir, private_file, write_atomically
from tests.harness import lines, run_repl
from tests.test_session_locks import chat


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: what is not made private on purpose comes out world-writable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fresh_home(chatrepl_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CHATREPL_HOME that does not exist yet, so chatrepl creates it."""
    home = chatrepl_env.home / "new" / "home"
    monkeypatch.setenv("CHATREPL_HOME", str(home))
    return home


def test_the_repl_creates_only_private_directories_and_files(
    permissive_umask: None, fresh_home: Path
) -> None:
    run_repl(lines("private words"))
    created = {
        fresh_home.parent: 0o700,
        fresh_home: 0o700,
        fresh_home / "sessions": 0o700,
        fresh_home / "sessions" / "private-words.json": 0o600,
        fresh_home / "history": 0o600,
    }
    assert {path: mode(path) for path in created} == created


def test_ask_session_files_are_private(permissive_umask: None, fresh_home: Path) -> None:
    assert CliRunner().invoke(app, ["ask", "--session", "quiet", "hi"]).exit_code == 0
    assert mode(fresh_home / "sessions") == 0o700
    assert mode(fresh_home / "sessions" / "quiet.json") == 0o600


def test_an_existing_history_file_is_made_private(chatrepl_env, permissive_umask: None) -> None:
    history = chatrepl_env.home / "history"
    history.write_text("\n# old\n+typed before\n")
    history.chmod(0o644)
    run_repl(lines("/help"))
    assert mode(history) == 0o600
    assert "+typed before" in history.read_text()  # made private, not emptied


def test_lock_files_are_private(tmp_path: Path, permissive_umask: None) -> None:
    store = SessionStore(tmp_path / "sessions", keep_open=True)
    store.save(chat("hello", name="locked"))
    assert mode(store.lock_path("locked")) == 0o600
    store.close()


def test_directories_that_exist_are_left_as_they_are(
    tmp_path: Path, permissive_umask: None
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    private_dir(mine / "a" / "b")
    assert (mode(mine), mode(mine / "a"), mode(mine / "a" / "b")) == (0o755, 0o700, 0o700)


def test_helpers_make_files_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "x" / "data.json", "{}")
        private_file(tmp_path / "y" / "log")
    finally:
        os.umask(old)
    assert mode(tmp_path / "x") == mode(tmp_path / "y") == 0o700
    assert mode(tmp_path / "x" / "data.json") == mode(tmp_path / "y" / "log") == 0o600
