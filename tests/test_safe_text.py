"""Text from the network or a file never controls the terminal, on every path that shows it."""

from __future__ import annotations

import io
import json
import re

import pexpect
import pytest
from prompt_toolkit.document import Document
from rich.console import Console
from typer.testing import CliRunner

from chatrepl.cli.ask import AskOptions, run_ask
from chatrepl.cli.typer_app import app
from chatrepl.config import sessions_dir
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Attachment, Message, ToolCall
from chatrepl.conversation.store import SessionStore
from chatrepl.repl.prompt import SlashCompleter
from chatrepl.ui import views
from chatrepl.ui.safe_text import StreamSanitizer, sanitize, sanitize_json, sanitize_markdown
from chatrepl.ui.stream_render import MarkdownStreamRenderer, PlainRenderer, make_renderer
from tests.harness import lines, run_repl

HOSTILE = {
    "OSC 52 writes the clipboard": "\x1b]52;c;aGVsbG8=\x07",
    "OSC 8 link whose text lies": "\x1b]8;;https://evil.example/\x1b\\https://bank.example\x1b]8;;\x1b\\",
    "OSC 0 sets the title": "\x1b]0;pwned\x07",
    "OSC 2 sets the title, ST-terminated": "\x1b]2;pwned\x1b\\",
    "CSI erases the screen and homes the cursor": "\x1b[2J\x1b[H",
    "CSI moves up and erases a line": "\x1b[1A\x1b[2K",
    "DCS request": "\x1bP+q544e\x1b\\",
    "ESC c resets the terminal": "\x1bc",
    "8-bit CSI": "\x9b2J",
    "8-bit OSC and ST": "\x9d0;pwned\x9c",
    "BEL": "ding\x07",
    "bidi override": "\u202etxt.exe\u202c",
    "bidi isolate": "\u2067abc\u2069",
    "backspace and DEL": "ab\x08\x08\x7f",
}
ALL = " ".join(HOSTILE.values())
SHOWN = sanitize(ALL)  # what a person sees instead: every escape spelled out

# What rich itself writes: SGR colours, the Live tail's cursor moves, erase-line and cursor
# visibility, and OSC 8 hyperlinks for Markdown links (always with an id= parameter).
RICH_OWN = re.compile(
    r"\x1b\[[0-9;]*m|\x1b\[\d*A|\x1b\[2K|\x1b\[\?25[lh]"
    r"|\x1b\]8;id=[^;\x1b\x07\x9c]*;[^\x1b\x07\x9c]*\x1b\\|\x1b\]8;;\x1b\\"
)
# Control characters (bar newline, tab and the CR rich's Live writes) and bidi overrides.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
WIDE = 400  # no wrapping inside a hostile string, so its visible form can be found whole

runner = CliRunner()


def terminal(width: int = WIDE, file: io.StringIO | None = None) -> Console:
    return Console(
        file=file or io.StringIO(), force_terminal=True, width=width, height=40,
        color_system="truecolor", highlight=False,
    )  # fmt: skip


def squeezed(text: str) -> str:
    """text without white space: where it was wrapped does not matter."""
    return re.sub(r"\s+", "", text)


def assert_safe(output: str, shown: str = SHOWN) -> str:
    """No control sequence but rich's own reaches the terminal; the hostile text is visible.

    Returns the output without rich's sequences and white space, for counting what it shows.
    """
    leftover = RICH_OWN.sub("", output)
    assert not FORBIDDEN.search(leftover), f"unsafe: {FORBIDDEN.findall(leftover)!r}"
    assert squeezed(shown) in squeezed(leftover)
    return squeezed(leftover)


def written(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


# The sanitizer itself


def test_every_hostile_string_is_spelled_out() -> None:
    for name, text in HOSTILE.items():
        assert not FORBIDDEN.search(sanitize(text)), name
    assert sanitize("\x1b]52;c;eA==\x07") == "\\x1b]52;c;eA==\\x07"
    assert sanitize("\x9b2J \u202eabc") == "\\x9b2J <U+202E>abc"


def test_newline_tab_and_ordinary_text_are_kept() -> None:
    text = "tab\there\nünï 🎉 — \\x1b typed by hand\n"
    assert sanitize(text) == text
    assert sanitize_markdown(text) == text


def test_carriage_returns() -> None:
    assert sanitize("a\r\nb") == "a\nb"
    assert sanitize("rm -rf ~\rls") == "rm -rf ~\\x0dls"  # a lone CR would hide the line
    assert sanitize_markdown("a\rb\r\nc") == "a\nb\nc"  # Markdown: a lone CR ends a line


def test_chunk_boundaries_do_not_matter() -> None:
    text = ALL + " line\r\nnext\r"
    for cut in range(len(text) + 1):
        stream = StreamSanitizer()
        assert stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.flush() == sanitize(text)


def test_json_stays_valid_json() -> None:
    text = json.dumps({"content": ALL}, ensure_ascii=False)
    safe = sanitize_json(text)
    assert not FORBIDDEN.search(safe)
    assert json.loads(safe) == {"content": ALL}


# The streaming renderers


REPLY = (
    f"Intro with **bold** and [docs](https://example.com/docs) {ALL}\n\n"
    f"# Heading {ALL}\n\n"
    f"- item {ALL}\n\n"
    f"> quote {ALL}\n\n"
    f"Inline `{ALL}` code, a [link {ALL}](https://a.example/\x1b]52;c;eA==\x07) too.\n\n"
    f"```\n{ALL}\n```\n\n"
    f"| a | b |\n|---|---|\n| {HOSTILE['OSC 52 writes the clipboard']} | y |\n"
)


@pytest.mark.parametrize("size", [1, 7, len(REPLY)])
def test_markdown_renderer_shows_hostile_bytes_and_keeps_its_own_styling(size: int) -> None:
    console = terminal()
    with MarkdownStreamRenderer(console, refresh_per_second=50) as renderer:
        for start in range(0, len(REPLY), size):
            renderer.feed(REPLY[start : start + size])
    output = written(console)
    assert_safe(output)
    assert "\x1b[1m" in output  # bold
    assert re.search(r"\x1b\]8;id=[^;]*;https://example\.com/docs\x1b\\", output)  # a real link
    links = re.findall(r"\x1b\]8;id=[^;]*;([^\x1b]*)\x1b\\", output)
    assert all(not FORBIDDEN.search(url) for url in links)


def test_an_escape_split_across_chunks_is_neutralised() -> None:
    console = terminal()
    with MarkdownStreamRenderer(console) as renderer:
        for chunk in ("before \x1b", "]52;c;", "eA==\x07 after"):
            renderer.feed(chunk)
    assert_safe(written(console), "before \\x1b]52;c;eA==\\x07 after")


@pytest.mark.parametrize("console", [terminal(), Console(file=io.StringIO())])
def test_plain_and_completion_mode_renderers_show_hostile_bytes(console: Console) -> None:
    with make_renderer(console, markdown=False) as renderer:  # completion mode
        for char in ALL:
            renderer.feed(char)
    assert_safe(written(console))
    assert written(console) == SHOWN + "\n"


def test_raw_plain_renderer_passes_bytes_unchanged() -> None:
    console = Console(file=io.StringIO())
    with make_renderer(console, markdown=True, raw=True) as renderer:
        renderer.feed(ALL)
    assert written(console) == ALL + "\n"


# Lines, tables, transcripts, the spinner


def test_error_info_and_table_lines() -> None:
    console = terminal()
    views.error(console, f"server said {ALL}")
    views.info(console, f"model {ALL}")
    console.print(views.table(("model",), [(ALL,)]))
    output = written(console)
    assert assert_safe(output).count(squeezed(SHOWN)) == 3
    assert "\x1b[1;31merror: server said" in output  # the red error style survives


def test_transcript_of_every_kind_of_message() -> None:
    console = terminal()
    messages = [
        Message("user", ALL, attachments=[Attachment(name=f"file {ALL}", text="x")]),
        Message("assistant", f"**reply** {ALL}"),
        Message("assistant", "", tool_calls=[ToolCall(id="1", name=ALL, arguments=ALL)]),
        Message("tool", ALL, name=ALL, tool_call_id="1"),
        Message("assistant", ALL, mode="complete"),
    ]
    views.transcript(console, messages)
    output = written(console)
    assert assert_safe(output).count(squeezed(SHOWN)) >= 8
    assert "\x1b[1m" in output


def test_waiting_spinner_names_the_model_safely() -> None:
    console = terminal()
    sink = PlainRenderer(Console(file=io.StringIO()))
    with views.Waiting(console, sink, model=ALL):
        pass
    assert_safe(written(console))


# Large messages: linear, and a terminal gets the beginning with a note


def test_a_long_message_is_written_whole_when_not_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(views, "_PIECE", 7)  # many pieces: CRLF and escapes cut between them
    content = ("line\r\n" + ALL + "\n") * 20
    monkeypatch.setattr(views, "RICH_MAX_CHARS", len(content) // 2)
    console = Console(file=io.StringIO(), width=80)
    views.transcript(console, [Message("assistant", content)])
    output = written(console)
    assert_safe(output, sanitize(ALL))
    assert output == (
        f"assistant · chat\n({len(content):,} characters: shown as plain text)\n"
        + sanitize(content)
    )


def test_a_long_message_is_cut_with_a_note_in_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(views, "RICH_MAX_CHARS", 1_000)
    monkeypatch.setattr(views, "TERMINAL_MAX_CHARS", 5_000)
    content = (ALL + "\n") * 100
    console = terminal()
    views.transcript(console, [Message("user", content), Message("user", "after")])
    output = written(console)
    assert_safe(output)
    assert sanitize(content[:5_000]) in output
    assert sanitize(content[:5_001]) not in output
    assert f"cut here: {len(content) - 5_000:,} more characters are in the session" in output
    assert output.rstrip().endswith("after")


# The real program's paths, against the fake server


def ask_in_terminal(options: AskOptions) -> tuple[str, str]:
    out, err = terminal(), terminal()
    run_ask(options, out=out, err=err)
    return written(out), written(err)


@pytest.mark.parametrize(
    "options",
    [
        AskOptions(words=["hi"]),
        AskOptions(words=["hi"], stream=False),
        AskOptions(words=["hi"], mode="complete"),
        AskOptions(words=["hi"], mode="complete", stream=False),
    ],
    ids=["markdown streamed", "markdown whole", "completion streamed", "completion whole"],
)
def test_ask_in_a_terminal(chatrepl_env, options: AskOptions) -> None:
    chatrepl_env.server.reply = ALL
    output, _ = ask_in_terminal(options)
    assert_safe(output)


def test_ask_in_a_terminal_without_colour_and_as_json(chatrepl_env, monkeypatch) -> None:
    chatrepl_env.server.reply = ALL
    monkeypatch.setenv("NO_COLOR", "1")
    # NO_COLOR takes colour away, not layout: still rendered Markdown, still made safe.
    rendered, _ = ask_in_terminal(AskOptions(words=["hi"]))
    assert_safe(rendered)
    output, _ = ask_in_terminal(AskOptions(words=["hi"], json_output=True))
    assert not FORBIDDEN.search(output)
    assert json.loads(output)["choices"][0]["message"]["content"] == ALL


@pytest.mark.parametrize("flags", [[], ["--no-stream"], ["--mode", "complete"]])
def test_ask_piped_writes_the_reply_unchanged(chatrepl_env, flags: list[str]) -> None:
    chatrepl_env.server.reply = ALL
    result = runner.invoke(app, ["ask", "hi", *flags])
    assert result.exit_code == 0, result.output
    assert result.stdout == ALL + "\n"


def test_server_error_message_is_one_safe_line(chatrepl_env) -> None:
    chatrepl_env.server.fail(404, f"Model not found {ALL}", style="detail")
    result = runner.invoke(app, ["ask", "hi"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert_safe(result.stderr)
    chatrepl_env.server.fail(404, f"Model not found {ALL}", style="detail")
    assert_safe(run_repl(lines("hi")).output)


def test_repl_reply_model_names_and_toolbar(chatrepl_env) -> None:
    server = chatrepl_env.server
    server.models = ["gpt-4o-mini", f"evil{ALL}"]
    server.reply = ALL
    result = run_repl(lines("hi", "/models", "/history"))
    output = result.output
    assert "\x1b" not in output  # the harness has no colours: any escape would be hostile
    assert assert_safe(output).count(squeezed(SHOWN)) >= 2  # the reply, and it in /history
    assert "evil\\x1b]52;c;" in output  # the model's name in /models, shown harmlessly
    result.repl.state.conversation.chat_model = f"evil{ALL}"
    toolbar = result.repl.reader.session.bottom_toolbar()
    assert_safe(toolbar, f"evil{SHOWN}")
    completer = SlashCompleter(result.repl.state)
    offered = list(completer.get_completions(Document("/model evil"), None))
    assert [c.display_text for c in offered] == [f"evil{SHOWN}"]
    assert [c.text for c in offered] == [f"evil{ALL}"]  # the real name is what is used


def test_session_names_and_contents(chatrepl_env) -> None:
    name = "evil\x1b]0;pwned\x07\u202e"  # refused as a new name; an old file may have it
    store = SessionStore(sessions_dir())
    chat = Conversation(
        name="contents", chat_model=ALL, backend="openai", messages=[Message("user", ALL)]
    )
    path = store.save(chat)
    path.with_name(f"{name}.json").write_bytes(path.read_bytes())
    listed = runner.invoke(app, ["sessions", "list"])
    assert listed.exit_code == 0 and f"\n{sanitize(name)} " in f"\n{listed.stdout}"
    assert not FORBIDDEN.search(listed.stdout)
    assert_safe(runner.invoke(app, ["sessions", "show", "contents"]).stdout)
    output = run_repl(lines("/sessions"), resume="contents").output  # banner, messages, table
    assert "\x1b" not in output
    assert squeezed(f"model {SHOWN}") in assert_safe(output)
    assert sanitize(name) in assert_safe(output)  # the table


def test_the_real_program_in_a_pseudo_terminal(chatrepl_env) -> None:
    from tests.test_e2e import PROMPT, spawn, type_line

    chatrepl_env.server.reply = f"**Hi**, {ALL} done."
    child = spawn(chatrepl_env.env)
    child.logfile_read = seen = io.StringIO()
    child.expect(PROMPT["chat"])
    type_line(child, "hello")
    child.expect("tokens")
    child.expect(PROMPT["chat"])
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    output = seen.getvalue()
    # prompt_toolkit writes its own cursor and mode sequences, so look for the hostile ones.
    for hostile in ("\x1b]52", "\x1b]0;", "\x1b]2;", "\x1b]8;;https://evil", "\x1bP", "\x1bc"):
        assert hostile not in output
    assert not re.search("[\x80-\x9f\u202a-\u202e\u2066-\u2069]", output)
    assert squeezed("\\x1b]52;c;aGVsbG8=\\x07") in squeezed(output)
    assert "\x1b[1m" in output  # the reply's bold, drawn by rich
