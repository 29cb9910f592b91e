"""Provider-neutral messages: everything a chat can hold, in chatrepl's own terms.

Nothing here knows an API's wire shape; each backend translates these into its SDK's form.
Fields a newer chatrepl wrote and this one does not know are kept in `extra` and written back,
so an older chatrepl never silently drops them.
"""

from __future__ import annotations

import math
import os
import reprlib
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

Mode = Literal["chat", "complete"]
Role = Literal["system", "user", "assistant", "tool"]
MODES: tuple[Mode, ...] = ("chat", "complete")
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
# Unknown fields are kept as they are; deeper nesting than this is refused (no session needs it,
# and writing it back could exhaust the interpreter's recursion limit).
MAX_NESTING = 64
_SHOWN = 60  # characters of a wrong value quoted in an error message


def now() -> str:
    """The current time as an ISO 8601 string in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    """A short id, unique within any realistic session (48 random bits)."""
    return os.urandom(6).hex()


def shown(value: Any) -> str:
    """A short repr of a value read from a file, for an error message (never the whole value)."""
    text = reprlib.repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def check_nesting(value: Any, what: str) -> None:
    """Raise ValueError when a JSON value is nested deeper than MAX_NESTING levels."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_NESTING:
            raise ValueError(f"{what} is nested more than {MAX_NESTING} levels deep")
        level = [child for item in level for child in _children(item)]


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else []


@dataclass
class ToolCall:
    """An assistant's request to run a tool: `arguments` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        """The saved form."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Any) -> ToolCall:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("id", "name")
        ):
            raise ValueError("a tool call needs an id and a name")
        arguments = data.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise ValueError("a tool call's arguments must be JSON text")
        return cls(data["id"], data["name"], arguments)


@dataclass
class Attachment:
    """A file included in a user turn: its name and its text, or, for an image, its media type
    and its bytes in base64 (`data`; `text` is then empty)."""

    name: str
    text: str
    media_type: str | None = None  # "image/png", ...: an image
    data: str | None = None  # base64

    @property
    def is_image(self) -> bool:
        """Whether this is an image (sent as a data URL), not a text file."""
        return self.data is not None

    def to_dict(self) -> dict[str, Any]:
        """The saved form."""
        saved = {"name": self.name, "text": self.text}
        if self.data is not None:
            media_type = self.media_type or "application/octet-stream"
            saved |= {"media_type": media_type, "data": self.data}
        return saved

    @classmethod
    def from_dict(cls, data: Any) -> Attachment:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("name", "text")
        ):
            raise ValueError("an attachment needs a name and a text")
        if data.get("data") is None:
            return cls(data["name"], data["text"])
        if not all(isinstance(data.get(key), str) for key in ("media_type", "data")):
            raise ValueError("an image attachment needs a media_type and its data as text")
        return cls(data["name"], data["text"], data["media_type"], data["data"])


@dataclass(frozen=True)
class Usage:
    """Token counts for one request, as the server reported them (or as counted locally)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_dict(self) -> dict[str, int]:
        """The saved form."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Usage:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict):
            raise ValueError("usage must be an object")
        prompt, completion, total = (data.get(key) for key in _USAGE_KEYS)
        if type(prompt) is int and type(completion) is int and type(total) is int:
            return cls(prompt, completion, total)  # as chatrepl writes it: no conversions
        try:
            counts = [int(data[key]) for key in _USAGE_KEYS[:2]]
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise ValueError("usage needs prompt_tokens and completion_tokens") from error
        total = data.get("total_tokens")
        return cls(*counts, int(total) if isinstance(total, int) else sum(counts))


_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


@dataclass(frozen=True)
class Timing:
    """How long a reply took, in seconds from sending the request."""

    first_token: float | None = None
    duration: float | None = None

    def to_dict(self) -> dict[str, float]:
        """The saved form (rounded to the millisecond)."""
        data = {"first_token": self.first_token, "duration": self.duration}
        return {key: round(value, 3) for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Any) -> Timing:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict):
            raise ValueError("timing must be an object")
        values = [data.get(key) for key in ("first_token", "duration")]
        if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0)
                   for v in values):  # fmt: skip
            raise ValueError("timing values must be seconds")
        return cls(*values)

    @property
    def generation_seconds(self) -> float | None:
        """Generation time: from the first token to the end."""
        if self.first_token is None or self.duration is None:
            return None
        return self.duration - self.first_token


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length parameters; None means "the server's default" (not sent)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: Literal["json_object"] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The parameters that are set, JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.stop is not None:
            data["stop"] = list(self.stop)
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Any) -> GenerationParams:
        """Build from the saved form (unknown keys ignored); raises ValueError on wrong types."""
        if not isinstance(data, dict):
            raise ValueError("parameters must be an object")
        known = {f.name for f in fields(cls)}
        return cls(
            **{
                key: _parameter(key, value)
                for key, value in data.items()
                if key in known and value is not None
            }
        )

    def with_value(self, name: str, value: Any) -> GenerationParams:
        """These parameters with one set (None: back to the default)."""
        data = self.to_dict()
        data.pop(name, None)
        if value is not None:
            data[name] = list(value) if isinstance(value, tuple) else value
        return GenerationParams.from_dict(data)

    def merged(self, override: GenerationParams) -> GenerationParams:
        """These parameters with every field `override` sets taken from it."""
        data = self.to_dict() | override.to_dict()
        return GenerationParams.from_dict(data)


_WHOLE_NUMBERS = ("max_tokens", "seed")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def _parameter(key: str, value: Any) -> Any:
    """A generation parameter read from a file, checked; ValueError names a wrong one."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key in _WHOLE_NUMBERS:
        if number and isinstance(value, int):
            return value
        expected = "a whole number"
    elif key in _NUMBERS:
        if number and math.isfinite(value):
            return value
        expected = "a finite number"
    elif key == "stop":
        stops = [value] if isinstance(value, str) else value
        if isinstance(stops, list | tuple) and all(isinstance(item, str) for item in stops):
            return tuple(stops)
        expected = "a list of strings"
    elif key == "response_format":
        if value == "json_object":
            return value
        expected = "'json_object'"
    else:  # a parameter added later without a check here
        return value
    raise ValueError(f"{key} must be {expected}, not {shown(value)}")


# Saved fields of a Message, in the order they are written; `extra` holds the rest.
_SIMPLE_FIELDS = (
    "id",
    "role",
    "content",
    "mode",
    "model",
    "backend",
    "time",
    "finish_reason",
    "interrupted",
    "tool_call_id",
    "name",
    "summary_of",
    "summarized_by",
    "estimated",
)


@dataclass
class Message:
    """One message of a conversation, in any role.

    - assistant messages may carry `tool_calls`; a `tool` message answers one by `tool_call_id`
      and names the tool in `name`;
    - a summary is a `system` message whose `summary_of` lists the ids it stands for; each of
      those messages is marked `summarized_by` the summary's id and stays in the session;
    - `params` are the generation parameters this turn was made with, `usage` what it cost.
    """

    role: Role
    content: str
    mode: Mode = "chat"
    model: str | None = None
    backend: str | None = None
    time: str = field(default_factory=now)
    id: str = field(default_factory=new_id)
    finish_reason: str | None = None
    usage: Usage | None = None
    interrupted: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    params: GenerationParams | None = None
    summary_of: list[str] | None = None
    summarized_by: str | None = None
    timing: Timing | None = None  # how long the reply took
    estimated: bool = False  # usage counted locally: the server reported none
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_summary(self) -> bool:
        """Whether this message stands for earlier ones."""
        return self.summary_of is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; unset optional fields are left out, unknown ones written back."""
        data: dict[str, Any] = {}
        for name in _SIMPLE_FIELDS:
            value = getattr(self, name)
            if value is not None and value is not False:
                data[name] = value
        if self.usage is not None:
            data["usage"] = self.usage.to_dict()
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.attachments:
            data["attachments"] = [item.to_dict() for item in self.attachments]
        if self.params is not None and self.params.to_dict():
            data["params"] = self.params.to_dict()
        if self.timing is not None:
            data["timing"] = self.timing.to_dict()
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """Build from the saved form; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a message must be an object")
        if data.get("role") not in ROLES:
            raise ValueError(f"unknown message role {shown(data.get('role'))}")
        if not isinstance(data.get("content", ""), str):
            raise ValueError("a message's content must be text")
        if data.get("mode", "chat") not in MODES:
            raise ValueError(f"unknown mode {shown(data.get('mode'))}")
        if data.keys() <= _PLAIN_KEYS:  # most messages: ~4x faster than the general way
            return cls(**_plain_fields(data))
        unknown = _unknown_fields(data)
        check_nesting(unknown, "an unknown field")
        return cls(**_typed_fields(data), extra=unknown)


_KNOWN_KEYS = frozenset((*_SIMPLE_FIELDS, "usage", "tool_calls", "attachments", "params", "timing"))
_OPTIONAL_TEXT = ("model", "backend", "finish_reason", "tool_call_id", "name", "summarized_by")


# A plain message (text, its model and usage: the bulk of a long session) has only these keys.
_PLAIN_KEYS = frozenset(
    ("id", "role", "content", "mode", "model", "time", "finish_reason", "usage")
)


def _plain_fields(data: dict[str, Any]) -> dict[str, Any]:
    """_typed_fields for a message with only _PLAIN_KEYS (role, content and mode checked)."""
    values = dict(data)
    for key in ("model", "finish_reason"):
        if values.get(key) is not None:
            _text(values[key], key)
    for key in ("id", "time"):
        value = values.get(key, "")
        if not (value and isinstance(value, str)):
            values.pop(key, None)
    usage = values.get("usage")
    if usage is not None:
        values["usage"] = Usage.from_dict(usage)
    return values


def _typed_fields(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"role": data["role"], "content": data.get("content", "")}
    values["mode"] = data.get("mode", "chat")
    for key in _OPTIONAL_TEXT:
        if data.get(key) is not None:
            values[key] = _text(data[key], key)
    for key in ("id", "time"):
        if isinstance(data.get(key), str) and data[key]:
            values[key] = data[key]
    values["interrupted"] = data.get("interrupted") is True
    values["estimated"] = data.get("estimated") is True
    if data.get("timing") is not None:
        values["timing"] = Timing.from_dict(data["timing"])
    if data.get("usage") is not None:
        values["usage"] = Usage.from_dict(data["usage"])
    values["tool_calls"] = [ToolCall.from_dict(item) for item in _list(data, "tool_calls")]
    values["attachments"] = [Attachment.from_dict(item) for item in _list(data, "attachments")]
    if data.get("params") is not None:
        values["params"] = _params(data["params"])
    if data.get("summary_of") is not None:
        values["summary_of"] = [_text(item, "summary_of") for item in _list(data, "summary_of")]
    return values


def _params(data: Any) -> GenerationParams:
    try:
        return GenerationParams.from_dict(data)
    except ValueError as error:
        raise ValueError(f"bad parameters: {error}") from error


def _unknown_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in _KNOWN_KEYS}


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value
