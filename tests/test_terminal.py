"""Terminal helpers: deferred Ctrl-C around a print, hidden type-ahead while a reply streams."""

from __future__ import annotations

import io
import os
import pty
import signal
import termios
import time

import pytest

from chatrepl.ui.terminal import interrupts_deferred, typeahead_hidden


def test_ctrl_c_waits_until_the_block_is_done() -> None:
    finished = False
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        finished = True
    assert finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_exception() -> None:
    with interrupts_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_typeahead_is_not_echoed_and_echo_comes_back() -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "r", closefd=False) as stream:
            assert termios.tcgetattr(follower)[3] & termios.ECHO
            with typeahead_hidden(stream):
                assert not termios.tcgetattr(follower)[3] & termios.ECHO
            assert termios.tcgetattr(follower)[3] & termios.ECHO
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("kind", ["file", "no-fileno"])
def test_not_a_terminal_is_left_alone(kind: str, tmp_path, monkeypatch) -> None:
    """A stream that is no terminal gets no termios call, and the block still runs."""
    calls: list[str] = []
    monkeypatch.setattr(termios, "tcgetattr", lambda *args: calls.append("tcgetattr"))
    monkeypatch.setattr(termios, "tcsetattr", lambda *args: calls.append("tcsetattr"))
    with (
        open(tmp_path / "file", "w+") if kind == "file" else io.StringIO() as stream,
        typeahead_hidden(stream),
    ):
        stream.write("typed ahead")
        stream.seek(0)
        assert stream.read() == "typed ahead"
    assert calls == []
