"""OpenAI's tokenizers, offline: the o200k_base and cl100k_base encodings, loaded with tiktoken.

tiktoken downloads an encoding's rank file the first time it is asked for one, which fails
offline. chatrepl ships the two files instead (`data/*.tiktoken.gz`: OpenAI's files byte for
byte, gzipped; where they come from is in `data/README.md`) and builds the same
`tiktoken.Encoding` from them. tiktoken is imported only when an encoding is first needed, and
each encoding is loaded once per process.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from chatrepl.errors import ChatReplError

O200K = "o200k_base"
CL100K = "cl100k_base"


class EncodingError(ChatReplError):
    """An encoding's data cannot be loaded (a damaged install, tiktoken missing)."""


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs besides the ranks, as tiktoken_ext/openai_public.py declares it."""

    name: str
    sha256: str  # of the uncompressed rank file: tiktoken's `expected_hash` for it
    pat_str: str
    special_tokens: dict[str, int] = field(default_factory=dict)


# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14); tests/test_tokens.py checks that
# the installed tiktoken still declares the same.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)  # fmt: skip
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

SPECS: dict[str, EncodingSpec] = {
    O200K: EncodingSpec(
        O200K,
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    CL100K: EncodingSpec(
        CL100K,
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}

# Model names (an optional `ft:` prefix for fine-tunes, then a family, then `-…` or `:…`).
_FAMILIES = (
    (O200K, r"gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5(?:\.\d+)?|o1|o3|o4"),
    (CL100K, r"gpt-4|gpt-3\.5|gpt-35|text-embedding-(?:3|ada-002)|davinci-002|babbage-002"),
)
_MODEL_PATTERNS = tuple(
    (name, re.compile(rf"(?:ft:)?(?:{families})(?:[-:].*)?", re.DOTALL))
    for name, families in _FAMILIES
)


def encoding_for_model(model: str) -> str | None:
    """The encoding an OpenAI model uses, or None for a name chatrepl does not know."""
    name = model.strip().lower()
    for encoding, pattern in _MODEL_PATTERNS:
        if pattern.fullmatch(name):
            return encoding
    return None


def data_file(name: str) -> Any:
    """The shipped rank file of an encoding (a Traversable inside the package)."""
    from importlib import resources

    return resources.files(__package__).joinpath("data", f"{name}.tiktoken.gz")


def read_ranks(spec: EncodingSpec) -> dict[bytes, int]:
    """The encoding's mergeable ranks from the shipped file, checked against OpenAI's hash."""
    import binascii
    import gzip
    import hashlib

    try:
        text = gzip.decompress(data_file(spec.name).read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise EncodingError(
            f"cannot read {spec.name}'s data: {error}; reinstall chatrepl"
        ) from error
    if hashlib.sha256(text).hexdigest() != spec.sha256:
        raise EncodingError(f"{spec.name}'s data is damaged; reinstall chatrepl")
    # The hash proves this is OpenAI's file, which lists ranks 0, 1, 2, … in order, one per line.
    tokens = text.split()[0::2]
    return dict(zip(map(binascii.a2b_base64, tokens), range(len(tokens)), strict=True))


def build_encoding(spec: EncodingSpec) -> Any:
    """A `tiktoken.Encoding` built from the shipped ranks (imports tiktoken)."""
    try:
        import tiktoken
    except ImportError as error:
        raise EncodingError("tiktoken is not installed: pip install tiktoken") from error
    ranks = read_ranks(spec)
    encoding = tiktoken.Encoding(
        spec.name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=spec.special_tokens
    )
    # The Encoding has copied the ranks into its Rust core, which is all encoding needs; its
    # Python copy only serves pickling, which chatrepl never does. Emptying it saves 33 MB
    # (o200k_base) of the process's memory.
    ranks.clear()
    return encoding


_loaded: dict[str, Any] = {}
_loading = threading.Lock()


def load_encoding(name: str) -> Any:
    """The `tiktoken.Encoding` called `name`, built once per process. Raises EncodingError."""
    with _loading:
        if name not in _loaded:
            _loaded[name] = build_encoding(SPECS[name])
        return _loaded[name]


def is_loaded(name: str) -> bool:
    """Whether the encoding is already in memory (counting with it will not wait)."""
    return name in _loaded
