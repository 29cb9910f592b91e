"""Garbage collection held during start-up and back on once the backend has loaded."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from chatrepl import collection
from chatrepl.backends.loader import BackgroundLoad


@pytest.fixture
def clean_gc() -> Iterator[None]:
    assert gc.isenabled()
    yield
    collection.startup_done()
    gc.unfreeze()
    gc.enable()


def test_held_until_a_background_load_is_done(clean_gc: None) -> None:
    collection.hold_for_startup()
    assert not gc.isenabled()
    load = BackgroundLoad("test", lambda: gc.isenabled())
    assert load.result() is False  # the slow import itself ran without collections
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # start-up's objects kept out of later passes


def test_done_without_a_hold_changes_nothing(clean_gc: None) -> None:
    frozen = gc.get_freeze_count()
    BackgroundLoad("test", lambda: None).result()
    collection.startup_done()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_pause_inside_the_hold_does_not_end_it(clean_gc: None) -> None:
    collection.hold_for_startup()
    with collection.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    collection.startup_done()
    assert gc.isenabled()


def test_the_console_script_leaves_collections_on() -> None:
    script = (
        "import gc, sys\n"
        "from chatrepl.cli import entry\n"
        "sys.argv = ['chatrepl', '--version']\n"
        "entry.main()\n"
        "print(gc.isenabled())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split()[-1] == "True", done.stderr
