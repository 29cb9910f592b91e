"""The vendored request schemas (tests/openapi/request_schemas.json) and the validator on them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.openapi.extract import extract_schemas
from tests.openapi_schema import DEFAULT_SPEC, SPEC_ENV, spec_path, validate_request

# The full official spec, when the repository is cloned beside ../shared (optional).
FULL_SPEC = Path(__file__).resolve().parents[2] / "shared" / "openai-openapi" / "openapi.json"

TOOL_CHAT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C, clear"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
    "max_tokens": 64,
}

COMPLETION: dict[str, Any] = {
    "model": "gpt-3.5-turbo-instruct",
    "prompt": "def add(a, b):\n",
    "suffix": "\n\nprint(add(1, 2))\n",
    "max_tokens": 32,
    "stream": False,
}


def vendored() -> dict[str, Any]:
    return json.loads(DEFAULT_SPEC.read_text(encoding="utf-8"))


def changed(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with ``fields`` replaced."""
    return copy.deepcopy(body) | fields


def test_the_vendored_file_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPEC_ENV, raising=False)
    assert spec_path() == DEFAULT_SPEC
    monkeypatch.setenv(SPEC_ENV, "/elsewhere/openapi.json")
    assert spec_path() == Path("/elsewhere/openapi.json")


def test_header_names_the_source_and_roots() -> None:
    header = vendored()["x-vendored"]
    assert header["roots"] == ["CreateChatCompletionRequest", "CreateCompletionRequest"]
    assert header["info_version"] and len(header["sha256"]) == 64 and header["date"]


def test_vendored_schemas_are_self_contained() -> None:
    """Every $ref in the vendored file resolves to a schema inside it."""
    schemas = vendored()["components"]["schemas"]
    assert extract_schemas(vendored()) == schemas


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/openai/deployments/d/chat/completions"])
def test_chat_with_tools_passes(path: str) -> None:
    validate_request(path, TOOL_CHAT)
    validate_request(path, changed(TOOL_CHAT, tool_choice="auto"))


@pytest.mark.parametrize(
    "body",
    [
        changed(TOOL_CHAT, messages=[{"role": "wizard", "content": "hi"}]),
        changed(TOOL_CHAT, max_tokens="64"),
        changed(TOOL_CHAT, tool_choice="sometimes"),
        changed(TOOL_CHAT, messages=[{"role": "tool", "content": "no tool_call_id"}]),
        {"messages": [{"role": "user", "content": "no model"}]},
    ],
    ids=["bad-role", "max-tokens-string", "bad-tool-choice", "tool-without-id", "no-model"],
)
def test_bad_chat_fails(body: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_request("/v1/chat/completions", body)


def test_completion_with_suffix_passes() -> None:
    validate_request("/v1/completions", COMPLETION)


def test_bad_completion_fails() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_request("/v1/completions", changed(COMPLETION, max_tokens="32"))


@pytest.mark.skipif(not FULL_SPEC.is_file(), reason=f"full spec not found at {FULL_SPEC}")
def test_vendored_schemas_match_the_full_spec() -> None:
    """Re-extracting from ../shared gives the vendored schemas (else rerun extract.py)."""
    spec = json.loads(FULL_SPEC.read_text(encoding="utf-8"))
    assert extract_schemas(spec) == vendored()["components"]["schemas"]
