"""Disk faults lose nothing: a failed save is one line naming the file and the cause, the
conversation stays in memory, the old file stays whole, no temp file is left, and the next save
writes everything. Also: no empty session is left behind, and `ask` saves its question first."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.conversation.messages import Message
from chatrepl.conversation.store import SessionBusy, SessionStore
from chatrepl.errors import SessionError
from tests.harness import lines, run_repl
from tests.test_e2e import PROMPT, spawn, type_line
from tests.test_session_locks import chat, contents
from tests.test_sessions import REPO, validate

STEPS = ("mkstemp", "write", "fsync", "replace", "directory fsync")
FAULTS = {
    errno.ENOSPC: "No space left on device",
    errno.EACCES: "Permission denied",
    errno.EROFS: "Read-only file system",
}


def inject(monkeypatch: pytest.MonkeyPatch, step: str, code: int) -> None:
    """Make one step of the next session writes fail with OSError(code)."""
    temp_fds: set[int] = set()
    real_mkstemp, real_write, real_fsync = tempfile.mkstemp, os.write, os.fsync

    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code), *args[:1])

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        if step == "mkstemp":
            fail()
        fd, name = real_mkstemp(*args, **kwargs)
        temp_fds.add(fd)
        return fd, name

    def write(fd: int, data: bytes) -> int:
        if step == "write" and fd in temp_fds:
            fail()
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        is_directory = stat.S_ISDIR(os.fstat(fd).st_mode)
        if step == ("directory fsync" if is_directory else "fsync"):
            fail()
        real_fsync(fd)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    if step == "replace":
        monkeypatch.setattr(os, "replace", lambda src, dst: fail(src))


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("code", list(FAULTS))
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_each_write_step_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, code: int
) -> None:
    store = SessionStore(tmp_path / "sessions", keep_open=True)
    conversation = chat("first question", "first answer", name="work")
    path = store.save(conversation)
    before = path.read_bytes()
    conversation.add(Message("user", "second question"))
    with monkeypatch.context() as patched:
        inject(patched, step, code)
        with pytest.raises(SessionError) as failure:
            store.save(conversation)
    message = str(failure.value)
    assert message == f"cannot save session to {path}: {FAULTS[code]}"  # one line: file, cause
    assert temp_files(path.parent) == []
    if step == "directory fsync":  # the rename was done: the new file is there, whole
        assert contents(path) == ["first question", "first answer", "second question"]
    else:
        assert path.read_bytes() == before
    assert len(conversation.messages) == 3  # still in memory
    store.save(conversation)  # the next save writes everything
    assert contents(path) == ["first question", "first answer", "second question"]
    validate(path)
    store.close()


def test_a_full_disk_in_the_repl_is_one_line_and_the_next_turn_saves_all(
    chatrepl_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = {"n": 0}

    def replace_failing_for_turn_two(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] in (3, 4):  # the second turn's question and reply
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_for_turn_two)
    result = run_repl(lines("one", "two", "three"))
    path = chatrepl_env.home / "sessions" / "one.json"
    failures = [line for line in result.output.splitlines() if "autosave failed" in line]
    assert (
        failures
        == [f"error: autosave failed: cannot save session to {path}: No space left on device"] * 2
    )
    assert "Echo: three" in result.output and "Traceback" not in result.output
    assert contents(path) == ["one", "Echo: one", "two", "Echo: two", "three", "Echo: three"]
    assert temp_files(path.parent) == []


def test_slash_save_after_failed_autosaves_writes_everything(
    chatrepl_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = {"n": 0}

    def replace_failing_twice(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:  # the first turn's question and reply
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), src)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_twice)
    result = run_repl(lines("alpha", "/save"))
    path = chatrepl_env.home / "sessions" / "alpha.json"
    assert result.output.count("Read-only file system") == 2
    assert f"saved as alpha ({path})" in result.output
    assert contents(path) == ["alpha", "Echo: alpha"]


def test_a_file_where_the_directory_should_be_then_the_directory_back(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    store = SessionStore(root)
    conversation = chat("kept", name="work")
    store.save(conversation)
    aside = tmp_path / "aside"
    root.rename(aside)
    root.write_text("not a directory")
    conversation.add(Message("assistant", "in memory"))
    with pytest.raises(SessionError, match=rf"{root}.*(Not a directory|File exists)"):
        store.save(conversation)
    assert contents(aside / "work.json") == ["kept"]  # the previous file, intact
    root.unlink()
    aside.rename(root)
    store.save(conversation)
    assert contents(root / "work.json") == ["kept", "in memory"]
    assert [p.name for p in root.iterdir()] == ["work.json"]


def test_a_deleted_sessions_directory_is_made_again_and_locked_again(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    store = SessionStore(root, keep_open=True)
    conversation = chat("first", name="work")
    store.save(conversation)
    shutil.rmtree(root)
    conversation.add(Message("assistant", "after the rmtree"))
    store.save(conversation)
    assert contents(root / "work.json") == ["first", "after the rmtree"]
    with pytest.raises(SessionBusy):  # held again, in the new directory
        SessionStore(root, keep_open=True).load("work")
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0500 directory anyway")
def test_a_read_only_directory(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    store = SessionStore(root)
    conversation = chat("kept", name="work")
    store.save(conversation)
    root.chmod(0o500)
    try:
        conversation.add(Message("assistant", "in memory"))
        with pytest.raises(SessionError, match="Permission denied"):
            store.save(conversation)
        assert contents(root / "work.json") == ["kept"]
        assert SessionStore(root, keep_open=True).load("work").messages[0].content == "kept"
    finally:
        root.chmod(0o700)
    store.save(conversation)
    assert contents(root / "work.json") == ["kept", "in memory"]


def test_a_failed_first_message_leaves_no_session_behind(chatrepl_env) -> None:
    chatrepl_env.server.fail(500, "down", persistent=True)
    result = run_repl(lines("never answered"))
    assert "error: the server failed" in result.output
    root = chatrepl_env.home / "sessions"
    assert not root.exists() or list(root.iterdir()) == []
    continued = CliRunner().invoke(app, ["--continue"])
    assert "no saved session to continue yet" in continued.stderr


def test_ask_with_a_failing_server_leaves_the_session_as_it_was(chatrepl_env) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ask", "--session", "kept", "first"]).exit_code == 0
    chatrepl_env.server.fail(500, "down", persistent=True)
    assert runner.invoke(app, ["ask", "--session", "kept", "second"]).exit_code == 1
    assert runner.invoke(app, ["ask", "--session", "new-one", "hello"]).exit_code == 1
    root = chatrepl_env.home / "sessions"
    assert contents(root / "kept.json") == ["first", "Echo: first"]
    assert sorted(p.name for p in root.iterdir()) == ["kept.json"]  # no empty "new-one"


def test_ask_saves_the_question_before_sending_it(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.reply = "slow " * 200
    server.delay = 0.2
    path = chatrepl_env.home / "sessions" / "asked.json"
    child = subprocess.Popen(
        [sys.executable, "-m", "chatrepl", "ask", "--session", "asked", "my question"],
        env=chatrepl_env.env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: bool(server.bodies("/chat/completions")), child)
        assert contents(path) == ["my question"]  # on disk before the request was sent
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert contents(path) == ["my question"]  # a killed ask loses only the reply
    validate(path)


def test_ctrl_c_before_the_first_token_saves_no_empty_reply(chatrepl_env) -> None:
    server = chatrepl_env.server
    assert CliRunner().invoke(app, ["ask", "--session", "calm", "first"]).exit_code == 0
    server.delay = 3  # the first words come 3 s after the stream opens
    child = spawn(chatrepl_env.env, "--resume", "calm")
    child.expect(PROMPT["chat"])
    type_line(child, "second")
    child.expect("waiting for gpt-4o-mini")
    child.sendintr()
    child.expect(PROMPT["chat"])
    child.sendintr()  # clear the line the text was put back in
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    saved = json.loads((chatrepl_env.home / "sessions" / "calm.json").read_text())
    assert [m["content"] for m in saved["messages"]] == ["first", "Echo: first"]


def wait_for(condition: Callable[[], bool], child: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, "the process ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
