"""Session loading fuzzed: whatever a session file holds (random JSON, wrong types in any field,
huge strings, deep nesting, invalid UTF-8, a truncated file), loading it either works or raises
one SessionError of one short line; the file is never modified, listing never raises, and what
loads can be saved again."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatrepl.conversation import session_format
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import SessionError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((REPO / "sessions" / "example.json").read_text())
MESSAGE_FIELDS = sorted({key for message in EXAMPLE["messages"] for key in message})
MAX_ERROR = 400  # characters: an error names the file and the problem, never echoes the data
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["\ud800", "\x1b[31m", "line\nbreak", "chat", "user", "assistant", "tool"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def check_load(root: Path, data: bytes) -> None:
    """The properties every session file must have, whatever it holds."""
    path = root / "fuzz.json"
    path.write_bytes(data)
    store = SessionStore(root)
    try:
        conversation = store.load("fuzz")
    except SessionError as error:
        message = str(error)
        assert "\n" not in message and len(message) < MAX_ERROR, message[:2000]
        assert "fuzz.json" in message
        conversation = None
    assert path.read_bytes() == data  # never modified by loading
    (info,) = store.list()
    assert (info.problem is None) == (conversation is not None)
    if conversation is not None:  # what loads can be written back and read again
        conversation.name = "copy"
        saved = SessionStore(root).save(conversation)
        session_format.from_document(json.loads(saved.read_text(encoding="utf-8")))
        saved.unlink()


def mutated(path: list[Any], value: Any) -> dict[str, Any]:
    """The example session with the field at `path` set to `value`."""
    document = copy.deepcopy(EXAMPLE)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(value=json_values)
def test_any_json_value_as_the_whole_file(tmp_path: Path, value: Any) -> None:
    check_load(tmp_path, encode(value))


@FUZZ
@given(key=st.sampled_from(sorted(EXAMPLE)), value=json_values)
def test_any_value_in_any_session_field(tmp_path: Path, key: str, value: Any) -> None:
    check_load(tmp_path, encode(mutated([key], value)))


@FUZZ
@given(
    index=st.integers(0, len(EXAMPLE["messages"]) - 1),
    key=st.sampled_from([*MESSAGE_FIELDS, "extra", "future_field"]),
    value=json_values,
)
def test_any_value_in_any_message_field(tmp_path: Path, index: int, key: str, value: Any) -> None:
    check_load(tmp_path, encode(mutated(["messages", index, key], value)))


@FUZZ
@given(
    where=st.sampled_from(
        [
            ["params", "temperature"],
            ["params", "stop"],
            ["params", "max_tokens"],
            ["messages", 1, "usage", "prompt_tokens"],
            ["messages", 1, "usage", "total_tokens"],
            ["messages", 3, "attachments", 0, "text"],
            ["messages", 3, "params", "seed"],
            ["messages", 4, "tool_calls", 0, "arguments"],
            ["messages", 2, "summary_of", 0],
        ]
    ),
    value=json_values,
)
def test_any_value_in_nested_fields(tmp_path: Path, where: list[Any], value: Any) -> None:
    check_load(tmp_path, encode(mutated(where, value)))


@FUZZ
@given(data=st.data())
def test_truncated_and_corrupted_bytes(tmp_path: Path, data: st.DataObject) -> None:
    original = (REPO / "sessions" / "example.json").read_bytes()
    cut = data.draw(st.integers(0, len(original)))
    junk = data.draw(st.binary(max_size=8))
    at = data.draw(st.integers(0, cut))
    check_load(tmp_path, original[:at] + junk + original[at:cut])


@pytest.mark.parametrize("depth", [50, 500, 5_000, 100_000])
@pytest.mark.parametrize("where", ["file", "unknown field", "message field", "stop"])
def test_deep_nesting(tmp_path: Path, depth: int, where: str) -> None:
    nested = ("[" * depth + "]" * depth).encode()
    document = encode(mutated(["params", "stop"], [0]) if where == "stop" else EXAMPLE)
    places = {
        "file": nested,
        "unknown field": document.replace(b'"format"', b'"deep": ' + nested + b', "format"'),
        "message field": document.replace(b'"role"', b'"deep": ' + nested + b', "role"', 1),
        "stop": document.replace(b'"stop": [0]', b'"stop": [' + nested + b"]"),
    }
    check_load(tmp_path, places[where])


@pytest.mark.parametrize(
    "path",
    [
        ["messages", 0, "content"],
        ["messages", 0, "role"],
        ["mode"],
        ["version"],
        ["messages", 1, "usage", "prompt_tokens"],
        ["future_field"],
    ],
)
def test_huge_strings(tmp_path: Path, path: list[Any]) -> None:
    check_load(tmp_path, encode(mutated(path, "x" * 5_000_000)))


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\xff\xfe{}",
        b'{"version": 2, "messages": [], "name": "\xc3"}',
        b'{"version": 2, "messages": [{"role": "user", "content": "\\udc80"}]}',
        b'{"version": 2, "params": {"temperature": NaN}}',
        b'{"version": 2, "params": {"max_tokens": Infinity}}',
        b'{"version": 2, "messages": [{"role": "assistant", "usage": '
        b'{"prompt_tokens": Infinity, "completion_tokens": 1}}]}',
        b'{"version": 2, "messages": [{"role": "user", "content": "x", "time": 1e999}]}',
        b'{"version": ' + b"9" * 5000 + b"}",
    ],
)
def test_known_troublemakers(tmp_path: Path, text: bytes) -> None:
    check_load(tmp_path, text)


def test_wrong_parameter_types_are_refused_in_one_line(tmp_path: Path) -> None:
    for name, value in [("temperature", "hot"), ("max_tokens", 1.5), ("stop", 3)]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(mutated(["params", name], value)))
        with pytest.raises(SessionError, match=rf"bad\.json.*{name} must be"):
            SessionStore(tmp_path).load("bad")


def test_unknown_fields_survive_even_one_named_extra(tmp_path: Path) -> None:
    document = mutated(["messages", 0, "extra"], {"from": "a newer chatrepl"})
    document["messages"][1]["reactions"] = ["+1"]
    (tmp_path / "s.json").write_text(json.dumps(document))
    store = SessionStore(tmp_path)
    conversation = store.load("s")
    conversation.touch()
    saved = json.loads(store.save(conversation).read_text())
    assert saved["messages"][0]["extra"] == {"from": "a newer chatrepl"}
    assert saved["messages"][1]["reactions"] == ["+1"]


def test_an_unpaired_surrogate_is_saved_as_valid_utf8(tmp_path: Path) -> None:
    document = mutated(["messages", 0, "content"], "a\ud800b")
    (tmp_path / "s.json").write_text(json.dumps(document))  # "a\\ud800b": valid JSON, UTF-8
    store = SessionStore(tmp_path)
    conversation = store.load("s")
    conversation.touch()
    text = store.save(conversation).read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert '"a\\ud800b"' in text
    assert SessionStore(tmp_path).load("s").messages[0].content == "a\ud800b"
