"""The streaming renderer: scrollback equals a one-shot render, whatever the chunking."""

from __future__ import annotations

import io
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.markdown import Markdown

from chatrepl.ui.markdown_links import show_link_targets
from chatrepl.ui.stream_render import MarkdownStreamRenderer, PlainRenderer, make_renderer

CORPUS = Path(__file__).parent / "render_corpus"
DOCS = sorted(CORPUS.glob("*.md"))
CHUNKINGS = [1, 3, 4, 7, "random"]
WIDTH, HEIGHT = 80, 24

_CONTROL = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\|\r|\n)")
_LINK_ID = re.compile(r"\x1b\]8;id=[^;]*;")


class Terminal:
    """Replays what rich writes the way a terminal would, keeping every row that scrolled by.

    Handles just what rich emits: text and colours, CR, LF, cursor up, erase line, show/hide
    cursor and hyperlinks. The cursor can never move above the top of the screen.
    """

    def __init__(self, height: int) -> None:
        self.height = height
        self.rows = [""]
        self.row = 0
        self.bottom = 0
        self.line_start = True

    def write(self, data: str) -> Terminal:
        for part in _CONTROL.split(data):
            if part:
                self._handle(part)
        return self

    def _handle(self, part: str) -> None:
        if part == "\n":
            self.row += 1
            if self.row == len(self.rows):
                self.rows.append("")
            self.bottom = max(self.bottom, self.row)
            self.line_start = True
        elif part == "\r":
            self.line_start = True
        elif part in ("\x1b[?25l", "\x1b[?25h"):
            pass
        elif part.startswith("\x1b[") and part[-1] == "A":
            self.row -= int(part[2:-1] or 1)
            assert self.bottom - self.row <= self.height - 1, "cursor moved above the screen"
        elif part == "\x1b[2K":
            self.rows[self.row] = ""
        elif part.startswith("\x1b[") and part[-1] != "m":
            raise AssertionError(f"unexpected control sequence {part!r}")
        else:
            assert not (self.line_start and self.rows[self.row]), "overwriting text: not emulated"
            self.rows[self.row] += _LINK_ID.sub("\x1b]8;;", part)
            self.line_start = False

    def scrollback(self) -> list[str]:
        """The rows as they stay in the terminal, trailing whitespace and blank rows dropped."""
        rows = [row.rstrip() for row in self.rows]
        while rows and not rows[-1]:
            rows.pop()
        return rows


@pytest.fixture(autouse=True)
def real_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich draws no Live on a dumb terminal; make sure tests do not inherit one."""
    monkeypatch.setenv("TERM", "xterm-256color")


def terminal_console() -> Console:
    """The console of every test: a 24x80 truecolour terminal writing to a StringIO."""
    return Console(
        file=io.StringIO(),
        force_terminal=True,
        width=WIDTH,
        height=HEIGHT,
        color_system="truecolor",
    )


def reference(doc: str, code_theme: str = "monokai") -> Markdown:
    """rich's one-shot Markdown, with link targets shown as chatrepl shows them."""
    rendered = Markdown(doc, code_theme=code_theme)
    show_link_targets(rendered.parsed)
    return rendered


def one_shot(doc: str) -> list[str]:
    """What printing the whole reply at once leaves in the terminal."""
    console = terminal_console()
    console.print(reference(doc))
    return Terminal(HEIGHT).write(console.file.getvalue()).scrollback()


def chunks(doc: str, size: int | str, seed: int = 0) -> Iterator[str]:
    """doc cut into pieces of `size` characters, or of random sizes from 1 to 12."""
    rng = random.Random(seed)
    start = 0
    while start < len(doc):
        step = rng.randint(1, 12) if size == "random" else int(size)
        yield doc[start : start + step]
        start += step


def streamed(doc: str, size: int | str, refresh_per_second: float = 20.0) -> list[str]:
    """What streaming doc through the Markdown renderer leaves in the terminal."""
    console = terminal_console()
    with MarkdownStreamRenderer(console, refresh_per_second=refresh_per_second) as renderer:
        for chunk in chunks(doc, size):
            renderer.feed(chunk)
    output = console.file.getvalue()
    assert live_height(output) <= HEIGHT - 1
    return Terminal(HEIGHT).write(output).scrollback()


def live_height(output: str) -> int:
    """The tallest live region: erasing it at the end moves up one row per line."""
    runs = re.findall(r"(?:\x1b\[1A\x1b\[2K)+", output)
    return max((run.count("\x1b[1A") for run in runs), default=0)


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # keep CRLF and lone CR as written


def tall_reply() -> str:
    """A reply several screens tall: a long fence, a long list, a long table."""
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(120))
    items = "\n".join(f"{i}. item number {i} with *some* text" for i in range(1, 151))
    rows = "\n".join(f"| {i} | {'x' * (i % 17)} | {i * i} |" for i in range(60))
    return (
        f"# Tall\n\nIntro paragraph.\n\n```python\ndef f():\n{code}\n```\n\n{items}\n\n"
        f"| n | xs | square |\n|---|----|-------:|\n{rows}\n\nThe end.\n"
    )


@pytest.mark.parametrize("size", CHUNKINGS, ids=str)
@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.stem)
def test_stream_equals_one_shot(path: Path, size: int | str) -> None:
    doc = read(path)
    assert streamed(doc, size) == one_shot(doc)


def test_corpus_is_there() -> None:
    assert len(DOCS) >= 15


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.stem)
def test_frequent_refreshes_change_nothing(path: Path) -> None:
    """Refreshing the live tail from its thread far more often than usual leaves no trace."""
    doc = read(path)
    assert streamed(doc, "random", refresh_per_second=500) == one_shot(doc)


@pytest.mark.parametrize("size", [4, "random"], ids=str)
def test_reply_taller_than_screen(size: int | str) -> None:
    doc = tall_reply()
    expected = one_shot(doc)
    assert len(expected) > 5 * HEIGHT
    actual = streamed(doc, size, refresh_per_second=200)
    assert actual == expected  # so every line of the one-shot render appears once, in order


def tail_on_screen(console: Console) -> bool:
    """Whether the last screenful shows the unfinished item " 70 item num"."""
    screen = Terminal(HEIGHT).write(console.file.getvalue())
    visible = screen.rows[screen.bottom - HEIGHT + 1 : screen.bottom + 1]
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in visible]
    return any(re.fullmatch(r" 70 item num *", row) for row in plain)


def test_live_view_shows_the_tail_within_the_screen() -> None:
    console = terminal_console()
    renderer = MarkdownStreamRenderer(console, refresh_per_second=50)
    doc = tall_reply()
    half = doc[: doc.index("item number 70")] + "item num"
    for chunk in chunks(half, 4):
        renderer.feed(chunk)
    deadline = time.monotonic() + 10
    while not (shown := tail_on_screen(console)) and time.monotonic() < deadline:
        time.sleep(0.02)  # the refresh thread draws the tail; no timing is asserted
    assert shown
    renderer.close()
    assert Terminal(HEIGHT).write(console.file.getvalue()).scrollback() == one_shot(half)


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.8])
def test_interrupted_reply_keeps_all_fed_text(cut: float) -> None:
    doc = read(CORPUS / "mixed.md")
    fed = doc[: int(len(doc) * cut)]
    console = terminal_console()
    with pytest.raises(KeyboardInterrupt), MarkdownStreamRenderer(console) as renderer:
        for chunk in chunks(fed, 3):
            renderer.feed(chunk)
        raise KeyboardInterrupt
    assert Terminal(HEIGHT).write(console.file.getvalue()).scrollback() == one_shot(fed)


class InterruptedConsole(Console):
    """A console whose n-th print is interrupted before it writes anything."""

    def __init__(self, fail_at: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.prints = 0
        self.fail_at = fail_at

    def print(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.prints += 1
        if self.prints == self.fail_at:
            raise KeyboardInterrupt
        super().print(*args, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("fail_at", [1, 2, 4])
def test_interrupt_while_printing_a_block_loses_nothing(fail_at: int) -> None:
    doc = read(CORPUS / "mixed.md")
    console = InterruptedConsole(
        fail_at,
        file=io.StringIO(),
        force_terminal=True,
        width=WIDTH,
        height=HEIGHT,
        color_system="truecolor",
    )
    renderer = MarkdownStreamRenderer(console)
    fed = ""
    with pytest.raises(KeyboardInterrupt):
        for chunk in chunks(doc, 4):
            fed += chunk
            renderer.feed(chunk)
    renderer.close()
    assert Terminal(HEIGHT).write(console.file.getvalue()).scrollback() == one_shot(fed)


def test_close_is_idempotent_and_feed_after_close_fails() -> None:
    console = terminal_console()
    renderer = MarkdownStreamRenderer(console)
    renderer.feed("# Title\n\nsome text")
    renderer.close()
    output = console.file.getvalue()
    renderer.close()
    assert console.file.getvalue() == output
    with pytest.raises(RuntimeError):
        renderer.feed("more")


def test_empty_reply_prints_nothing() -> None:
    console = terminal_console()
    with MarkdownStreamRenderer(console) as renderer:
        renderer.feed("")
        renderer.feed("\n\n")
    assert Terminal(HEIGHT).write(console.file.getvalue()).scrollback() == []


def test_dumb_terminal_gets_no_live_but_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    doc = read(CORPUS / "mixed.md")
    console = terminal_console()
    with MarkdownStreamRenderer(console) as renderer:
        for chunk in chunks(doc, 5):
            renderer.feed(chunk)
    output = console.file.getvalue()
    assert "\x1b[1A" not in output
    assert Terminal(HEIGHT).write(output).scrollback() == one_shot(doc)


def test_code_theme_is_used() -> None:
    doc = "```python\nx = 1\n```\n"
    console = terminal_console()
    with MarkdownStreamRenderer(console, code_theme="solarized-light") as renderer:
        renderer.feed(doc)
    expected = terminal_console()
    expected.print(reference(doc, code_theme="solarized-light"))
    actual = Terminal(HEIGHT).write(console.file.getvalue()).scrollback()
    assert actual == Terminal(HEIGHT).write(expected.file.getvalue()).scrollback()
    assert actual != one_shot(doc)


class RecordingFile(io.StringIO):
    """A file that records every write and flush, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def write(self, text: str) -> int:
        self.events.append(("write", text))
        return super().write(text)

    def flush(self) -> None:
        self.events.append(("flush", ""))


@pytest.mark.parametrize("force_terminal", [False, True])
def test_raw_plain_renderer_writes_text_as_is_and_flushes_each_chunk(force_terminal: bool) -> None:
    file = RecordingFile()
    console = Console(file=file, force_terminal=force_terminal, width=WIDTH)
    pieces = ["# Not **rendered** ", "[bold]markup[/bold] ", "\x00", "ünï 🎉\r\n", "end"]
    with PlainRenderer(console, raw=True) as renderer:
        for piece in pieces:
            renderer.feed(piece)
            assert file.events[-2:] == [("write", piece), ("flush", "")]
    assert file.getvalue() == "".join(pieces) + "\n"
    assert "\x1b" not in file.getvalue()


def test_plain_renderer_shows_control_characters_and_flushes_each_chunk() -> None:
    file = RecordingFile()
    pieces = ["[bold]markup[/bold] ", "\x00", "ünï 🎉\r", "\nend\x1b", "[2J"]
    with PlainRenderer(Console(file=file, force_terminal=True, width=WIDTH)) as renderer:
        for piece in pieces:
            renderer.feed(piece)
            assert file.events[-1] == ("flush", "")
    assert file.getvalue() == "[bold]markup[/bold] \\x00ünï 🎉\nend\\x1b[2J\n"


@pytest.mark.parametrize("text", ["", "ends with a newline\n"])
def test_plain_renderer_adds_no_extra_newline(text: str) -> None:
    file = io.StringIO()
    renderer = PlainRenderer(Console(file=file))
    renderer.feed(text)
    renderer.close()
    renderer.close()
    assert file.getvalue() == text


def test_make_renderer_picks_plain_unless_markdown_on_a_terminal() -> None:
    assert isinstance(make_renderer(Console(file=io.StringIO())), PlainRenderer)
    assert isinstance(make_renderer(terminal_console(), markdown=False), PlainRenderer)
    chosen = make_renderer(terminal_console(), markdown=True, code_theme="monokai")
    assert isinstance(chosen, MarkdownStreamRenderer)
    chosen.close()


def test_live_view_highlights_only_builtin_languages() -> None:
    from chatrepl.ui.stream_render import _builtin_language

    assert _builtin_language("python") and _builtin_language("") and _builtin_language("sh x")
    assert not _builtin_language("pyt")  # half-typed: would make Pygments scan plug-ins


def test_plain_text_in_a_terminal_breaks_lines_between_words() -> None:
    text = "The quick brown fox jumps over the lazy dog and keeps running far away"
    out = io.StringIO()
    console = Console(file=out, width=30, force_terminal=True, color_system=None)
    with PlainRenderer(console) as renderer:
        for start in range(0, len(text), 7):  # words arrive cut in pieces
            renderer.feed(text[start : start + 7])
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 30 for line in lines)
    assert " ".join(line.strip() for line in lines) == text  # no word cut, none lost
    piped = io.StringIO()
    with PlainRenderer(Console(file=piped, width=30)) as renderer:
        renderer.feed(text)
    assert piped.getvalue() == text + "\n"  # data for another program: unchanged


def test_markdown_tables_wrap_cells_instead_of_cutting_words() -> None:
    doc = (
        "| name | description |\n|---|---|\n"
        "| alpha | a fairly long description of the first item in the table |\n"
    )
    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=True, color_system=None)
    with MarkdownStreamRenderer(console) as renderer:
        renderer.feed(doc)
    words = set(out.getvalue().split())
    assert {"fairly", "description", "first", "table"} <= words
