"""Validate request bodies against OpenAI's official OpenAPI spec.

By default the request schemas vendored in ``tests/openapi/request_schemas.json`` are used (see
``tests/openapi/README.md``); ``$CHATREPL_OPENAPI_SPEC`` may point at a full spec file instead.
Both keep the schemas under ``components/schemas``.

The spec is OpenAPI 3.1 but still carries OpenAPI 3.0 idioms (``nullable: true``, boolean
``exclusiveMinimum``). They are translated into plain JSON Schema 2020-12 once, and one
``Draft202012Validator`` per request schema is cached, so validating every request is cheap.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

# The request schemas extracted from the official spec by tests/openapi/extract.py.
DEFAULT_SPEC = Path(__file__).resolve().parent / "openapi" / "request_schemas.json"
SPEC_ENV = "CHATREPL_OPENAPI_SPEC"
SPEC_URI = "urn:openai:openapi"

REQUEST_SCHEMAS = {
    "/chat/completions": "CreateChatCompletionRequest",
    "/completions": "CreateCompletionRequest",
}

# Keys whose values are data, not schemas: never rewrite them.
_DATA_KEYS = frozenset({"enum", "const", "default", "example", "examples", "x-oaiMeta"})


def spec_path() -> Path:
    """Return the schema file location (``$CHATREPL_OPENAPI_SPEC`` overrides the vendored one)."""
    return Path(os.environ.get(SPEC_ENV, DEFAULT_SPEC))


def _fix_exclusive(schema: dict[str, Any], key: str, bound: str) -> None:
    """Turn an OpenAPI 3.0 boolean ``exclusiveMinimum``/``Maximum`` into the 2020-12 number."""
    flag = schema.get(key)
    if not isinstance(flag, bool):
        return
    del schema[key]
    if flag and bound in schema:
        schema[key] = schema.pop(bound)


def translate(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 idioms in a schema tree into JSON Schema 2020-12."""
    if isinstance(node, list):
        return [translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: v if k in _DATA_KEYS else translate(v) for k, v in node.items()}
    _fix_exclusive(out, "exclusiveMinimum", "minimum")
    _fix_exclusive(out, "exclusiveMaximum", "maximum")
    nullable = out.get("nullable")
    if not isinstance(nullable, bool):
        return out  # absent, or a property that happens to be called "nullable"
    del out["nullable"]
    return {"anyOf": [out, {"type": "null"}]} if nullable else out


@cache
def _registry() -> Registry:
    """Load the schema file once and register its translated components under ``SPEC_URI``."""
    spec = json.loads(spec_path().read_text(encoding="utf-8"))
    document = {"components": {"schemas": translate(spec["components"]["schemas"])}}
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(document))


@cache
def validator_for(schema_name: str) -> Draft202012Validator:
    """Return a cached validator for ``#/components/schemas/<schema_name>``."""
    ref = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=_registry())


def schema_name_for(path: str) -> str | None:
    """Map a request path (``/v1/chat/completions``, Azure deployment paths…) to a schema name."""
    path = path.split("?", 1)[0].rstrip("/")
    # Dict order matters: "/chat/completions" must be tried before "/completions".
    return next((name for suffix, name in REQUEST_SCHEMAS.items() if path.endswith(suffix)), None)


def validate_request(path: str, body: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``body`` is not a valid request for ``path``."""
    name = schema_name_for(path)
    if name is not None:
        validator_for(name).validate(body)
