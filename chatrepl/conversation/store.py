"""SessionStore: one versioned JSON file per session, written atomically, with safe names."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chatrepl.conversation import session_format
from chatrepl.conversation.conversation import Conversation
from chatrepl.errors import SessionError

SUFFIX = ".json"
_MAX_NAME = 100
_SLUG_WORDS = 6


@dataclass(frozen=True)
class SessionInfo:
    """A line of `sessions list`: read from the file's metadata."""

    name: str
    updated: str
    messages: int
    path: Path
    problem: str | None = None  # why the file could not be read, when it could not

    @property
    def summary(self) -> str:
        """ "N messages", or why the file is unreadable."""
        return f"unreadable: {self.problem}" if self.problem else f"{self.messages} messages"


def check_name(name: str) -> str:
    """Return the name if it is safe as a file name, else raise SessionError."""
    name = name.strip()
    if not name:
        raise SessionError("a session name cannot be empty")
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise SessionError(f"invalid session name {name!r}: no path separators or '..' allowed")
    if name.startswith(".") or len(name) > _MAX_NAME:
        raise SessionError(f"invalid session name {name!r}: must not start with '.' or exceed 100")
    return name


def slugify(text: str) -> str:
    """A readable file-safe name from the first words of a text."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:_SLUG_WORDS]
    return "-".join(words)[:48].strip("-")


class SessionStore:
    """Sessions saved under one directory, as NAME.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Names this process loaded or wrote: only those may be overwritten by save().
        self._owned: set[str] = set()
        # The text last read or written per name: an unchanged session is not rewritten.
        self._on_disk: dict[str, str] = {}
        # Names this process gave to new sessions (their files did not exist before).
        self._named_here: set[str] = set()

    def path(self, name: str) -> Path:
        """The file of a session."""
        return self.root / f"{check_name(name)}{SUFFIX}"

    def exists(self, name: str) -> bool:
        """Whether a session of that name is on disk."""
        return self.path(name).exists()

    def save(self, conversation: Conversation) -> Path:
        """Write atomically: temp file, fsync, rename. Names an unnamed session first."""
        if not conversation.name:
            conversation.name = self.new_name(conversation.first_user_text())
            self._named_here.add(conversation.name)
        path = self.path(conversation.name)
        if conversation.name not in self._owned and path.exists():
            raise SessionError(
                f"a session named {conversation.name!r} already exists ({path}); "
                "choose another name or load it"
            )
        text = session_format.dumps(conversation)
        if self._on_disk.get(conversation.name) == text and path.exists():
            return path
        try:
            write_atomically(path, text)
        except OSError as error:
            raise SessionError(f"cannot save session to {path}: {error}") from error
        self._owned.add(conversation.name)
        self._on_disk[conversation.name] = text
        return path

    def discard_if_unused(self, conversation: Conversation) -> None:
        """Remove the file of a session this process named and that has no message (a first
        turn that failed), and take its name back."""
        name = conversation.name
        if conversation.messages or name not in self._named_here:
            return
        self.path(name).unlink(missing_ok=True)
        self._owned.discard(name)
        self._on_disk.pop(name, None)
        self._named_here.discard(name)
        conversation.name = None

    def load(self, name: str) -> Conversation:
        """Read a session; a missing or corrupt file raises SessionError naming the file."""
        path = self.path(name)
        if not path.exists():
            raise SessionError(f"no session named {name!r} (see `chatrepl sessions list`)")
        conversation = read_session_file(path)
        conversation.name = path.stem
        self._owned.add(path.stem)
        # What saving it unchanged would write: a version 1 file stays as it is until it changes.
        self._on_disk[path.stem] = session_format.dumps(conversation)
        return conversation

    def list(self) -> list[SessionInfo]:
        """Every session, most recently updated first; unreadable files last, with the reason."""
        infos, broken = [], []
        for path in self._files():
            try:
                conversation = read_session_file(path)
            except SessionError as error:
                broken.append(SessionInfo(path.stem, "", 0, path, problem=str(error)))
                continue
            infos.append(
                SessionInfo(path.stem, conversation.updated, len(conversation.messages), path)
            )
        return sorted(infos, key=lambda info: info.updated, reverse=True) + broken

    def names(self) -> list[str]:
        """Session names, without reading the files (for tab completion)."""
        return sorted(path.stem for path in self._files())

    def latest(self) -> str | None:
        """The most recently modified session, by file time."""
        files = self._files()
        return max(files, key=lambda p: p.stat().st_mtime).stem if files else None

    def delete(self, name: str) -> None:
        """Remove a session file."""
        path = self.path(name)
        if not path.exists():
            raise SessionError(f"no session named {name!r}")
        path.unlink()
        self._owned.discard(name)
        self._on_disk.pop(name, None)

    def rename(self, old: str, new: str) -> None:
        """Rename a session, its file and the name recorded inside it."""
        conversation = self.load(old)
        if self.exists(new):
            raise SessionError(f"a session named {new!r} already exists")
        conversation.name = check_name(new)
        self._owned.add(conversation.name)
        self.save(conversation)
        self.path(old).unlink()
        self._owned.discard(old)
        self._on_disk.pop(old, None)

    def new_name(self, first_text: str) -> str:
        """A readable unused name: a slug of the first message, else the date and time."""
        base = slugify(first_text) or datetime.now().strftime("chat-%Y%m%d-%H%M%S")
        name, counter = base, 2
        while self.path(name).exists() or name in self._owned:
            name, counter = f"{base}-{counter}", counter + 1
        return name

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]


def read_session_file(path: Path) -> Conversation:
    """Parse one session file; any problem is one SessionError line naming the file."""
    try:
        return session_format.from_document(json.loads(path.read_text(encoding="utf-8")))
    except session_format.NewerFormatError as error:
        raise SessionError(f"session file {path} was {error}") from error
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as error:
        raise SessionError(f"cannot read session file {path}: {error}") from error


def write_atomically(path: Path, text: str) -> None:
    """Replace path's content so that a crash leaves either the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
