"""Session format v2: v1 files load and stay untouched until changed, unknown fields survive,
newer files are refused and never overwritten, and every kind of message round-trips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from chatrepl.conversation import session_format
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import (
    Attachment,
    GenerationParams,
    Message,
    ToolCall,
    Usage,
)
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import SessionError

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "sessions" / "session.schema.json").read_text())
V1_SCHEMA = json.loads((REPO / "sessions" / "session.v1.schema.json").read_text())


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    root = tmp_path / "sessions"
    root.mkdir()
    return SessionStore(root)


def rich_conversation() -> Conversation:
    """A conversation holding every kind of message chatrepl can record."""
    convo = Conversation(name="rich", chat_model="m", completion_model="c", system="be brief")
    convo.params = GenerationParams(temperature=0.2, stop=("END",))
    first = convo.add(Message("user", "hello", model="m"))
    reply = convo.add(Message("assistant", "hi", model="m", usage=Usage(3, 1, 4)))
    summary = convo.add(Message("system", "they greeted", summary_of=[first.id, reply.id]))
    first.summarized_by = reply.summarized_by = summary.id
    convo.add(
        Message(
            "user",
            "read it",
            attachments=[Attachment("notes.md", "# hi")],
            params=GenerationParams(seed=7),
        )
    )
    convo.add(Message("assistant", "", tool_calls=[ToolCall("call_1", "read_file", '{"p": 1}')]))
    convo.add(Message("tool", "contents", tool_call_id="call_1", name="read_file"))
    convo.add(Message("assistant", "done", finish_reason="stop", interrupted=True))
    convo.add(Message("user", "def f(", mode="complete"))
    return convo


def test_every_kind_of_message_round_trips_and_validates(store: SessionStore) -> None:
    convo = rich_conversation()
    path = store.save(convo)
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)
    loaded = SessionStore(store.root).load("rich")
    assert session_format.to_document(loaded) == session_format.to_document(convo)
    assert loaded.messages[4].tool_calls == [ToolCall("call_1", "read_file", '{"p": 1}')]
    assert loaded.messages[3].params == GenerationParams(seed=7)
    assert loaded.params.stop == ("END",)


def test_a_v1_file_loads_and_is_not_rewritten_until_the_session_changes(
    store: SessionStore,
) -> None:
    path = store.root / "old.json"
    shutil.copy(REPO / "sessions" / "example-v1.json", path)
    jsonschema.validate(json.loads(path.read_text()), V1_SCHEMA)
    before = path.read_bytes()
    convo = store.load("old")
    assert [m.role for m in convo.messages] == ["user", "assistant", "user", "assistant"]
    assert convo.messages[1].usage == Usage(24, 31, 55)
    assert len({m.id for m in convo.messages}) == 4  # ids given on load
    store.save(convo)  # unchanged: the v1 file stays byte for byte
    assert path.read_bytes() == before
    convo.add(Message("user", "and now?"))
    store.save(convo)
    saved = json.loads(path.read_text())
    assert saved["version"] == 2
    jsonschema.validate(saved, SCHEMA)


def test_unknown_fields_survive_a_load_and_save(store: SessionStore) -> None:
    document = session_format.to_document(rich_conversation())
    document["future_setting"] = {"x": 1}
    document["messages"][0]["reactions"] = ["+1"]
    (store.root / "rich.json").write_text(json.dumps(document))
    convo = store.load("rich")
    convo.add(Message("user", "more"))
    store.save(convo)
    saved = json.loads((store.root / "rich.json").read_text())
    assert saved["future_setting"] == {"x": 1}
    assert saved["messages"][0]["reactions"] == ["+1"]


def test_a_newer_file_is_refused_and_never_overwritten(store: SessionStore) -> None:
    path = store.root / "future.json"
    path.write_text(json.dumps({"version": 3, "messages": [], "name": "future"}))
    before = path.read_bytes()
    with pytest.raises(SessionError, match=r"newer chatrepl.*upgrade"):
        store.load("future")
    convo = Conversation(name="future")
    convo.add(Message("user", "hi"))
    with pytest.raises(SessionError, match="already exists"):
        store.save(convo)
    assert path.read_bytes() == before
    (listed,) = store.list()
    assert "newer chatrepl" in listed.problem


@pytest.mark.parametrize(
    "message",
    [
        {"role": "robot", "content": "x"},
        {"role": "user", "content": 5},
        {"role": "user", "content": "x", "tool_calls": "nope"},
        {"role": "assistant", "content": "x", "tool_calls": [{"id": 1}]},
        {"role": "user", "content": "x", "usage": {"prompt_tokens": "many"}},
        {"role": "user", "content": "x", "mode": "dream"},
        {"role": "user", "content": "x", "params": {"temperature": 0.1, "bogus": 1}},
    ],
)
def test_malformed_messages_are_one_clear_error(store: SessionStore, message: dict) -> None:
    document = {"version": 2, "messages": [message]}
    if message.get("params"):
        # Unknown parameter names are ignored (a newer chatrepl may add some): that one loads.
        assert session_format.from_document(document).messages[0].params is not None
        return
    (store.root / "bad.json").write_text(json.dumps(document))
    with pytest.raises(SessionError, match=r"bad\.json.*message 1"):
        store.load("bad")
