"""SessionStore: atomic writes, corrupt files, refused names, schema-valid files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from chatrepl.conversation import session_format
from chatrepl.conversation import store as sessions
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, Usage
from chatrepl.conversation.store import SessionStore
from chatrepl.engine.history import chat_history
from chatrepl.errors import SessionError

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "sessions" / "session.schema.json").read_text())


def validate(path: Path) -> None:
    """Fail unless the file matches the published session schema."""
    jsonschema.validate(
        json.loads(path.read_text()), SCHEMA, format_checker=jsonschema.FormatChecker()
    )


def conversation(*texts: str) -> Conversation:
    convo = Conversation(chat_model="gpt-4o-mini", completion_model="gpt-3.5-turbo-instruct")
    for index, text in enumerate(texts):
        convo.add(Message("user" if index % 2 == 0 else "assistant", text, model="m"))
    return convo


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def test_save_and_load_round_trip(store: SessionStore) -> None:
    convo = conversation("Hello there, how are you?", "Fine.")
    convo.system, convo.suffix, convo.mode = "be brief", "END", "complete"
    convo.messages[1].usage = Usage(1, 2, 3)
    path = store.save(convo)
    loaded = SessionStore(store.root).load(convo.name)
    assert session_format.to_document(loaded) == session_format.to_document(convo)
    validate(path)


def test_unnamed_session_gets_a_readable_unique_name(store: SessionStore) -> None:
    first, second = (
        conversation("Explain Python decorators!"),
        conversation("Explain Python decorators!"),
    )
    store.save(first)
    store.save(second)
    assert first.name == "explain-python-decorators"
    assert second.name == "explain-python-decorators-2"


def test_example_session_loads_and_validates() -> None:
    store = SessionStore(REPO / "sessions")
    example = store.load("example")
    roles = [m.role for m in example.messages]
    chat_roles = ["user", "assistant", "system", "user", "assistant", "tool", "assistant"]
    assert roles == [*chat_roles, "user", "assistant"]
    sent = chat_history(example)
    # The summary stands for the first exchange; completion-mode turns are never chat history.
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "assistant"]
    assert sent[0].is_summary and sent[1].attachments[0].name == "notes.md"
    assert all(m.mode == "chat" for m in sent)
    validate(REPO / "sessions" / "example.json")


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", ".hidden", "", "x" * 101])
def test_unsafe_names_are_refused(store: SessionStore, name: str) -> None:
    with pytest.raises(SessionError):
        store.path(name)
    convo = conversation("hi")
    convo.name = name
    if name:  # an empty name means "generate one"
        with pytest.raises(SessionError):
            store.save(convo)
    assert not (store.root.parent / "evil.json").exists()


def test_crash_during_write_keeps_the_old_file(store: SessionStore, monkeypatch) -> None:
    convo = conversation("first version")
    path = store.save(convo)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    convo.add(Message("assistant", "second version"))
    with pytest.raises(SessionError, match="power cut"):
        store.save(convo)
    assert path.read_bytes() == before
    assert [p.name for p in store.root.iterdir()] == [path.name]  # no temp file left behind


def test_killed_writer_leaves_old_file(store: SessionStore, tmp_path: Path) -> None:
    """A process killed between writing the temp file and renaming it changes nothing."""
    convo = conversation("keep me")
    path = store.save(convo)
    before = path.read_bytes()
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from chatrepl.conversation import store as sessions\n"
        "def die(src, dst): os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = die\n"
        "sessions.write_atomically(Path(sys.argv[1]), 'x' * 100000)\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO)
    assert result.returncode != 0
    assert path.read_bytes() == before


def test_corrupt_file_is_reported_and_never_overwritten(store: SessionStore) -> None:
    store.root.mkdir(parents=True)
    broken = store.root / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SessionError, match=r"broken\.json"):
        store.load("broken")
    convo = conversation("hello")
    convo.name = "broken"
    with pytest.raises(SessionError, match="already exists"):
        store.save(convo)
    assert broken.read_text() == "{not json"
    (listed,) = store.list()
    assert listed.name == "broken" and "broken.json" in listed.problem


def test_wrong_shape_is_corrupt(store: SessionStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "odd.json").write_text(json.dumps({"version": 2, "messages": [{"role": 3}]}))
    with pytest.raises(SessionError, match=r"odd\.json"):
        store.load("odd")


def test_list_latest_delete_rename(store: SessionStore) -> None:
    older, newer = conversation("older one"), conversation("newer one")
    store.save(older)
    store.save(newer)
    os.utime(store.path(older.name), (1, 1))
    assert store.latest() == "newer-one"
    store.rename("older-one", "renamed")
    assert store.load("renamed").name == "renamed"
    assert json.loads(store.path("renamed").read_text())["name"] == "renamed"
    assert not store.exists("older-one")
    store.delete("renamed")
    assert store.names() == ["newer-one"]
    with pytest.raises(SessionError):
        store.delete("renamed")
    with pytest.raises(SessionError):
        store.rename("newer-one", "../x")


def test_saving_onto_another_sessions_name_is_refused(store: SessionStore) -> None:
    store.save(conversation("taken name"))
    other = conversation("something else")
    other.name = "taken-name"
    with pytest.raises(SessionError, match="already exists"):
        SessionStore(store.root).save(other)


def test_no_secrets_in_session_files(store: SessionStore, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-never-be-saved")
    path = store.save(conversation("hello"))
    assert "sk-secret" not in path.read_text()


def test_slugify() -> None:
    assert sessions.slugify("  What's up, Doc?!  ") == "what-s-up-doc"
    assert sessions.slugify("日本語") == ""


def test_deferred_messages_are_parsed_when_first_read(store: SessionStore) -> None:
    """A resumed REPL's prompt does not wait for the messages: the file's settings are read at
    once, the messages when first asked for, and they are the same as a whole read's."""
    convo = conversation("one", "two\n  {not a new message}", "three")
    convo.messages[1].usage = Usage(1, 2, 3)
    store.save(convo)
    deferred = SessionStore(store.root).load(convo.name, defer_messages=True)
    assert deferred.message_count == 3 and not deferred.messages_ready
    assert deferred.chat_model == "gpt-4o-mini"
    whole = SessionStore(store.root).load(convo.name)
    assert session_format.to_document(deferred) == session_format.to_document(whole)
    assert deferred.messages_ready and deferred.message_count == 3


def test_deferred_messages_are_parsed_once_whichever_thread_asks(store: SessionStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store.save(conversation(*(f"message {n}" for n in range(200))))
    (name,) = [s.name for s in store.list()]
    deferred = SessionStore(store.root).load(name, defer_messages=True)
    with ThreadPoolExecutor(4) as pool:
        lists = list(pool.map(lambda _: deferred.messages, range(8)))
    assert all(found is lists[0] for found in lists) and len(lists[0]) == 200


def test_a_corrupt_deferred_message_is_an_error_and_nothing_can_be_saved(
    store: SessionStore,
) -> None:
    convo = conversation("fine", "also fine")
    path = store.save(convo)
    broken = path.read_text().replace('"role": "assistant"', '"role": 3')
    path.write_text(broken)
    deferred = SessionStore(store.root).load(convo.name, defer_messages=True)
    assert deferred.message_count == 2  # the settings could be read
    for _ in range(2):  # and the error stays: every later read fails the same way
        with pytest.raises(SessionError, match=rf"{convo.name}\.json: message 2"):
            deferred.load_messages()
    with pytest.raises(SessionError):
        store.save(deferred)
    assert path.read_text() == broken


def test_an_edited_head_that_looks_like_the_split_point_is_read_whole(
    store: SessionStore,
) -> None:
    convo = conversation("hello", "hi")
    path = store.save(convo)
    edited = ',\n "x": {"y": 1\n,\n "messages": 2},\n "messages": ['  # a nested "messages"
    path.write_text(path.read_text().replace(',\n "messages": [', edited, 1))
    loaded = SessionStore(store.root).load(convo.name, defer_messages=True)
    assert loaded.messages_ready and loaded.extra == {"x": {"y": 1, "messages": 2}}
    assert [m.content for m in loaded.messages] == ["hello", "hi"]


@pytest.mark.parametrize("layout", ["v1", "reindented", "extra field first"])
def test_files_laid_out_otherwise_are_read_whole(store: SessionStore, layout: str) -> None:
    convo = conversation("hello", "hi")
    path = store.save(convo)
    document = json.loads(path.read_text())
    if layout == "v1":
        document["version"] = 1
    if layout == "extra field first":
        document = {"from_the_future": True, **document}
    path.write_text(json.dumps(document, indent=2))
    loaded = SessionStore(store.root).load(convo.name, defer_messages=True)
    assert loaded.messages_ready and [m.content for m in loaded.messages] == ["hello", "hi"]
