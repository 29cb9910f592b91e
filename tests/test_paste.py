"""Bracketed paste: the linear parser gives exactly what prompt_toolkit's own parser gives, however
the input is cut into reads, and a paste far over the input limit is refused in one line."""

from __future__ import annotations

import pytest
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.keys import Keys

from chatrepl.repl.paste import LinearPasteParser, use_linear_paste
from tests.harness import PASTE_END, PASTE_START, lines, run_repl

TYPED = "ab" + PASTE_START + "line one\r\nline two\x1b[A é\n" + PASTE_END + "c\r"


def key_presses(parser_class: type[Vt100Parser], text: str, read: int) -> list[tuple]:
    """The keys a parser reports when `text` arrives `read` characters at a time."""
    keys: list = []
    parser = parser_class(keys.append)
    for start in range(0, len(text), read):
        parser.feed(text[start : start + read])
    parser.flush()
    return [(press.key, press.data) for press in keys]


@pytest.mark.parametrize("read", [1, 2, 3, 5, 6, 7, 13, 1024])
def test_same_keys_as_prompt_toolkit_whatever_the_reads(read: int) -> None:
    expected = key_presses(Vt100Parser, TYPED, 1024)
    assert key_presses(LinearPasteParser, TYPED, read) == expected
    pasted = [data for key, data in expected if key == Keys.BracketedPaste]
    assert pasted == ["line one\r\nline two\x1b[A é\n"]


@pytest.mark.parametrize("split", range(len(PASTE_END) + 1))
def test_an_end_mark_split_between_reads(split: int) -> None:
    keys: list = []
    parser = LinearPasteParser(keys.append)
    parser.feed(PASTE_START + "x" * 10 + PASTE_END[:split])
    parser.feed(PASTE_END[split:] + "y")
    parser.feed(PASTE_START + "second" + PASTE_END)
    assert [(k.key, k.data) for k in keys] == [
        (Keys.BracketedPaste, "x" * 10),
        ("y", "y"),
        (Keys.BracketedPaste, "second"),
    ]


def test_a_paste_of_megabytes_in_small_reads() -> None:
    content = "0123456789abcdef\n" * 200_000  # 3.4 MB in 1 KB reads, as from a terminal
    assert key_presses(LinearPasteParser, PASTE_START + content + PASTE_END, 1024) == [
        (Keys.BracketedPaste, content)
    ]


def test_the_repl_input_gets_the_linear_parser(chatrepl_env) -> None:
    result = run_repl(PASTE_START + "one\ntwo" + PASTE_END + "\r")
    assert isinstance(result.repl.reader.session.input.vt100_parser, LinearPasteParser)
    assert result.conversation.messages[0].content == "one\ntwo"


def test_other_inputs_are_left_alone() -> None:
    class NotVt100:
        vt100_parser = None

    other = NotVt100()
    use_linear_paste(other)
    assert other.vt100_parser is None


def test_a_paste_over_the_limit_is_refused_in_one_line(chatrepl_env, monkeypatch) -> None:
    monkeypatch.setenv("CHATREPL_MAX_INPUT_BYTES", "1000000")
    big = "0123456789abcdef\n" * 600_000  # 10.2 MB
    result = run_repl(PASTE_START + big + PASTE_END + "\r" + lines("still here"))
    assert "error: the message is 10.2 MB, over the 1 MB limit (max_input_bytes)" in result.output
    assert [m.content for m in result.conversation.messages] == ["still here", "Echo: still here"]
    sent = chatrepl_env.server.bodies("/chat/completions")
    assert len(sent) == 1


def test_a_paste_under_the_limit_is_sent_whole(chatrepl_env) -> None:
    (chatrepl_env.home / "config.toml").write_text('context = "off"\n')  # no window check
    chatrepl_env.server.reply = "got it"
    big = "0123456789abcdef\n" * 120_000  # 2 MB, under the default limit
    result = run_repl(PASTE_START + big + PASTE_END + "\r")
    sent = chatrepl_env.server.last("/chat/completions").body["messages"][-1]["content"]
    assert sent == big
    assert "got it" in result.output
