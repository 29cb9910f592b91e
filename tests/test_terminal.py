"""Terminal helpers: deferred Ctrl-C around a print, hidden type-ahead while a reply streams."""

from __future__ import annotations

import os
import pty
import signal
import termios
import time

import pytest

from chatrepl.terminal import interrupts_deferred, typeahead_hidden


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


def test_not_a_terminal_is_left_alone(tmp_path) -> None:
    with open(tmp_path / "file", "w+") as stream, typeahead_hidden(stream):
        pass
