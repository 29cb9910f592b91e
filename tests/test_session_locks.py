"""Two chatrepl processes never lose each other's turns: sessions are locked while open or
written, a session open elsewhere is offered as a fork, concurrent `ask --session` calls merge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from chatrepl.backends.scripted import ScriptedBackend
from chatrepl.cli.typer_app import app
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message
from chatrepl.conversation.store import SessionBusy, SessionStore
from chatrepl.errors import SessionError
from chatrepl.files import BRIEF, FileLock
from chatrepl.repl.state import ReplState
from tests.harness import lines, run_repl
from tests.test_e2e import PROMPT, spawn, type_line
from tests.test_sessions import REPO, validate

runner = CliRunner()


def chat(*texts: str, name: str | None = None) -> Conversation:
    conversation = Conversation(name=name, chat_model="m", completion_model="c")
    for index, text in enumerate(texts):
        conversation.add(Message("user" if index % 2 == 0 else "assistant", text))
    return conversation


def contents(path: Path) -> list[str]:
    return [m["content"] for m in json.loads(path.read_text())["messages"]]


def hidden_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


def test_a_session_open_in_one_repl_cannot_be_opened_in_another(root: Path) -> None:
    first = SessionStore(root, keep_open=True)
    first.save(chat("hello", "hi", name="work"))
    second = SessionStore(root, keep_open=True)
    with pytest.raises(
        SessionBusy, match=rf"'work' is open in another chatrepl \(pid {os.getpid()}\)"
    ):
        second.load("work")
    with pytest.raises(SessionBusy):
        second.save(chat("mine", name="work"))
    assert contents(root / "work.json") == ["hello", "hi"]
    first.close()
    assert hidden_files(root) == []  # the lock file goes with the lock
    assert second.load("work").messages[0].content == "hello"


def test_rename_and_delete_are_refused_while_open_elsewhere(root: Path) -> None:
    repl = SessionStore(root, keep_open=True)
    repl.save(chat("keep me", name="open"))
    cli = SessionStore(root)
    for action in (lambda: cli.rename("open", "moved"), lambda: cli.delete("open")):
        with pytest.raises(SessionBusy, match=r"open in another chatrepl.*close it there first"):
            action()
    assert contents(root / "open.json") == ["keep me"] and not (root / "moved.json").exists()
    repl.close()
    cli.rename("open", "moved")
    assert contents(root / "moved.json") == ["keep me"]
    cli.delete("moved")
    assert list(root.iterdir()) == []


def test_cli_rename_of_a_session_open_in_a_repl_is_one_line(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    repl = SessionStore(root, keep_open=True)
    repl.save(chat("in use", name="busy"))
    result = runner.invoke(app, ["sessions", "rename", "busy", "other"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot rename session 'busy': it is open in another")
    assert result.stderr.count("\n") == 1
    result = runner.invoke(app, ["sessions", "delete", "busy", "--yes"])
    assert result.exit_code == 1 and "cannot delete session 'busy'" in result.stderr
    assert contents(root / "busy.json") == ["in use"]
    repl.close()


def test_a_killed_holder_leaves_nothing_locked(root: Path) -> None:
    SessionStore(root).save(chat("survives", name="crashy"))
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from chatrepl.conversation.store import SessionStore\n"
        "store = SessionStore(Path(sys.argv[1]), keep_open=True)\n"
        "store.load('crashy')\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SessionBusy, match=f"pid {holder.pid}"):
            SessionStore(root, keep_open=True).load("crashy")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (root / ".crashy.lock").exists()  # left behind by the dead process, but not locked
    store = SessionStore(root, keep_open=True)
    assert store.load("crashy").messages[0].content == "survives"
    store.close()
    assert hidden_files(root) == []


def test_a_writer_waits_for_another_writers_brief_lock(root: Path) -> None:
    store = SessionStore(root)
    store.save(chat("one", name="shared"))
    lock = FileLock(store.lock_path("shared"))
    lock.acquire(BRIEF)
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        released.set()
        lock.release()

    threading.Thread(target=release_later).start()
    conversation = store.load("shared")
    conversation.add(Message("assistant", "two"))
    store.save(conversation)
    assert released.is_set()  # the save waited for the lock rather than writing under it
    assert contents(root / "shared.json") == ["one", "two"]


def test_a_writer_gives_up_at_once_on_a_session_open_in_a_repl(root: Path) -> None:
    repl = SessionStore(root, keep_open=True)
    repl.save(chat("mine", name="held"))
    started = time.monotonic()
    with pytest.raises(SessionBusy, match="open in another chatrepl"):
        SessionStore(root).save_turn(chat("q", name="held"), [], wait=30)
    assert time.monotonic() - started < 5  # not the 30 s wait: a REPL does not let go soon
    repl.close()


def test_stale_temp_files_are_removed_when_the_lock_is_taken(root: Path) -> None:
    store = SessionStore(root)
    store.save(chat("x", name="x"))
    store.save(chat("y", name="x.json.y"))
    stale = root / ".x.json.abcd_123.tmp"  # a writer of "x" killed between write and rename
    other = root / ".x.json.y.json.abcd_123.tmp"  # session "x.json.y"'s, not "x"'s
    stale.write_text("half")
    other.write_text("half")
    keeper = SessionStore(root, keep_open=True)
    keeper.load("x")
    assert not stale.exists() and other.exists()
    keeper.close()


def test_save_turn_keeps_turns_saved_meanwhile_by_others(root: Path) -> None:
    SessionStore(root).save(chat("old question", "old answer", name="both"))
    first, second = SessionStore(root), SessionStore(root)
    mine, theirs = first.load("both"), second.load("both")
    question = mine.add(Message("user", "my question"))
    first.save_turn(mine, [question])
    their_turn = [theirs.add(Message("user", "their question"))]
    second.save_turn(theirs, their_turn)
    answer = mine.add(Message("assistant", "my answer"))
    first.save_turn(mine, [question, answer], replacing={question.id})
    their_turn.append(theirs.add(Message("assistant", "their answer")))
    second.save_turn(theirs, their_turn, replacing={their_turn[0].id})
    assert contents(root / "both.json") == [
        "old question",
        "old answer",
        "my question",
        "my answer",
        "their question",
        "their answer",
    ]
    validate(root / "both.json")


def test_save_turn_takes_a_failed_question_back(root: Path) -> None:
    store = SessionStore(root)
    conversation = chat(name="fresh")
    question = conversation.add(Message("user", "will fail"))
    store.save_turn(conversation, [question])
    assert contents(root / "fresh.json") == ["will fail"]
    conversation.messages.clear()  # the turn undone
    store.save_turn(conversation, [], replacing={question.id})
    assert list(root.iterdir()) == []  # a session this ask created, left empty, is not kept


def test_new_and_load_let_go_of_the_previous_session(root: Path) -> None:
    SessionStore(root).save(chat("other", name="other"))
    store = SessionStore(root, keep_open=True)
    state = ReplState(chat("first", name="first"), store, Settings(), ScriptedBackend())
    state.save()
    with pytest.raises(SessionBusy):
        SessionStore(root, keep_open=True).load("first")
    state.open("other")
    outsider = SessionStore(root, keep_open=True)
    assert outsider.load("first").name == "first"  # /load let go of it
    outsider.close()
    state.new_conversation()
    assert outsider.load("other").name == "other"  # /new let go of it
    outsider.close()
    state.close()


def test_load_of_a_session_open_elsewhere_is_refused_and_the_repl_goes_on(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    other = SessionStore(root, keep_open=True)
    other.save(chat("theirs", name="theirs"))
    result = run_repl(lines("/load theirs", "still here"))
    assert "error: session 'theirs' is open in another chatrepl" in result.output
    assert "Echo: still here" in result.output
    assert result.conversation.name != "theirs"
    assert contents(root / "theirs.json") == ["theirs"]
    other.close()


def test_resuming_a_session_open_elsewhere_opens_a_fork_when_asked(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    run_repl(lines("shared words"))
    other = SessionStore(root, keep_open=True)
    other.load("shared-words")  # another REPL has it open
    result = run_repl(lines("y", "in the fork"), resume="shared-words")
    other.close()
    assert "opened a fork of shared-words as shared-words-fork" in result.output
    assert result.conversation.name == "shared-words-fork"
    assert contents(root / "shared-words.json") == ["shared words", "Echo: shared words"]
    fork = contents(root / "shared-words-fork.json")
    assert fork == ["shared words", "Echo: shared words", "in the fork", "Echo: in the fork"]
    validate(root / "shared-words-fork.json")


def test_two_real_repls_on_one_session(chatrepl_env) -> None:
    """The second asks; 'n' leaves it unopened (exit 1), 'y' opens a fork; nothing is lost."""
    env = chatrepl_env.env
    first = spawn(env)
    first.expect(PROMPT["chat"])
    type_line(first, "first repl")
    first.expect("Echo: first repl")
    first.expect(PROMPT["chat"])
    declined = spawn(env, "--continue")
    declined.expect(r"is open in another chatrepl \(pid \d+\)\. Open a copy")
    type_line(declined, "n")
    declined.expect(pexpect.EOF)
    declined.close()
    assert declined.exitstatus == 1 and "not opened" in declined.before
    second = spawn(env, "--continue")
    second.expect("Open a copy")
    type_line(second, "")  # Enter: yes
    second.expect("opened a fork of first-repl as first-repl-fork")
    second.expect(PROMPT["chat"])
    type_line(second, "second repl")
    second.expect("Echo: second repl")
    second.expect(PROMPT["chat"])
    type_line(first, "first again")
    first.expect("Echo: first again")
    first.expect(PROMPT["chat"])
    for child in (first, second):
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    root = chatrepl_env.home / "sessions"
    assert contents(root / "first-repl.json")[2:] == ["first again", "Echo: first again"]
    assert contents(root / "first-repl-fork.json")[2:] == ["second repl", "Echo: second repl"]
    assert hidden_files(root) == []


def test_ten_concurrent_asks_into_one_session_lose_nothing(chatrepl_env) -> None:
    env = {**chatrepl_env.env, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "chatrepl", "ask", "--session", "same"]
    children = [
        subprocess.Popen(
            [*command, f"message {i}"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 10, results
    path = chatrepl_env.home / "sessions" / "same.json"
    validate(path)
    texts = contents(path)
    assert len(texts) == 20
    exchanges = list(zip(texts[0::2], texts[1::2], strict=True))
    # Every exchange whole, in some order: a question followed by its own answer.
    assert all(answer == f"Echo: {question}" for question, answer in exchanges)
    assert sorted(question for question, _ in exchanges) == [f"message {i}" for i in range(10)]
    assert hidden_files(path.parent) == []  # no lock or temp file left


def test_ask_into_a_session_open_in_a_repl_is_refused_before_sending(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    repl = SessionStore(root, keep_open=True)
    repl.save(chat("repl turn", name="desk"))
    result = runner.invoke(app, ["ask", "--session", "desk", "sneaky"])
    repl.close()
    assert result.exit_code == 1
    assert "session 'desk' is open in another chatrepl" in result.stderr
    assert chatrepl_env.server.bodies("/chat/completions") == []
    assert contents(root / "desk.json") == ["repl turn"]


def test_a_corrupt_session_is_not_overwritten_by_ask(chatrepl_env) -> None:
    root = chatrepl_env.home / "sessions"
    root.mkdir()
    (root / "bad.json").write_text("{nope")
    result = runner.invoke(app, ["ask", "--session", "bad", "hi"])
    assert result.exit_code == 1 and "bad.json" in result.stderr
    assert (root / "bad.json").read_text() == "{nope"
    with pytest.raises(SessionError):
        SessionStore(root).load("bad")
