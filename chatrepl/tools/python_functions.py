"""Python functions as tools: every public function of a file with type hints and a docstring.

The JSON Schema of its arguments comes from the signature: `str`, `int`, `float`, `bool`,
`list[...]`, `dict`, `Literal[...]`, `X | None`, with defaults making an argument optional.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatrepl.backends.base import ToolSpec
from chatrepl.errors import ConfigError
from chatrepl.tools.toolbox import Tool

_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def load_functions(path: Path) -> list[Tool]:
    """The tools a Python file defines; ConfigError when it cannot be loaded."""
    module = _import_file(path)
    tools = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_") or function.__module__ != module.__name__:
            continue
        if not inspect.getdoc(function):
            continue
        tools.append(function_tool(function, f"python {path.name}"))
    return tools


def function_tool(function: Callable[..., Any], source: str) -> Tool:
    """A Tool calling `function` with the model's arguments as keywords."""
    spec = ToolSpec(function.__name__, _description(function), arguments_schema(function))
    return Tool(spec, lambda arguments: function(**arguments), source)


def arguments_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of a function's keyword arguments."""
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    required = []
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        properties[name] = type_schema(hints.get(name, str))
        if parameter.default is parameter.empty:
            required.append(name)
        else:
            properties[name]["default"] = parameter.default
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation (unknown types become strings)."""
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset):
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        options = [type_schema(arg) for arg in args if arg is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "string"}


def _description(function: Callable[..., Any]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _import_file(path: Path) -> types.ModuleType:
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"functions file not found: {path}")
    name = f"chatrepl_functions_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(name, None)
        raise ConfigError(f"cannot load {path}: {type(error).__name__}: {error}") from error
    return module
