"""How much one message may hold: a paste or piped input past `max_input_bytes` is refused in one
line naming its size, before anything is sent or saved.

The default, 4 MB, is about a million tokens of text: the largest context window offered today.
A longer message fits no model; it would only be uploaded to be refused, and written into the
session file at every save.
"""

from __future__ import annotations

from typing import Any

from chatrepl.errors import ChatReplError


class InputTooLarge(ChatReplError):
    """A message (a paste, piped input) is larger than max_input_bytes."""


def megabytes(size: int) -> str:
    """A size for a person: 10.2 MB, 4 MB, 0.5 MB (small ones in bytes)."""
    if size < 100_000:
        return f"{size:,} bytes"
    return f"{size / 1_000_000:.1f}".rstrip("0").rstrip(".") + " MB"


def check_input_size(text: str, limit: int) -> None:
    """Raise InputTooLarge when text is over `limit` bytes as UTF-8."""
    if len(text) <= limit // 4:  # no character takes more than 4 bytes: surely under
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InputTooLarge(
            f"the message is {megabytes(size)}, over the {megabytes(limit)} limit "
            "(max_input_bytes); it was not sent"
        )


def read_limited(stream: Any, limit: int) -> str:
    """Read piped input as UTF-8 text (bad bytes replaced), refusing it past `limit` bytes.

    Never more than limit + 1 bytes are read: the input may be endless (`yes | chatrepl ask`).
    """
    source = getattr(stream, "buffer", stream)
    data = source.read(limit + 1)
    if isinstance(data, str):  # a text stream without a byte buffer
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise InputTooLarge(
            f"the piped input is over the {megabytes(limit)} limit (max_input_bytes); "
            "nothing was sent"
        )
    return data.decode("utf-8", errors="replace")
