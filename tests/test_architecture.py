"""The package's layers: imports flow one way, and only backends/ knows backends' names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chatrepl"

# Lowest first: a module may import from its own layer or the layers before it.
LAYERS = (
    ("chatrepl", "chatrepl.errors", "chatrepl.config", "chatrepl.parameters", "chatrepl.files"),
    ("chatrepl.conversation",),
    ("chatrepl.backends",),
    ("chatrepl.engine", "chatrepl.tools", "chatrepl.context"),
    ("chatrepl.ui",),
    ("chatrepl.repl",),
    ("chatrepl.cli", "chatrepl.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best = -1, 0  # (layer, length of the matching prefix)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best[1]:
                best = index, len(prefix)
    return best[0]


def imports(path: Path) -> set[str]:
    """Every chatrepl module imported anywhere in the file, lazy imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chatrepl"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chatrepl"))
    return {name for name in found if (PACKAGE.parent / name.replace(".", "/")).exists()
            or (PACKAGE.parent / (name.replace(".", "/") + ".py")).exists()}  # fmt: skip


def modules() -> dict[str, set[str]]:
    return {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_module_belongs_to_a_layer() -> None:
    assert [name for name in modules() if layer_of(name) < 0] == []


def test_imports_never_go_up_a_layer() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in modules().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    graph = modules()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            assert state.get(target) != 1, " -> ".join([*trail, node, target])
            if target not in state:
                visit(target, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_only_backends_compare_backend_names() -> None:
    from chatrepl.backends.registry import NAMES

    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "backends" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                values = [node.left, *node.comparators]
                names = {v.value for v in values if isinstance(v, ast.Constant)}
                if names & set(NAMES):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
