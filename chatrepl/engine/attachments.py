"""Files attached to a message: text files (fenced into the message) and images (sent as data
URLs to vision models). Each refusal is one line naming the file and why.

Text files must decode as UTF-8 (a few bad bytes are replaced) and hold no NUL byte: anything
else is binary and refused. Their total size is limited by `attach_limit`; an image by
IMAGE_LIMIT, and only PNG, JPEG, GIF and WebP images are taken, known by their first bytes.
"""

from __future__ import annotations

import base64
import glob
from collections.abc import Iterable, Sequence
from pathlib import Path

from chatrepl.conversation.messages import Attachment
from chatrepl.engine.input_limit import megabytes
from chatrepl.errors import ChatReplError

IMAGE_LIMIT = 20_000_000  # bytes of one image (OpenAI's own limit per image)
BAD_BYTES_RATIO = 0.01  # more undecodable UTF-8 than this share of a file: binary
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class AttachmentError(ChatReplError):
    """A file cannot be attached: missing, unreadable, binary, too large, not an image."""


def expand(patterns: Iterable[str]) -> list[Path]:
    """The files named: `~` expanded, globs matched (sorted); a glob matching nothing, refused."""
    paths: list[Path] = []
    for pattern in patterns:
        pattern = str(Path(pattern).expanduser())
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            files = [Path(match) for match in matches if Path(match).is_file()]
            if not files:
                raise AttachmentError(f"no file matches {pattern}")
            paths += files
        else:
            paths.append(Path(pattern))
    return list(dict.fromkeys(paths))  # each file once


def read_texts(
    patterns: Iterable[str], limit: int, already: Sequence[Attachment] = ()
) -> list[Attachment]:
    """Text files as attachments; refused when one is binary or all of them (and the ones
    `already` attached) come to more than `limit` bytes."""
    used = sum(text_size(item) for item in already if not item.is_image)
    attached = []
    for path in expand(patterns):
        try:
            data = _read(path, limit - used)
        except _TooLarge as large:
            held = f"; {megabytes(used)} already attached" if used else ""
            raise AttachmentError(
                f"{path} is {megabytes(large.size)}, over the {megabytes(limit)} limit on "
                f"attached text (attach_limit){held}: not attached"
            ) from None
        attached.append(Attachment(path.as_posix(), decode_text(path, data)))
        used += len(data)
    return attached


def read_image(pattern: str) -> Attachment:
    """An image file as an attachment: PNG, JPEG, GIF or WebP, at most IMAGE_LIMIT bytes."""
    paths = expand([pattern])
    if len(paths) != 1:
        raise AttachmentError(f"{pattern} matches {len(paths)} files: attach one image at a time")
    path = paths[0]
    try:
        data = _read(path, IMAGE_LIMIT)
    except _TooLarge as large:
        raise AttachmentError(
            f"{path} is {megabytes(large.size)}, over the {megabytes(IMAGE_LIMIT)} limit on "
            "an image: not attached"
        ) from None
    media_type = image_type(data)
    if media_type is None:
        raise AttachmentError(f"{path} is not a PNG, JPEG, GIF or WebP image: not attached")
    return Attachment(path.as_posix(), "", media_type, base64.b64encode(data).decode("ascii"))


def image_type(data: bytes) -> str | None:
    """The media type of an image known by its first bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)


def decode_text(path: Path, data: bytes) -> str:
    """A file's bytes as text; AttachmentError when they look binary."""
    if b"\x00" in data:
        raise AttachmentError(f"{path} is a binary file (it holds NUL bytes): not attached")
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    if bad > max(1, len(data) * BAD_BYTES_RATIO):
        raise AttachmentError(f"{path} is not UTF-8 text (a binary file?): not attached")
    return text


def text_size(attachment: Attachment) -> int:
    """How many bytes an attached text counts for against attach_limit."""
    return len(attachment.text.encode("utf-8", "surrogatepass"))


def describe(attachment: Attachment) -> str:
    """`notes.md (1,204 bytes)` or `cat.png (image/png, 0.2 MB)`."""
    if attachment.is_image:
        size = len(attachment.data or "") * 3 // 4
        return f"{attachment.name} ({attachment.media_type}, {megabytes(size)})"
    return f"{attachment.name} ({megabytes(text_size(attachment))})"


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _read(path: Path, room: int) -> bytes:
    """At most room + 1 bytes of a regular file; one line when it is missing or unreadable,
    _TooLarge when it holds more than `room` bytes."""
    try:
        if not path.is_file():
            missing = not path.exists()
            raise AttachmentError(f"{path}: {'no such file' if missing else 'not a file'}")
        size = path.stat().st_size
        if size > room:
            raise _TooLarge(size)
        with path.open("rb") as file:
            data = file.read(max(room, 0) + 1)  # the file may have grown since
    except OSError as error:
        raise AttachmentError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > room:
        raise _TooLarge(len(data))
    return data


def check_sendable(
    attachments: Sequence[Attachment], mode: str, images: bool, backend: str
) -> None:
    """Refuse attachments a turn cannot carry: any in completion mode, images without vision."""
    if attachments and mode != "chat":
        raise AttachmentError(
            "attached files go with chat-mode messages: switch with /chat (or ask --mode chat)"
        )
    if not images and any(item.is_image for item in attachments):
        raise AttachmentError(f"the {backend} backend's model cannot take images")
