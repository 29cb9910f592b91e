"""Copying text to the clipboard: by OSC 52 through the terminal, which works over SSH, and by
the system clipboard where there is one.

- OSC 52 (`ESC ] 52 ; c ; BASE64 BEL`) asks the terminal itself to set its clipboard: it needs
  no display server, so it works over SSH. Inside tmux the text goes to `tmux load-buffer -w`,
  which puts it in tmux's paste buffer and hands it on to the outer terminal by OSC 52 (tmux's
  `set-clipboard` is `external` by default, under which tmux ignores an application's own OSC
  52). A tmux older than 3.2 (no `-w`) gets the plain sequence, which it passes on when
  `set-clipboard` is `on`.
- The system clipboard: pbcopy on macOS, wl-copy under Wayland, xclip or xsel under X11, the
  search pyperclip does; pyperclip itself (the `clipboard` extra) where none of those is found.

Control characters (ESC, CR, ...) are left out of what is copied: pasted into a shell, an ESC
sequence could end a bracketed paste and run what follows.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys

from rich.console import Console

from chatrepl.errors import ChatReplError

TOOL_TIMEOUT = 5.0  # seconds a clipboard tool may take to take the text
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NOWHERE = (
    "nothing could take the text: this is not a terminal (OSC 52) and no clipboard tool was "
    "found (pbcopy, wl-copy, xclip, xsel; or pip install 'chatrepl[clipboard]')"
)


def copy(console: Console, text: str, what: str) -> str:
    """Copy text everywhere it can go; the line saying what was copied and how."""
    clean, dropped = without_controls(text)
    used = [name for name in (terminal_copy(console, clean), system_copy(clean)) if name]
    if not used:
        raise ChatReplError(_NOWHERE)
    plural = "s" if dropped > 1 else ""
    note = f"; {dropped:,} control character{plural} left out" if dropped else ""
    return f"copied {what}: {len(clean):,} characters ({' and '.join(used)}){note}"


def without_controls(text: str) -> tuple[str, int]:
    """text without control characters but tab and newline (CRLF becomes LF), and how many went."""
    text = text.replace("\r\n", "\n")
    clean = _CONTROLS.sub("", text)
    return clean, len(text) - len(clean)


def osc52(text: str) -> str:
    """The escape sequence that asks a terminal to put text in its clipboard."""
    payload = base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")
    return f"\x1b]52;c;{payload}\x07"


def terminal_copy(console: Console, text: str) -> str | None:
    """Copy by OSC 52 (through tmux inside tmux); what was used, or None for not a terminal."""
    in_tmux = os.environ.get("TMUX") and shutil.which("tmux")
    if in_tmux and _run(["tmux", "load-buffer", "-w", "-"], text):
        return "OSC 52 via tmux"
    if not console.is_terminal:
        return None
    console.file.write(osc52(text))
    console.file.flush()
    return "OSC 52"


def system_copy(text: str) -> str | None:
    """Copy with the first clipboard tool that takes the text, else pyperclip; which, or None."""
    for argv in clipboard_tools():
        if _run(argv, text):
            return argv[0]
    return _pyperclip(text)


def clipboard_tools() -> list[list[str]]:
    """The clipboard programs of this system that are installed, the likeliest first."""
    if sys.platform == "darwin":
        candidates = [["pbcopy"]]
    else:
        candidates = []
        if os.environ.get("WAYLAND_DISPLAY"):
            candidates.append(["wl-copy"])
        if os.environ.get("DISPLAY"):
            candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    return [argv for argv in candidates if shutil.which(argv[0])]


def _run(argv: list[str], text: str) -> bool:
    """Feed text to a program; whether it took it. Its output is not kept: xclip and wl-copy
    stay behind to serve the clipboard, and would hold a pipe open."""
    try:
        completed = subprocess.run(
            argv,
            input=text.encode("utf-8", "replace"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0


def _pyperclip(text: str) -> str | None:
    try:
        import pyperclip  # the optional `clipboard` extra
    except ImportError:
        return None
    try:
        pyperclip.copy(text)
    except pyperclip.PyperclipException:
        return None
    return "pyperclip"
