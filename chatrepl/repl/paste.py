"""Bracketed paste collected in linear time.

prompt_toolkit's Vt100Parser (3.0.52) appends each read (1 KB) to the paste so far and searches
the whole of it for the end mark every time: quadratic, so a 1 MB paste took 4 s and a 10 MB one
40 s of full CPU before the prompt answered again. This parser keeps the reads in a list and
searches only the new text (plus the few characters before it that could start the end mark).
"""

from __future__ import annotations

from typing import Any

from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.keys import Keys

PASTE_END = "\x1b[201~"
_CARRY = len(PASTE_END) - 1  # an end mark can begin in the previous read


class LinearPasteParser(Vt100Parser):
    """A Vt100Parser whose bracketed paste costs time proportional to its length."""

    def __init__(self, feed_key_callback: Any) -> None:
        super().__init__(feed_key_callback)
        self._pieces: list[str] = []
        self._carried = ""  # the last characters of the paste so far

    def feed(self, data: str) -> None:
        """Parse input; inside a bracketed paste, collect it until its end mark."""
        if not self._in_bracketed_paste:
            super().feed(data)  # comes back here if the data starts a paste
            return
        window = self._carried + data
        end = window.find(PASTE_END)
        if end < 0:
            self._pieces.append(data)
            self._carried = window[-_CARRY:]
            return
        self._finish_paste(data, end - len(self._carried))

    def _finish_paste(self, data: str, end: int) -> None:
        """Hand the paste over as one key press; `end` is where its end mark starts in data
        (negative when it started in the previous read)."""
        pasted = "".join(self._pieces)
        content = pasted + data[:end] if end >= 0 else pasted[: len(pasted) + end]
        rest = data[end + len(PASTE_END) :]
        self._pieces, self._carried = [], ""
        self._in_bracketed_paste = False
        self.feed_key_callback(KeyPress(Keys.BracketedPaste, content))
        self.feed(rest)


def use_linear_paste(prompt_input: Any) -> None:
    """Give a prompt_toolkit Vt100 input (a terminal or a pipe) the linear paste parser."""
    parser = getattr(prompt_input, "vt100_parser", None)
    if type(parser) is Vt100Parser:  # other inputs (Windows, tests' own) are left alone
        prompt_input.vt100_parser = LinearPasteParser(parser.feed_key_callback)
