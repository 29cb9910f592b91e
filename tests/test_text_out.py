"""Getting text out: /copy (OSC 52 and the system clipboard), /export and `sessions export`,
/save NAME as a copy and /rename, and /history through a pager when it is taller than the screen.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console
from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from chatrepl.conversation import session_format
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.export import code_blocks, fenced, to_markdown
from chatrepl.conversation.messages import Attachment, Message, ToolCall
from chatrepl.conversation.store import SessionStore
from chatrepl.errors import ChatReplError
from chatrepl.ui import clipboard, pager
from chatrepl.ui.views import transcript
from tests.harness import lines, run_repl

runner = CliRunner()
REPLY = (
    "Here:\n\n```python\nprint('one')\n```\n\nand\n\n    indented = 2\n\nthen:\n\n~~~\nthree\n~~~\n"
)


# ---------------------------------------------------------------- code blocks and Markdown


def test_code_blocks_are_found_fenced_indented_and_nested() -> None:
    nested = "- item\n\n  ```\n  in a list\n  ```\n\n> ```js\n> quoted\n> ```\n"
    assert code_blocks(REPLY) == ["print('one')\n", "indented = 2\n", "three\n"]
    assert code_blocks(nested) == ["in a list\n", "quoted\n"]
    assert code_blocks("no code, only `inline`") == []


def fences(markdown: str) -> list[tuple[str, str]]:
    """(info, content) of every top-level fence, as a CommonMark reader sees them."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [(t.info, t.content) for t in tokens if t.type == "fence" and t.level == 0]


def test_fenced_text_holding_fences_reads_back_unchanged() -> None:
    tricky = "before\n```\ninner\n```\n`````\nlonger run\n"
    assert fences(fenced(tricky)) == [("", tricky)]
    assert fenced(tricky).startswith("``````\n")
    assert fences(fenced("no newline at the end", "json")) == [("json", "no newline at the end\n")]


def exported_conversation() -> Conversation:
    conversation = Conversation(name="demo", chat_model="gpt-x", system="Be brief.")
    summary = Message("system", "They said hello.", summary_of=["a"])
    old = Message("user", "hello", summarized_by=summary.id, id="a")
    conversation.messages = [
        old,
        summary,
        Message("user", "read it", attachments=[Attachment("notes.md", "```\nfenced note\n```\n")]),
        Message(
            "assistant",
            "",
            model="gpt-x",
            tool_calls=[ToolCall("call_1", "read_file", '{"path": "notes.md"}')],
        ),
        Message("tool", "result with ``` inside", tool_call_id="call_1", name="read_file"),
        Message("assistant", "Cut off:\n\n```python\nx = 1", model="gpt-x", interrupted=True),
        Message("user", "def f(x):", mode="complete"),
        Message("assistant", "    return x\n", mode="complete", model="davinci"),
        Message("user", "still here?"),
    ]
    return conversation


def test_markdown_export_has_role_headings_fences_and_marks() -> None:
    markdown = to_markdown(exported_conversation())
    headings = re.findall(r"^## (.+)$", markdown, re.MULTILINE)
    assert headings == [
        "System prompt",
        "User · summarized (not sent)",
        "Summary of 1 earlier messages",
        "User",
        "Assistant · gpt-x",
        "Tool result · read_file",
        "Assistant · gpt-x · interrupted",
        "Prompt",
        "Completion · davinci",
        "User",
    ]
    assert markdown.startswith("# demo\n\nchatrepl session · chat mode · model gpt-x · 9 messages")
    assert "Attached `notes.md`:" in markdown and "Tool call `read_file`:" in markdown
    assert fences(markdown) == [
        ("", "```\nfenced note\n```\n"),  # the attachment, fence and all
        ("json", '{"path": "notes.md"}\n'),
        ("", "result with ``` inside\n"),
        ("python", "x = 1\n"),  # the interrupted reply's open fence, closed
        ("", "def f(x):\n"),
        ("", "    return x\n"),
    ]


def test_json_export_is_the_session_file(chatrepl_env, tmp_path: Path) -> None:
    run_repl(lines("export me", f"/export json {tmp_path / 'out.json'}"))
    exported = (tmp_path / "out.json").read_text()
    assert exported == (chatrepl_env.home / "sessions" / "export-me.json").read_text()
    assert session_format.from_document(json.loads(exported)).messages[1].content == (
        "Echo: export me"
    )
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o600


# ---------------------------------------------------------------- /export in the REPL


def test_export_writes_name_md_here_and_never_overwrites_without_force(
    chatrepl_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.md").write_text("mine")
    result = run_repl(
        lines(
            "export this",
            "/export",
            "/export md keep.md",
            '/export "with space.md"',
            "/export keep.md --force",
            "/export txt",
            "/export a.md b.md",
        )
    )
    assert "exported 2 messages as md to export-this.md" in result.output
    assert "## User\n\nexport this\n\n## Assistant" in (tmp_path / "export-this.md").read_text()
    assert "error: keep.md exists already: add --force to replace it" in result.output
    assert (tmp_path / "with space.md").exists()
    assert "exported 2 messages as md to txt" in result.output  # a word not md/json: a file
    assert (tmp_path / "keep.md").read_text().startswith("# export-this")
    assert result.output.count("error: use /export [md|json] [FILE] [--force]") == 1
    assert "Traceback" not in result.output


def test_export_into_a_missing_directory_is_one_line(chatrepl_env, tmp_path: Path) -> None:
    output = run_repl(lines("x", f"/export {tmp_path / 'nope' / 'x.md'}")).output
    assert f"error: cannot write {tmp_path / 'nope' / 'x.md'}: there is no directory" in output
    assert not (tmp_path / "nope").exists()


def test_export_before_any_message_says_so(chatrepl_env) -> None:
    assert "error: nothing to export: no messages yet" in run_repl(lines("/export")).output


# ---------------------------------------------------------------- chatrepl sessions export


def test_sessions_export_to_stdout_and_to_a_file(chatrepl_env, tmp_path: Path) -> None:
    run_repl(lines("cli export", "/rename cli"))
    shown = runner.invoke(app, ["sessions", "export", "cli"])
    assert shown.exit_code == 0 and shown.stdout.startswith("# cli\n")
    assert "## Assistant · gpt-4o-mini\n\nEcho: cli export\n" in shown.stdout
    target = tmp_path / "cli.json"
    written = runner.invoke(app, ["sessions", "export", "cli", "-o", str(target)])
    assert written.exit_code == 0 and f"exported cli to {target}" in written.stdout
    assert json.loads(target.read_text())["name"] == "cli"  # the format from the file name
    again = runner.invoke(app, ["sessions", "export", "cli", "-o", str(target), "-f", "md"])
    assert again.exit_code == 1 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    forced = runner.invoke(app, ["sessions", "export", "cli", "-o", str(target), "--force"])
    assert forced.exit_code == 0 and json.loads(target.read_text())["name"] == "cli"
    bad = runner.invoke(app, ["sessions", "export", "cli", "--format", "pdf"])
    assert bad.exit_code == 1 and "unknown export format 'pdf': use md or json" in bad.stderr
    missing = runner.invoke(app, ["sessions", "export", "nothing"])
    assert missing.exit_code == 1 and "no session named 'nothing'" in missing.stderr


# ---------------------------------------------------------------- /save NAME and /rename


def test_save_name_writes_a_copy_and_goes_on_in_the_current_session(chatrepl_env) -> None:
    result = run_repl(lines("original words", "/save spare", "one more"))
    sessions = chatrepl_env.home / "sessions"
    assert sorted(p.stem for p in sessions.glob("*.json")) == ["original-words", "spare"]
    assert "saved a copy as spare" in result.output and "still original-words" in result.output
    assert len(json.loads((sessions / "original-words.json").read_text())["messages"]) == 4
    spare = json.loads((sessions / "spare.json").read_text())
    assert spare["name"] == "spare" and len(spare["messages"]) == 2
    SessionStore(sessions, keep_open=True).load("spare")  # the copy is not held open


def test_save_and_rename_onto_an_existing_session_are_refused(chatrepl_env) -> None:
    run_repl(lines("taken", "/rename taken"))
    result = run_repl(lines("another", "/save taken", "/rename taken", "/load taken", "/new",
                            "/rename taken"))  # fmt: skip
    assert result.output.count("a session named 'taken' already exists") == 3
    saved = json.loads((chatrepl_env.home / "sessions" / "taken.json").read_text())
    assert [m["content"] for m in saved["messages"]] == ["taken", "Echo: taken"]


# ---------------------------------------------------------------- /copy


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin directory first on PATH whose clipboard tools write what they get to files."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("xclip", "xsel", "wl-copy", "tmux"):
        script = bin_dir / name
        script.write_text(
            f'#!/bin/sh\necho "$@" > "{tmp_path}/{name}.args"\ncat > "{tmp_path}/{name}.out"\n'
        )
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("TMUX", "WAYLAND_DISPLAY", "DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_copy_a_code_block_with_xclip(chatrepl_env, fake_tools: Path, monkeypatch) -> None:
    monkeypatch.setenv("DISPLAY", ":9")
    chatrepl_env.server.reply = REPLY
    result = run_repl(lines("code please", "/copy 2"))
    assert "copied code block 2 of the last reply: 13 characters (xclip)" in result.output
    assert (fake_tools / "xclip.out").read_text() == "indented = 2\n"
    assert (fake_tools / "xclip.args").read_text().split() == ["-selection", "clipboard"]


def test_copy_errors_are_one_line(chatrepl_env, fake_tools: Path, monkeypatch) -> None:
    monkeypatch.setattr(clipboard, "_pyperclip", lambda text: None)
    output = run_repl(lines("/copy")).output
    assert "error: nothing to copy: there is no reply yet" in output
    chatrepl_env.server.reply = "no code here"
    output = run_repl(lines("hi", "/copy code", "/copy 1", "/copy last", "/copy")).output
    assert output.count("error: the last reply has no code block") == 2
    assert "error: use /copy (the last reply), /copy N (its Nth code block)" in output
    # not a terminal (no OSC 52), no DISPLAY (no xclip): nothing could take it
    assert "error: nothing could take the text: this is not a terminal" in output
    assert "Traceback" not in output


def test_osc52_goes_to_a_terminal_without_control_characters(fake_tools: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    line = clipboard.copy(console, "naïve\r\nrm -rf ~\x1b[201~\n", "the last reply")
    assert line == "copied the last reply: 20 characters (OSC 52); 1 control character left out"
    sequence = re.fullmatch(r"\x1b\]52;c;([A-Za-z0-9+/=]+)\x07", out.getvalue())
    assert sequence is not None
    assert base64.b64decode(sequence[1]).decode() == "naïve\nrm -rf ~[201~\n"


def test_inside_tmux_the_text_goes_through_tmux(fake_tools: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    out = io.StringIO()
    line = clipboard.copy(Console(file=out, force_terminal=True), "hello", "the last reply")
    assert line == "copied the last reply: 5 characters (OSC 52 via tmux and wl-copy)"
    assert (fake_tools / "tmux.args").read_text().split() == ["load-buffer", "-w", "-"]
    assert (fake_tools / "tmux.out").read_text() == (fake_tools / "wl-copy.out").read_text()
    assert out.getvalue() == ""  # tmux passes it on; no sequence of our own


def test_pyperclip_where_no_tool_is_found(fake_tools: Path, monkeypatch) -> None:
    pyperclip = pytest.importorskip("pyperclip")
    monkeypatch.setattr(pyperclip, "copy", pyperclip.copy)  # restored afterwards
    pyperclip.set_clipboard("xsel")  # pyperclip's own xsel support, run on the fake xsel
    line = clipboard.copy(Console(file=io.StringIO()), "via pyperclip", "the last reply")
    assert line.endswith("(pyperclip)")
    assert (fake_tools / "xsel.out").read_text() == "via pyperclip"


def test_nothing_to_copy_to_is_an_error(fake_tools: Path, monkeypatch) -> None:
    monkeypatch.setattr(clipboard, "_pyperclip", lambda text: None)
    with pytest.raises(ChatReplError, match="no clipboard tool was found"):
        clipboard.copy(Console(file=io.StringIO()), "x", "the last reply")


# ---------------------------------------------------------------- the pager


def long_transcript(count: int) -> list[Message]:
    return [Message("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(count)]


def render(messages: list[Message]):
    return lambda console: transcript(console, messages)


def test_a_tall_history_goes_through_the_pager_whole(tmp_path: Path, monkeypatch) -> None:
    paged = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"cat > {paged}")
    monkeypatch.delenv("LESS", raising=False)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60, height=20)
    assert pager.show_paged(console, render(long_transcript(40))) is True
    text = paged.read_text()
    assert out.getvalue() == ""
    assert "message 0" in text and "message 39" in text and "\x1b[" in text  # colours kept
    assert pager.pager_command() == f"cat > {paged}"


def test_a_short_history_is_printed_not_paged(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PAGER", f"cat > {tmp_path / 'paged.txt'}")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60, height=20)
    assert pager.show_paged(console, render(long_transcript(4))) is False
    assert "message 3" in out.getvalue() and not (tmp_path / "paged.txt").exists()


def test_a_pager_that_cannot_start_means_printing_it_all(monkeypatch) -> None:
    monkeypatch.setenv("PAGER", "no-such-pager-anywhere")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60, height=10)
    assert pager.show_paged(console, render(long_transcript(30))) is False
    assert "message 0" in out.getvalue() and "message 29" in out.getvalue()


def test_less_gets_colours_unless_less_is_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PAGER", f"echo $LESS > {tmp_path / 'less'}")
    monkeypatch.delenv("LESS", raising=False)
    assert pager.page("text") is True
    assert (tmp_path / "less").read_text() == "FRX\n"
    monkeypatch.setenv("LESS", "-S")
    pager.page("text")
    assert (tmp_path / "less").read_text() == "-S\n"


def test_history_is_not_paged_when_not_a_terminal(chatrepl_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAGER", f"cat > {tmp_path / 'paged.txt'}")
    output = run_repl(lines(*(f"line {i}" for i in range(30)), "/history")).output
    assert output.count("Echo: line 29") == 2 and not (tmp_path / "paged.txt").exists()
