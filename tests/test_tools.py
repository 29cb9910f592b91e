"""Tools: schemas from Python functions, the Toolbox's safety rules, the approval dialogue,
the built-ins and the MCP bridge (no model involved here; the loop is in test_tool_loop.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chatrepl.config import Settings
from chatrepl.conversation.messages import ToolCall
from chatrepl.errors import ConfigError
from chatrepl.tools.approval import ask_approval
from chatrepl.tools.builtins import builtin_tools, list_directory, read_file, shell_allowed
from chatrepl.tools.python_functions import arguments_schema, load_functions
from chatrepl.tools.setup import build_toolbox, enable
from chatrepl.tools.toolbox import DECLINED, SKIPPED, Approval, Toolbox, call_line

FILES = Path(__file__).parent / "tool_files"
FUNCTIONS = FILES / "functions.py"


def toolbox(approve=None, **options) -> tuple[Toolbox, list[str]]:
    lines: list[str] = []
    box = Toolbox(notify=lines.append, approve=approve, **options)
    for tool in load_functions(FUNCTIONS):
        box.add(tool)
    return box, lines


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(f"id-{name}", name, json.dumps(arguments))


def test_public_documented_functions_become_tools_with_schemas() -> None:
    tools = {tool.name: tool for tool in load_functions(FUNCTIONS)}
    assert sorted(tools) == ["add", "big", "explode", "greet"]  # no undocumented, no private
    assert tools["add"].spec.description == "Add two integers."
    assert tools["add"].spec.parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 2}},
        "required": ["a"],
    }
    greet = tools["greet"].spec.parameters["properties"]
    assert greet["style"] == {"enum": ["formal", "casual"], "default": "casual"}
    assert greet["tags"] == {"type": "array", "items": {"type": "string"}, "default": None}
    assert tools["add"].source == "python functions.py"


def test_schema_of_other_types() -> None:
    def f(x: float, flag: bool, data: dict, maybe: int | None = None) -> None:
        """Doc."""

    properties = arguments_schema(f)["properties"]
    assert properties["x"] == {"type": "number"} and properties["flag"] == {"type": "boolean"}
    assert properties["data"] == {"type": "object"}
    assert properties["maybe"] == {"type": "integer", "default": None}


def test_a_broken_functions_file_is_one_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(ConfigError, match=r"cannot load .*broken\.py: SyntaxError"):
        load_functions(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_functions(tmp_path / "missing.py")


def test_an_allowed_call_runs_and_says_so_in_one_line() -> None:
    box, lines = toolbox(auto_all=True)
    assert box.run(call("add", a=2, b=3)) == "5"
    assert lines == ["tool add(a=2, b=3)"]


def test_unknown_tools_and_malformed_arguments_are_results_the_model_reads() -> None:
    box, lines = toolbox(auto_all=True)
    assert box.run(call("nope")).startswith("error: unknown tool 'nope'; available: add, big")
    bad = ToolCall("x", "add", '{"a": 1,')
    assert box.run(bad).startswith("error: arguments are not valid JSON")
    assert box.run(ToolCall("y", "add", "[1, 2]")) == (
        "error: arguments must be a JSON object, not list"
    )
    assert len(lines) == 3


def test_exceptions_in_a_tool_become_error_results() -> None:
    box, lines = toolbox(auto_all=True)
    assert box.run(call("explode", reason="why")) == "error: RuntimeError: boom: why"
    assert lines[-1] == "explode failed: RuntimeError: boom: why"
    assert box.run(call("add", a="x", c=1)).startswith("error: TypeError")


def test_large_results_are_cut_with_a_note() -> None:
    box, _ = toolbox(auto_all=True, result_limit=100)
    result = box.run(call("big", size=5000))
    assert result.startswith("x" * 100)
    assert result.endswith("[result cut: 5,000 characters, the first 100 shown]")


def test_nothing_unsafe_runs_without_someone_to_ask() -> None:
    box, lines = toolbox()
    assert box.run(call("add", a=1)) == DECLINED
    assert lines[-2:] == [
        "add: refused (no terminal to confirm; --yes-tools allows it)",
        "add: not run; the model is told you declined",
    ]
    assert box.run(call("add", a=2)) == SKIPPED  # the rest of that reply is not run either
    assert box.end_of_reply() is True
    assert box.end_of_reply() is False  # the next reply starts afresh


def test_yes_no_always_and_edit() -> None:
    answers: list[Approval] = [
        Approval("no"),
        Approval("yes", '{"a": 10, "b": 1}'),
        Approval("always"),
    ]
    asked: list[str] = []

    def approve(tool, tool_call):
        asked.append(tool_call.arguments)
        return answers.pop(0)

    box, _ = toolbox(approve=approve)
    assert box.run(call("add", a=1)) == DECLINED
    assert box.end_of_reply()
    edited = call("add", a=1)
    assert box.run(edited) == "11"
    assert edited.arguments == '{"a": 10, "b": 1}'  # the record shows what really ran
    assert box.run(call("add", a=2)) == "4"  # "always" ...
    assert box.run(call("add", a=3)) == "5"  # ... is not asked again
    assert len(asked) == 3


def test_the_approval_dialogue() -> None:
    tool = load_functions(FUNCTIONS)[0]

    def dialogue(*typed: str) -> tuple[Approval, list[str]]:
        queue, told = list(typed), []

        def read_line(question: str, default: str) -> str:
            if not queue:
                raise EOFError
            return queue.pop(0)

        return ask_approval(read_line, told.append, tool, call(tool.name, a=1)), told

    assert dialogue("y")[0] == Approval("yes")
    assert dialogue("NO")[0] == Approval("no")
    assert dialogue("")[0] == Approval("no")  # Enter alone declines
    assert dialogue()[0] == Approval("no")  # end of input declines
    assert dialogue("a")[0] == Approval("always")
    approval, told = dialogue("maybe", "y")
    assert approval == Approval("yes") and told == ["answer y, n, e or a"]
    approval, told = dialogue("e", "not json", "e", '{"a": 5}')
    assert approval == Approval("yes", '{"a": 5}')
    assert told[0].startswith("arguments are not valid JSON")


def test_call_lines_are_one_short_line() -> None:
    assert call_line("read_file", {"path": "notes.md"}) == 'tool read_file(path="notes.md")'
    long = call_line("f", {"x": "y" * 500})
    assert len(long) == 200 and long.endswith("…")


def test_builtins_are_off_until_enabled_and_only_reads_are_safe(tmp_path: Path) -> None:
    box = build_toolbox(Settings(), print, None)
    assert box.tools == () and not box.active
    box = build_toolbox(Settings(tools=("read_file", "run_shell")), print, None)
    assert [spec.name for spec in box.tools] == ["read_file", "run_shell"]
    safety = {tool.name: tool.safe for tool in builtin_tools()}
    assert safety == {
        "read_file": True,
        "list_directory": True,
        "run_shell": False,
        "fetch_url": False,
    }
    with pytest.raises(ConfigError, match=r"unknown tool 'rm'.*read_file"):
        enable(box, "rm")


def test_read_file_and_list_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# hi\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    assert read_file({"path": str(tmp_path / "notes.md")}) == "# hi\n"
    assert read_file({"path": str(tmp_path / "blob.bin")}).endswith("is a binary file")
    assert list_directory({"path": str(tmp_path)}) == "blob.bin\nnotes.md\nsub/"


def test_run_shell_runs_allow_listed_commands_without_asking() -> None:
    prefixes = ("git status", "ls")
    assert shell_allowed("git status -s", prefixes)
    assert shell_allowed("ls", prefixes)
    assert not shell_allowed("git statusx", prefixes)
    assert not shell_allowed("git status; rm -rf ~", prefixes)
    assert not shell_allowed("ls $(rm -rf ~)", prefixes)
    assert not shell_allowed("ls > /etc/passwd", prefixes)
    box = build_toolbox(Settings(tools=("run_shell",), shell_allow=("echo",)), print, None)
    assert box.run(ToolCall("1", "run_shell", '{"command": "echo hello"}')) == (
        "exit status 0\nhello\n"
    )
    assert box.run(ToolCall("2", "run_shell", '{"command": "rm -rf /tmp/x"}')) == DECLINED


def test_mcp_tools_are_listed_and_called_through_the_sdk() -> None:
    pytest.importorskip("mcp")
    command = [sys.executable, str(FILES / "mcp_server.py")]
    lines: list[str] = []
    box = build_toolbox(Settings(mcp={"demo": {"command": command}}), lines.append, None)
    try:
        assert box.active and box.sources  # configured, not started yet
        assert [spec.name for spec in box.tools] == ["count_words", "shout"]
        assert box.available["shout"].source == "MCP server demo"
        box.auto_all = True
        assert box.run(call("shout", text="quiet please")) == "QUIET PLEASE"
        assert box.run(call("count_words", text="one two three")) == "3"
    finally:
        box.close()


def test_an_mcp_server_that_cannot_start_is_one_line() -> None:
    lines: list[str] = []
    box = build_toolbox(
        Settings(mcp={"gone": {"command": ["/no/such/server"]}}), lines.append, None
    )
    assert box.tools == ()
    assert lines == [
        "tools of MCP server gone unavailable: cannot start: FileNotFoundError: "
        "[Errno 2] No such file or directory: '/no/such/server'"
    ]


def test_bad_mcp_tables_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"\[mcp.x\] needs command"):
        build_toolbox(Settings(mcp={"x": {"env": {}}}), print, None)


def test_unused_tools_import_nothing_of_theirs(chatrepl_env) -> None:
    import subprocess

    probe = (
        "import sys\n"
        "from rich.console import Console\n"
        "from chatrepl.cli.build import build_repl\n"
        "from chatrepl.config import Overrides\n"
        "build_repl(Overrides(), None, False, Console())\n"
        "print([m for m in ('mcp', 'chatrepl.tools.mcp_servers',"
        " 'chatrepl.tools.python_functions') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_fetch_url_returns_a_pages_text(chatrepl_env) -> None:
    from chatrepl.tools.builtins import fetch_url

    # The fake server's /models answers JSON; an HTML page is read from a local file server.
    text = fetch_url({"url": chatrepl_env.server.base_url + "/models"})
    assert '"gpt-4o-mini"' in text
    assert (
        fetch_url({"url": "file:///etc/passwd"}) == "error: only http and https URLs can be fetched"
    )
