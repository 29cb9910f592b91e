"""Show a streamed reply: finished Markdown blocks printed once, only the unfinished tail live.

Only the last top-level Markdown block can still change, so every earlier block is printed to
scrollback exactly once and the last one is drawn in a rich ``Live`` cropped to the screen. When
the output is not a terminal (or Markdown is off) the text is written as it arrives. Either way a
reply is untrusted: its control characters are shown as text (``safe_text``), unless the caller
asks for its bytes unchanged (``raw``, for output that is data for another program).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, Self

from rich.live import Live
from rich.segment import Segment

from chatrepl.ui.markdown_links import show_link_targets
from chatrepl.ui.safe_text import StreamSanitizer, sanitize_markdown
from chatrepl.ui.terminal import interrupts_deferred

if TYPE_CHECKING:
    from types import TracebackType

    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.markdown import Markdown

__all__ = [
    "MarkdownStreamRenderer",
    "PlainRenderer",
    "StreamRenderer",
    "make_renderer",
]

REFRESH_PER_SECOND = 8.0
# The live tail shows at most this many lines (fewer on a short screen): drawing costs grow with
# its height, and the rest of an unfinished block appears, whole, once the block is finished.
LIVE_MAX_LINES = 24
# Up to this size the unfinished block is re-split on every new line. A bigger one is re-split
# only after growing by 1/_REPARSE_GROWTH of its size, which keeps all parsing linear, and while
# live only its last lines are rendered.
_SMALL_BLOCK = 1024
_REPARSE_GROWTH = 4
# After a slow live render, timed refreshes wait this many times its duration, so drawing the
# tail (a long code block highlighted on a tall screen, say) takes at most ~10% of a core.
_RENDER_BACKOFF = 99

_Refs = dict[str, Any]  # markdown-it's env['references']


class StreamRenderer(Protocol):
    """Where a streamed reply is shown: fed chunk by chunk, then closed."""

    def feed(self, text: str) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def make_renderer(
    console: Console,
    markdown: bool = True,
    code_theme: str = "monokai",
    raw: bool = False,
    code: str | None = None,
) -> StreamRenderer:
    """Incremental Markdown renderer when markdown and console.is_terminal; otherwise plain text.

    raw (plain text only) writes the reply's characters unchanged, control characters included.
    code (a language, e.g. "json") shows the whole reply as a highlighted code block.
    """
    if markdown and console.is_terminal:
        renderer = MarkdownStreamRenderer(console, code_theme=code_theme)
        return FencedRenderer(renderer, code) if code else renderer
    return PlainRenderer(console, raw=raw)


class _Closing:
    """Context-manager support: leaving the block closes the renderer."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FencedRenderer(_Closing):
    """Feeds a Markdown renderer the reply inside a code fence (a JSON reply stays JSON, laid
    out and highlighted, instead of becoming one Markdown paragraph)."""

    def __init__(self, inner: MarkdownStreamRenderer, language: str) -> None:
        self._inner = inner
        self._language = language
        self._fence = ""  # opened with the first text; long enough for any fence inside
        self._seen: list[str] = []

    def feed(self, text: str) -> None:
        """Open the fence at the first text, then pass text on."""
        if not self._fence:
            self._fence = "````````"
            self._inner.feed(f"{self._fence}{self._language}\n")
        self._seen.append(text)
        self._inner.feed(text)

    def close(self) -> None:
        """Close the fence, then the renderer."""
        if self._fence:
            ending = "" if "".join(self._seen[-1:]).endswith("\n") else "\n"
            self._inner.feed(f"{ending}{self._fence}\n")
            self._fence = ""
        self._inner.close()


class PlainRenderer(_Closing):
    """Writes the reply as it arrives: no markup, no buffering, control characters shown as text.

    With raw, the reply's characters go out unchanged (for output that is another program's input).
    """

    def __init__(self, console: Console, raw: bool = False) -> None:
        self._console = console
        self._sanitizer = None if raw else StreamSanitizer()
        # In a terminal, lines break between words (the terminal itself would cut a word).
        self._wrap = WordWrap(console.width) if console.is_terminal and not raw else None
        self._last = ""
        self._closed = False

    def feed(self, text: str) -> None:
        """Write text as received (a word as soon as it is whole, in a terminal) and flush it."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        if self._sanitizer is not None:
            text = self._sanitizer.feed(text)
        if self._wrap is not None:
            text = self._wrap.feed(text)
        if text:
            self._write(text)

    def close(self) -> None:
        """End the reply on a new line; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        held_back = self._sanitizer.flush() if self._sanitizer is not None else ""
        if self._wrap is not None:
            held_back = self._wrap.feed(held_back) + self._wrap.flush()
        if held_back:
            self._write(held_back)
        if self._last not in ("", "\n"):
            self._write("\n")

    def _write(self, text: str) -> None:
        file = self._console.file
        file.write(text)
        file.flush()
        self._last = text[-1]


class WordWrap:
    """Breaks streamed text into lines between words at a width; a word longer than a line is
    left for the terminal to fold. The word being typed is held until it is whole."""

    def __init__(self, width: int) -> None:
        self.width = max(width, 10)
        self.column = 0
        self.word: list[str] = []

    def feed(self, text: str) -> str:
        """What can be written of `text` now."""
        out: list[str] = []
        for char in text:
            if char in " \t\n":
                out.append(self._word())
                out.append(self._space(char))
            else:
                self.word.append(char)
        return "".join(out)

    def flush(self) -> str:
        """The last word, at the end of the text."""
        return self._word()

    def _word(self) -> str:
        from rich.cells import cell_len

        word, self.word = "".join(self.word), []
        if not word:
            return ""
        size = cell_len(word)
        prefix = ""
        if self.column and self.column + size > self.width:
            prefix, self.column = "\n", 0
        self.column = (self.column + size) % self.width if size > self.width else self.column + size
        return prefix + word

    def _space(self, char: str) -> str:
        if char == "\n":
            self.column = 0
            return char
        width = 8 - self.column % 8 if char == "\t" else 1
        if self.column + width >= self.width:  # no space at a line's end: the next line begins
            self.column = 0
            return "\n"
        self.column += width
        return char


class _Blocks:
    """Parses Markdown exactly as rich does and builds rich renderables from the tokens."""

    def __init__(self, code_theme: str) -> None:
        # Imported here, not at module level: rich.markdown costs ~65 ms of start-up time.
        from markdown_it.token import Token
        from rich.markdown import Markdown

        self._parser = _rich_parser()
        self._template = Markdown("", code_theme=code_theme)
        # An empty HTML block renders nothing but makes rich put its blank line before the next
        # block, as it would have between this block and the one before it in a whole reply.
        self._blank_line = Token("html_block", "", 0)

    def parse(self, text: str, refs: _Refs) -> tuple[list[Token], _Refs]:
        """Tokens for text, resolving links against refs; also refs plus those text defines."""
        env: dict[str, Any] = {"references": dict(refs)}
        tokens = show_link_targets(self._parser.parse(text, env))
        return tokens, env["references"]

    def renderable(self, tokens: list[Token], blank_line: bool) -> Markdown:
        """rich Markdown for tokens, preceded by a blank line when blank_line."""
        markdown = copy.copy(self._template)
        markdown.parsed = [self._blank_line, *tokens] if blank_line and tokens else tokens
        return markdown


def _rich_parser() -> MarkdownIt:
    """A parser configured as rich.markdown.Markdown configures its own."""
    from markdown_it import MarkdownIt

    return MarkdownIt().enable("strikethrough").enable("table")


@dataclass(frozen=True, eq=False)
class _Pending:
    """What is not in scrollback yet. Replaced whole, so the refresh thread sees it consistently."""

    text: str = ""  # complete lines of the unfinished block
    partial: list[str] = field(default_factory=list)  # the incomplete last line; appended to
    final: Markdown | None = None  # finished blocks while they are being printed
    blank_line: bool = False  # rich puts a blank line before the next block
    refs: _Refs = field(default_factory=dict)  # link reference definitions seen so far
    fence: str = ""  # opening marker of a top-level code fence that is still open
    head: int = 0  # leading lines that must stay when the live view shows only recent lines

    def tail(self) -> str:
        """The unfinished text, the incomplete last line included."""
        return self.text + "".join(self.partial)


class MarkdownStreamRenderer(_Closing):
    """Prints each finished Markdown block once; shows the unfinished last block in a Live."""

    def __init__(
        self,
        console: Console,
        code_theme: str = "monokai",
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        self._console = console
        self._code_theme = code_theme
        self._refresh_per_second = refresh_per_second
        self._blocks = _Blocks(code_theme)
        self._splitter = _rich_parser().disable("inline")  # block structure only: much cheaper
        self._pending = _Pending()
        self._unsplit = 0  # characters added to the unfinished block since it was last split
        self._last_fence = False  # the unfinished block was a code fence when last split
        self._carried_cr = False
        self._live: _TailLive | None = None
        self._animate = console.is_terminal and not console.is_dumb_terminal
        self._closed = False

    def feed(self, text: str) -> None:
        """Take the next chunk of the reply; print the blocks it finishes."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        text = sanitize_markdown(self._normalize(text))
        if not text:
            return
        pending = self._pending
        if "\n" in text:
            head, _, rest = text.rpartition("\n")
            lines = "".join(pending.partial) + head + "\n"
            partial = [rest] if rest else []
            self._pending = replace(pending, text=pending.text + lines, partial=partial)
            self._split(lines)
        else:
            pending.partial.append(text)
        if self._live is None and self._animate and not text.isspace():
            self._start_live()

    def close(self) -> None:
        """Print everything still pending and stop the live display; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._live is not None:
                self._live.stop()
        finally:
            self._print_rest()

    def _normalize(self, text: str) -> str:
        """CRLF and CR become LF, also when a chunk ends between the CR and the LF."""
        if self._carried_cr:
            text = "\r" + text
        self._carried_cr = text.endswith("\r")
        if self._carried_cr:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _split(self, lines: str) -> None:
        """Print every block that a later block, begun on a complete line, has finished."""
        pending = self._pending
        if pending.fence and not _may_close_fence(lines, pending.fence):
            return  # an open fence ends only at its closing line: nothing to parse
        self._unsplit += len(lines)
        size = len(pending.text)
        # Fences parse fast; lists, quotes and tables do not, so a big one is re-split less often.
        if not self._last_fence and size > _SMALL_BLOCK and self._unsplit * _REPARSE_GROWTH < size:
            return
        self._unsplit = 0
        starts = _block_starts(self._splitter.parse(pending.text))
        if not starts:
            return
        last = starts[-1]
        self._last_fence = last.type == "fence"
        fence = last.markup if _is_open_fence(last) else ""
        head = 1 if fence else 2 if last.type == "table_open" else 0
        offset = _line_offset(pending.text, last.map[0]) if last.map else 0
        if offset:
            self._print_final(offset, fence, head)
        else:
            self._pending = replace(pending, fence=fence, head=head)

    def _print_final(self, offset: int, fence: str, head: int) -> None:
        """Print text[:offset] to scrollback; the rest stays live."""
        pending = self._pending
        tokens, refs = self._blocks.parse(pending.text[:offset], pending.refs)
        final = self._blocks.renderable(tokens, pending.blank_line) if tokens else None
        blank_line = tokens[-1].type != "hr" if tokens else pending.blank_line
        with interrupts_deferred(), self._live_lock():
            # `final` stays pending until printed, so close() still shows it after an interrupt.
            self._pending = replace(
                pending,
                text=pending.text[offset:],
                final=final,
                blank_line=blank_line,
                refs=refs,
                fence=fence,
                head=head,
            )
            if final is not None:
                self._console.print(final)
            self._pending = replace(self._pending, final=None)

    def _print_rest(self) -> None:
        """Print whatever is still pending, permanently."""
        pending = self._pending
        if pending.final is not None:
            self._console.print(pending.final)
        tokens, _ = self._blocks.parse(pending.tail(), pending.refs)
        if tokens:
            self._console.print(self._blocks.renderable(tokens, pending.blank_line))
        self._pending = _Pending()

    def _start_live(self) -> None:
        """Show the unfinished block in a Live, where the terminal can redraw it."""
        view = _TailView(lambda: self._pending, _Blocks(self._code_theme))
        self._live = _TailLive(
            view,
            console=self._console,
            auto_refresh=True,
            refresh_per_second=self._refresh_per_second,
            transient=True,  # close() prints the last block itself, once
            vertical_overflow="crop",  # a safety net: the view already fits the screen
        )
        self._live.start(refresh=True)

    def _live_lock(self) -> AbstractContextManager[Any]:
        """Hold off the Live's refresh thread while printing above it.

        rich renders the live region from that thread under this lock; a print that interleaves
        with a refresh can leave a stale copy of the region in scrollback (rich #1530).
        """
        return self._live._lock if self._live is not None else nullcontext()


class _TailView:
    """The unfinished block, rendered lazily by the Live's refresh and cropped to the screen."""

    def __init__(self, source: Callable[[], _Pending], blocks: _Blocks) -> None:
        self._source = source
        self._blocks = blocks
        self._cache: tuple[tuple[object, ...], list[list[Segment]]] = ((), [])
        self._quiet_until = 0.0

    def may_wait(self, console: Console) -> bool:
        """Whether a timed refresh can be skipped: nothing changed, or the last render was slow."""
        if time.monotonic() < self._quiet_until:
            return True
        return self._cache[0] == self._key(console.width, min(console.height, LIVE_MAX_LINES + 1))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        key = self._key(options.max_width, min(options.size.height, LIVE_MAX_LINES + 1))
        cached_key, lines = self._cache
        if cached_key != key:
            pending, _, _, height = key
            started = time.monotonic()
            lines = self._render(pending, console, options, height - 1)
            self._cache = (key, lines)
            finished = time.monotonic()
            self._quiet_until = finished + (finished - started) * _RENDER_BACKOFF
        new_line = Segment.line()
        for index, line in enumerate(lines):
            if index:
                yield new_line
            yield from line

    def _key(self, width: int, height: int) -> tuple[object, ...]:
        """Identifies a drawing: _Pending is replaced whenever its text changes, bar appends."""
        pending = self._source()
        return (pending, len(pending.partial), width, max(2, height))

    def _render(
        self, pending: _Pending, console: Console, options: ConsoleOptions, height: int
    ) -> list[list[Segment]]:
        """The last `height` lines of the rendered tail."""
        text = pending.tail()
        if pending.fence or len(text) > _SMALL_BLOCK:
            # Lines above the screen would be cropped anyway; skipping them keeps this cheap.
            text = _recent_lines(text, pending.head, height + 2, whole_lines=bool(pending.fence))
        tokens, _ = self._blocks.parse(text, pending.refs)
        for token in tokens:
            if token.type == "fence" and not _builtin_language(token.info):
                token.info = ""  # a half-typed "```pyt": no plug-in scan (~0.3 s) while live
        markdown = self._blocks.renderable(tokens, pending.blank_line)
        return console.render_lines(markdown, options, pad=False)[-height:]


class _TailLive(Live):
    """A Live whose timed refreshes draw only a changed tail, and back off after slow renders."""

    def __init__(self, view: _TailView, **kwargs: Any) -> None:
        super().__init__(view, **kwargs)
        self._tail_view = view

    def refresh(self) -> None:
        """Redraw the live region, unless the view says it may wait."""
        if self.is_started and self._tail_view.may_wait(self.console):
            return
        super().refresh()


@functools.cache
def _builtin_languages() -> frozenset[str]:
    """Every alias of Pygments' own lexers."""
    from pygments.lexers._mapping import LEXERS

    return frozenset(alias for _, _, aliases, _, _ in LEXERS.values() for alias in aliases)


def _builtin_language(info: str) -> bool:
    """Whether a fence's language is a built-in Pygments lexer (or none is given).

    Pygments looks up an unknown name in every installed package's plug-ins, which imports them.
    """
    language = info.strip().split(maxsplit=1)[0].lower() if info.strip() else ""
    return not language or language in _builtin_languages()


def _block_starts(tokens: list[Token]) -> list[Token]:
    """The first token of each top-level block."""
    return [token for token in tokens if token.level == 0 and token.nesting >= 0]


def _is_open_fence(token: Token) -> bool:
    """A code fence still waiting for its closing line."""
    if token.type != "fence" or not token.map:
        return False
    # markdown-it's map spans the closing line too, when there is one.
    return token.map[1] - token.map[0] - 1 == token.content.count("\n")


def _may_close_fence(lines: str, marker: str) -> bool:
    """Whether one of lines could be the closing line of a fence opened with marker."""
    return any(line.lstrip(" \t").startswith(marker) for line in lines.split("\n"))


def _line_offset(text: str, line: int) -> int:
    """Where line number `line` (from 0) starts in text."""
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def _recent_lines(text: str, head: int, count: int, whole_lines: bool) -> str:
    """The first `head` lines and about the last `count` lines of text.

    Unless whole_lines, the cut moves down to a line starting in column 0, so that a list or a
    quote is not entered half-way through an item.
    """
    lines = text.split("\n")
    if len(lines) <= head + count:
        return text
    start = len(lines) - count
    if not whole_lines:
        start = next((i for i in range(start, len(lines) - 1) if lines[i][:1].strip()), start)
    return "\n".join(lines[:head] + lines[start:])
