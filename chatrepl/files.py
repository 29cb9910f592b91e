"""The files chatrepl writes: private (directories 0700, files 0600), replaced atomically, and
locked with locks that die with their process.

Every file chatrepl creates goes through here: sessions, the input history, and what comes later
(a search index, logs, a config it writes). Directories a user made are left as they are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: locks are taken by this process only
    fcntl = None  # type: ignore[assignment]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TEMP_SUFFIX = ".tmp"
POLL_SECONDS = 0.02

# What a lock is held for, written into the lock file for whoever finds it taken.
LASTING = "open"  # held as long as something is open (a session in a REPL): not worth waiting for
BRIEF = "write"  # held for one write: worth waiting for


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents as 0700, whatever the umask; existing ones stay."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # made meanwhile by someone else: theirs
            continue
        os.chmod(directory, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Create `path` (its directory private) unless it exists, and make it 0600 either way."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.close(fd)
    with contextlib.suppress(OSError):  # not ours to change (another owner): leave it
        os.chmod(path, PRIVATE_FILE)
    return path


def reason(error: OSError) -> str:
    """What went wrong, without the errno number or a temp file's name."""
    return error.strerror or str(error)


def write_atomically(path: Path, text: str) -> None:
    """Replace path's content, 0600, so that a crash leaves the old or the new file, whole.

    Steps: a temp file beside it (mkstemp), write, fsync, rename over it, fsync the directory.
    A failure at any step raises OSError and leaves the old file as it was and no temp file.
    """
    private_dir(path.parent)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_new(path: Path, text: str) -> None:
    """Create path (0600) holding text; FileExistsError when it exists, which stays untouched.

    A failure while writing removes the unfinished file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        try:
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable; file systems that cannot are skipped."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its lock file says."""

    pid: int
    purpose: str  # LASTING or BRIEF


class LockBusy(Exception):
    """Another process (or another lock object of this one) holds the lock."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        super().__init__(f"{path} is locked")
        self.holder = holder


class FileLock:
    """An exclusive lock on a file (flock): released by the kernel when its process dies, however
    it dies, so a crash never leaves anything locked. Two FileLocks of one process exclude each
    other too. The lock file says who holds it (pid and purpose) and is removed on release."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock and its file is still the one at `path`."""
        return self._fd is not None and _same_file(self._fd, self.path)

    def acquire(self, purpose: str, wait: float = 0.0) -> None:
        """Take the lock, waiting up to `wait` seconds for a BRIEF holder; a LASTING holder
        (or the end of the wait) raises LockBusy at once."""
        deadline = time.monotonic() + wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
            if not _try_lock(fd):
                os.close(fd)
                holder = read_holder(self.path)
                if (holder and holder.purpose == LASTING) or time.monotonic() >= deadline:
                    raise LockBusy(self.path, holder)
                time.sleep(POLL_SECONDS)
            elif not _same_file(fd, self.path):  # its holder removed it as we waited: again
                os.close(fd)
            else:
                self._hold(fd, purpose)
                return

    def release(self) -> None:
        """Remove the lock file (while still holding it) and unlock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        try:
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only directory: the stale file is harmless, the lock goes with the fd
        finally:
            os.close(fd)

    def _hold(self, fd: int, purpose: str) -> None:
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        with contextlib.suppress(OSError):  # who holds it is information, not the lock itself
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {purpose}\n".encode())


def read_holder(path: Path) -> Holder | None:
    """Who holds a lock, from its file (None when it cannot be told)."""
    try:
        pid, purpose = path.read_text(encoding="utf-8").split()
        return Holder(int(pid), purpose)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False
