"""Untrusted text made safe for a terminal: control characters and bidi overrides shown as text.

A reply, an error message from a server, a model or session name can carry escape sequences
(OSC 52 writes the clipboard, OSC 8 makes links, CSI moves the cursor and erases the screen) or
Unicode bidirectional overrides that reorder what is shown. Every C0 control but newline and tab,
DEL and every C1 control is replaced by its escape (ESC becomes the four characters ``\\x1b``),
and every bidi override or isolate by ``<U+202E>``-style text. Each unsafe character is replaced
on its own, so a sequence split across streamed chunks is neutralised just the same.
"""

from __future__ import annotations

import re

__all__ = [
    "UNSAFE",
    "StreamSanitizer",
    "one_line",
    "sanitize",
    "sanitize_json",
    "sanitize_markdown",
]

_CONTROLS = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]  # all but \t and \n
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]  # LRE RLE PDF LRO RLO, LRI RLI FSI PDI
_VISIBLE = {chr(code): f"\\x{code:02x}" for code in _CONTROLS} | {
    chr(code): f"<U+{code:04X}>" for code in _BIDI
}
UNSAFE = re.compile("[" + "".join(re.escape(char) for char in _VISIBLE) + "]")
_ASCII_TABLE = str.maketrans({char: shown for char, shown in _VISIBLE.items() if char.isascii()})


def _shown(match: re.Match[str]) -> str:
    return _VISIBLE[match[0]]


def _spell_out(text: str) -> str:
    """Every unsafe character replaced (str.translate is ~4x faster than re.sub on ASCII)."""
    return text.translate(_ASCII_TABLE) if text.isascii() else UNSAFE.sub(_shown, text)


def sanitize(text: str) -> str:
    """text with CRLF as LF and every other control character or bidi override shown as text."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _spell_out(text)


def sanitize_markdown(text: str) -> str:
    """Markdown source made safe; a lone CR ends a line there (CommonMark), so it becomes LF."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _spell_out(text)


def one_line(text: str) -> str:
    """A name or a list's field on one line: newlines, tabs and every other unprintable
    character (controls, bidi and zero-width marks, line separators) shown as text."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _spelled(char) for char in text)


def _spelled(char: str) -> str:
    named = {"\n": "\\n", "\t": "\\t"}.get(char) or _VISIBLE.get(char)
    return named or f"<U+{ord(char):04X}>"


def sanitize_json(text: str) -> str:
    """JSON text with every unsafe character inside its strings as a \\uXXXX escape: still JSON."""
    return UNSAFE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


class StreamSanitizer:
    """sanitize() for text that arrives in chunks: a CRLF split between two chunks stays one LF."""

    def __init__(self) -> None:
        self._carried_cr = False

    def feed(self, text: str) -> str:
        """The safe form of the next chunk (a trailing CR waits for the next chunk)."""
        if self._carried_cr:
            text = "\r" + text
        self._carried_cr = text.endswith("\r")
        if self._carried_cr:
            text = text[:-1]
        return sanitize(text)

    def flush(self) -> str:
        """What is still held back at the end of the stream."""
        carried, self._carried_cr = self._carried_cr, False
        return sanitize("\r") if carried else ""
