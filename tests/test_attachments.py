"""/file, /image, `ask -f` and `ask -i`: files and images attached to a message, refused in one
line when missing, binary, too large, not an image, or the backend cannot see."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from typer.testing import CliRunner

from chatrepl.backends.base import Capabilities, ChatRequest
from chatrepl.backends.scripted import ScriptedBackend
from chatrepl.backends.wire import chat_messages
from chatrepl.cli.typer_app import app
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Attachment, Message
from chatrepl.conversation.store import SessionStore
from chatrepl.engine import attachments
from chatrepl.engine.attachments import AttachmentError, read_image, read_texts
from chatrepl.errors import CommandError
from chatrepl.repl import commands
from chatrepl.repl.prompt import PromptReader, SlashCompleter
from chatrepl.repl.state import ReplState
from tests.harness import lines, run_repl

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "sessions" / "session.schema.json").read_text())
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(20)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8)
runner = CliRunner()


@pytest.fixture
def state(tmp_path: Path) -> ReplState:
    conversation = Conversation(chat_model="chat-m", completion_model="comp-m", backend="scripted")
    return ReplState(conversation, SessionStore(tmp_path / "s"), Settings(), ScriptedBackend())


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("# Notes\nbuy milk\n")
    (tmp_path / "a.py").write_text("print('a')\n")
    (tmp_path / "b.py").write_text("print('b')\n")
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "blob.bin").write_bytes(b"abc\x00def")
    (tmp_path / "latin1.txt").write_bytes("é".encode("latin-1") * 50)
    return tmp_path


def test_text_files_and_globs_are_read(files: Path) -> None:
    read = read_texts(["notes.md", "*.py", "a.py"], limit=10_000)
    assert [(item.name, item.text) for item in read] == [
        ("notes.md", "# Notes\nbuy milk\n"),
        ("a.py", "print('a')\n"),
        ("b.py", "print('b')\n"),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.txt", "missing.txt: no such file"),
        ("blob.bin", "blob.bin is a binary file (it holds NUL bytes): not attached"),
        ("latin1.txt", "latin1.txt is not UTF-8 text (a binary file?): not attached"),
        ("*.nothing", "no file matches *.nothing"),
        (".", ".: not a file"),
    ],
)
def test_bad_files_are_refused_in_one_line(files: Path, name: str, message: str) -> None:
    with pytest.raises(AttachmentError) as refused:
        read_texts([name], limit=10_000)
    assert str(refused.value) == message


def test_the_size_limit_counts_what_is_already_attached(files: Path) -> None:
    (files / "big.txt").write_text("x" * 300)
    with pytest.raises(AttachmentError) as refused:
        read_texts(["big.txt"], limit=200)
    assert str(refused.value) == (
        "big.txt is 300 bytes, over the 200 bytes limit on attached text (attach_limit): "
        "not attached"
    )
    already = [Attachment("old", "y" * 150)]
    with pytest.raises(AttachmentError, match=r"b\.py is 11 bytes, .*; 178 bytes already attached"):
        read_texts(["notes.md", "a.py", "b.py"], limit=180, already=already)


def test_images_are_known_by_their_first_bytes(files: Path, monkeypatch) -> None:
    image = read_image("cat.png")
    assert (image.media_type, base64.b64decode(image.data or "")) == ("image/png", PNG)
    assert image.text == "" and image.is_image
    (files / "pic.webp").write_bytes(WEBP)
    assert read_image("pic.webp").media_type == "image/webp"
    with pytest.raises(AttachmentError, match=r"^notes.md is not a PNG, JPEG, GIF or WebP image"):
        read_image("notes.md")
    monkeypatch.setattr(attachments, "IMAGE_LIMIT", 10)
    with pytest.raises(AttachmentError, match=r"^cat.png is 36 bytes, over the 10 bytes limit"):
        read_image("cat.png")


def test_wire_sends_content_parts_only_with_images() -> None:
    text_only = Message("user", "look", attachments=[Attachment("a.md", "hi")])
    image = Attachment("cat.png", "", "image/png", "iVBO")
    both = Message("user", "what is it?", attachments=[Attachment("a.md", "hi"), image])
    sent = chat_messages(ChatRequest("m", (text_only, both)))
    assert sent[0] == {"role": "user", "content": "File a.md:\n```\nhi\n```\n\nlook"}
    assert sent[1]["content"] == [
        {"type": "text", "text": "File a.md:\n```\nhi\n```\n\nwhat is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
    ]
    # A model that cannot see (the embedded one) is told the image's name instead.
    blind = chat_messages(ChatRequest("m", (both,)), images=False)
    assert blind[0]["content"] == "File a.md:\n```\nhi\n```\n\n[image cat.png]\n\nwhat is it?"


def test_file_command_lists_and_clears_pending(state: ReplState, files: Path) -> None:
    assert "nothing attached" in (commands.dispatch(state, "/file").message or "")
    result = commands.dispatch(state, "/file notes.md '*.py'")
    assert result.message == (
        "attached to your next message: notes.md (17 bytes), a.py (11 bytes), b.py (11 bytes)"
    )
    commands.dispatch(state, "/file notes.md")  # attached again: still once
    table = commands.dispatch(state, "/file").table
    assert table is not None and [row[0] for row in table.rows] == [
        "a.py (11 bytes)",
        "b.py (11 bytes)",
        "notes.md (17 bytes)",
    ]
    assert commands.dispatch(state, "/file clear").message == "dropped 3 attachments"
    assert state.pending == []
    with pytest.raises(CommandError, match="No closing quotation"):
        commands.dispatch(state, "/file 'notes.md")


def test_image_is_refused_where_the_backend_cannot_see(state: ReplState, files: Path) -> None:
    commands.dispatch(state, "/image cat.png")
    assert state.pending[0].media_type == "image/png"
    state.backend = ScriptedBackend(capabilities=Capabilities(images=False))
    with pytest.raises(CommandError) as refused:
        commands.dispatch(state, "/image cat.png")
    assert str(refused.value) == "the scripted backend's model cannot take images"
    state.backend = ScriptedBackend()
    with pytest.raises(CommandError, match="one image at a time"):
        commands.dispatch(state, "/image cat.png notes.md")


def test_paths_complete_after_file_and_image(state: ReplState, files: Path) -> None:
    completer = SlashCompleter(state)

    def offered(text: str) -> list[str]:
        found = completer.get_completions(Document(text), CompleteEvent())
        word = text.rsplit(" ", 1)[-1]
        return sorted(word[: len(word) + c.start_position] + c.text for c in found)

    assert offered("/file no") == ["notes.md"]
    assert {"a.py", "b.py", "cat.png", "notes.md"} <= set(offered("/file notes.md "))
    assert "clear" not in offered("/file notes.md ")
    assert offered("/file c") == ["cat.png", "clear"]
    assert offered("/image ca") == ["cat.png"]
    assert offered("/model ca") == []  # no paths where a command takes none


def test_the_repl_sends_attachments_with_the_next_message(chatrepl_env, files: Path) -> None:
    result = run_repl(lines("/file notes.md", "/image cat.png", "what is this?", "and now?"))
    assert "attached to your next message: notes.md (17 bytes)" in result.output
    first, second = chatrepl_env.server.bodies("/chat/completions")
    content = first["messages"][-1]["content"]
    assert content[0] == {
        "type": "text",
        "text": "File notes.md:\n```\n# Notes\nbuy milk\n\n```\n\nwhat is this?",
    }
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert content[1] == {"type": "image_url", "image_url": {"url": url}}
    assert second["messages"][-1] == {"role": "user", "content": "and now?"}  # sent once
    assert result.repl.state.pending == []
    # The session keeps the image, in a schema-valid file, and sends it again in history.
    assert second["messages"][0]["content"][1] == content[1]
    saved = json.loads(next((chatrepl_env.home / "sessions").glob("*.json")).read_text())
    jsonschema.validate(saved, SCHEMA)
    stored = saved["messages"][0]["attachments"]
    assert stored[1] == {
        "name": "cat.png",
        "text": "",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert Message.from_dict(saved["messages"][0]).attachments[1].is_image


def test_pending_files_show_in_the_toolbar_and_survive_a_failed_turn(
    chatrepl_env, files: Path
) -> None:
    chatrepl_env.server.fail(500)
    result = run_repl(lines("/file notes.md", "hello"))
    assert "error:" in result.output
    state = result.repl.state
    assert [item.name for item in state.pending] == ["notes.md"]  # kept for the next try
    reader = PromptReader(state, chatrepl_env.home / "h")
    assert "1 attached (/file)" in reader._toolbar()


def test_completion_mode_refuses_attachments(chatrepl_env, files: Path) -> None:
    result = run_repl(lines("/complete", "/file notes.md", "Once upon"))
    assert "error: attached files go with chat-mode messages" in result.output
    assert chatrepl_env.server.bodies("/completions") == []


def test_ask_attaches_files_and_images_with_stdin_and_prompt(chatrepl_env, files: Path) -> None:
    result = runner.invoke(
        app,
        ["ask", "-f", "notes.md", "--file", "a.py", "-i", "cat.png", "compare"],
        input="piped text",
    )
    assert result.exit_code == 0, result.output
    content = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert content[0]["text"] == (
        "File notes.md:\n```\n# Notes\nbuy milk\n\n```\n\nFile a.py:\n```\nprint('a')\n\n```"
        "\n\npiped text\n\ncompare"
    )
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


def test_ask_with_a_file_alone_and_bad_files(chatrepl_env, files: Path) -> None:
    assert runner.invoke(app, ["ask", "-f", "notes.md"]).exit_code == 0
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == "File notes.md:\n```\n# Notes\nbuy milk\n\n```"
    for args, line in [
        (["-f", "blob.bin", "hi"], "error: blob.bin is a binary file (it holds NUL bytes)"),
        (["-f", "nope.txt", "hi"], "error: nope.txt: no such file"),
        (["-i", "notes.md", "hi"], "error: notes.md is not a PNG, JPEG, GIF or WebP image"),
        (["--mode", "complete", "-f", "a.py", "x"], "error: attached files go with chat-mode"),
    ]:
        result = runner.invoke(app, ["ask", *args])
        assert result.exit_code == 1 and line in result.output, result.output
        assert "Traceback" not in result.output
    assert len(chatrepl_env.server.bodies("/chat/completions")) == 1


def test_attach_limit_is_a_setting(chatrepl_env, files: Path) -> None:
    (chatrepl_env.home / "config.toml").write_text("attach_limit = 20\n")
    result = runner.invoke(app, ["ask", "-f", "notes.md", "-f", "a.py", "hi"])
    assert result.exit_code == 1
    assert "a.py is 11 bytes, over the 20 bytes limit on attached text (attach_limit)" in (
        result.output
    )
