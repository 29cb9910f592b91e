"""Vendor the request schemas the tests validate against, from OpenAI's OpenAPI spec.

Usage: python tests/openapi/extract.py /path/to/openapi.json

Writes ``request_schemas.json`` beside this file: the request schemas named in
``tests.openapi_schema.REQUEST_SCHEMAS`` and every schema they ``$ref``, transitively, kept
verbatim under ``components/schemas`` so ``#/components/schemas/NAME`` references still resolve,
plus an ``x-vendored`` header saying where they came from.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.openapi_schema import REQUEST_SCHEMAS

OUTPUT = Path(__file__).with_name("request_schemas.json")
ROOTS = tuple(REQUEST_SCHEMAS.values())
PREFIX = "#/components/schemas/"


def _refs(node: Any) -> Iterator[str]:
    """Yield every ``$ref`` value in a schema tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def extract_schemas(spec: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    """Return ``roots`` and every component schema they reference, transitively, by name."""
    schemas = spec["components"]["schemas"]
    kept: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept[name] = schemas[name]
        for ref in _refs(kept[name]):
            if not ref.startswith(PREFIX):
                raise ValueError(f"{name}: $ref outside {PREFIX}: {ref}")
            pending.append(ref.removeprefix(PREFIX))
    return dict(sorted(kept.items()))


def _git(directory: Path, *args: str) -> str:
    """Output of a git command run in ``directory``; empty if git fails or is missing."""
    try:
        run = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True)
    except OSError:
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def _upstream(spec_file: Path) -> dict[str, str]:
    """The git commit (and remote) that last changed the spec, and READMEs beside it, if any."""
    found: dict[str, str] = {}
    commit = _git(spec_file.parent, "log", "-1", "--format=%H", "--", spec_file.name)
    remote = _git(spec_file.parent, "remote", "get-url", "origin") if commit else ""
    found |= {key: value for key, value in (("commit", commit), ("remote", remote)) if value}
    readmes = sorted(p.name for p in spec_file.parent.glob("README*"))
    if readmes:
        found["readme"] = ", ".join(readmes)
    return found


def build(spec_file: Path) -> dict[str, Any]:
    """Return the vendored document for the spec at ``spec_file``."""
    raw = spec_file.read_bytes()
    spec = json.loads(raw)
    header: dict[str, Any] = {
        "source": "OpenAI's OpenAPI spec",
        "source_file": str(spec_file.resolve()),
        "info_version": spec["info"]["version"],
        "sha256": hashlib.sha256(raw).hexdigest(),
        "date": datetime.date.today().isoformat(),
        "roots": list(ROOTS),
        "regenerate": "python tests/openapi/extract.py /path/to/openapi.json",
    }
    upstream = _upstream(spec_file.resolve())
    if upstream:
        header["upstream"] = upstream
    return {"x-vendored": header, "components": {"schemas": extract_schemas(spec)}}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    document = build(Path(argv[0]))
    OUTPUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    count = len(document["components"]["schemas"])
    print(f"wrote {count} schemas, {OUTPUT.stat().st_size} bytes, to {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
