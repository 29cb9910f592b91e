"""Context, cost and speed against the fake server: a tiny window kept, summaries requested,
stored and reused, the meter line, the toolbar, /usage, the request log and `chatrepl logs`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from chatrepl.cli.typer_app import app
from tests.harness import lines, run_repl

LONG = "please remember these words for later " * 6


def config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def is_summary_request(body: dict) -> bool:
    return "compress the earlier part of a conversation" in body["messages"][0]["content"]


def test_a_tiny_window_is_kept_and_summaries_are_stored_and_reused(chatrepl_env) -> None:
    config(chatrepl_env.home, "context_window = 600\nreply_reserve = 100\n")
    result = run_repl(lines(*(f"{i}: {LONG}" for i in range(8))))
    bodies = chatrepl_env.server.bodies("/chat/completions")
    summaries = [b for b in bodies if is_summary_request(b)]
    replies = [b for b in bodies if not is_summary_request(b)]
    assert summaries and len(replies) == 8
    assert all(b.get("stream") is not True for b in summaries)  # a separate, whole request
    for body in replies:  # every request left the reply its reserve
        words = sum(len(m["content"].split()) for m in body["messages"] if m.get("content"))
        assert words < 500
    stored = [m for m in result.conversation.messages if m.is_summary]
    assert stored and stored[-1].summary_of
    # Reused: the latest reply request starts with the stored summary, not the old messages.
    last = replies[-1]["messages"]
    assert last[0]["role"] == "system" and last[0]["content"] == stored[-1].content
    assert "summarized " in result.output
    saved = json.loads(next((chatrepl_env.home / "sessions").glob("*.json")).read_text())
    assert any(m.get("summary_of") for m in saved["messages"])
    assert sum(1 for m in saved["messages"] if m["role"] == "user") == 8  # nothing deleted


def test_trim_says_how_many_messages_were_left_out(chatrepl_env) -> None:
    config(chatrepl_env.home, 'context = "trim"\ncontext_window = 500\nreply_reserve = 100\n')
    result = run_repl(lines(*(f"{i}: {LONG}" for i in range(6))))
    assert re.search(r"^\d+ older messages not sent \(context: trim\)$", result.output, re.M)
    first_sent = chatrepl_env.server.bodies("/chat/completions")[-1]["messages"][0]["content"]
    assert not first_sent.startswith("0:")


def test_the_meter_line_shows_cost_for_a_priced_model(chatrepl_env) -> None:
    config(chatrepl_env.home, 'provider = "openai"\n')
    output = run_repl(lines("hello there")).output
    line = next(x for x in output.splitlines() if "completion tokens" in x)
    assert re.fullmatch(
        r"\d+ prompt \+ \d+ completion tokens · \$0\.\d+ · first token \d+\.\d\d s · \d+ tokens/s",
        line.strip(),
    ), line


def test_an_unknown_price_shows_no_cost(chatrepl_env) -> None:
    output = run_repl(lines("hello there")).output  # a local server: no provider's prices
    line = next(x for x in output.splitlines() if "completion tokens" in x)
    assert "$" not in line


def test_toolbar_and_usage(chatrepl_env) -> None:
    config(chatrepl_env.home, 'provider = "openai"\n')
    result = run_repl(lines("one", "two", "/usage"))
    state = result.repl.state
    assert re.fullmatch(r"context \d+% · \$0\.\d+", state.meter_text), state.meter_text
    assert re.search(r"^gpt-4o-mini +2 +\d+ +\d+ +\$0\.\d+ +\d\.\d\d s *$", result.output, re.M)


def test_the_request_log_and_chatrepl_logs(chatrepl_env) -> None:
    config(chatrepl_env.home, 'provider = "openai"\n')
    run_repl(lines("logged question"), flags={"log": True})
    log = chatrepl_env.home / "requests.jsonl"
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["model"] == "gpt-4o-mini" and record["kind"] == "reply"
    assert record["base_url"] == chatrepl_env.server.base_url
    assert record["prompt_tokens"] > 0 and float(record["cost_usd"]) > 0
    assert record["finish_reason"] == "stop" and record["retries"] == 0
    assert "request" not in record and "sk-test" not in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    shown = CliRunner().invoke(app, ["logs"])
    assert shown.exit_code == 0
    assert re.search(r"gpt-4o-mini +reply +\d+\+\d+ +\$0\.\d+", shown.stdout)
    as_json = CliRunner().invoke(app, ["logs", "--json", "-n", "1"]).stdout
    assert json.loads(as_json)["model"] == "gpt-4o-mini"


def test_bodies_are_logged_only_when_asked(chatrepl_env) -> None:
    config(chatrepl_env.home, "log = true\nlog_bodies = true\n")
    CliRunner().invoke(app, ["ask", "what is logged?"])
    text = (chatrepl_env.home / "requests.jsonl").read_text()
    (record,) = [json.loads(line) for line in text.splitlines()]
    assert record["request"] == [{"role": "user", "content": "what is logged?"}]
    assert record["reply"] == "Echo: what is logged?"


def test_an_empty_log_says_how_to_start_one(chatrepl_env) -> None:
    shown = CliRunner().invoke(app, ["logs"])
    assert "no requests logged yet" in shown.stdout and "--log" in shown.stdout


def test_ask_session_summarizes_and_keeps_the_file_whole(chatrepl_env) -> None:
    config(chatrepl_env.home, "context_window = 600\nreply_reserve = 100\n")
    for i in range(8):
        result = CliRunner().invoke(app, ["ask", "--session", "long", f"{i}: {LONG}"])
        assert result.exit_code == 0, result.output
    saved = json.loads((chatrepl_env.home / "sessions" / "long.json").read_text())
    summaries = [m for m in saved["messages"] if m.get("summary_of")]
    assert summaries
    marked = {m["id"] for m in saved["messages"] if m.get("summarized_by")}
    assert set(summaries[-1]["summary_of"]) <= marked | {m["id"] for m in summaries}
    assert sum(1 for m in saved["messages"] if m["role"] == "user") == 8
    last = [b for b in chatrepl_env.server.bodies("/chat/completions") if b.get("stream")][-1]
    assert last["messages"][0]["content"] == summaries[-1]["content"]


def test_a_servers_reported_window_is_used(chatrepl_env) -> None:
    server, flags = chatrepl_env.server, {"model": "test-model"}  # unknown to the price data
    server.model_extras["test-model"] = {"max_model_len": 4096}
    output = run_repl(lines("/context"), flags=flags).output
    assert "window: 4,096 tokens (the server's metadata for test-model)" in output
    server.model_extras["test-model"] = {"meta": {"n_ctx_train": 8192}}
    output = run_repl(lines("/context"), flags=flags).output
    assert "window: 8,192 tokens (the server's metadata for test-model)" in output


def test_a_short_ask_looks_nothing_up(chatrepl_env) -> None:
    result = CliRunner().invoke(app, ["ask", "hi"])
    assert result.exit_code == 0
    assert [r.path for r in chatrepl_env.server.requests] == ["/v1/chat/completions"]


def test_without_metadata_the_published_window_is_used(chatrepl_env) -> None:
    output = run_repl(lines("/context")).output
    assert "window: 128,000 tokens (gpt-4o-mini's published window (genai-prices))" in output


def test_a_resumed_session_is_counted_while_the_prompt_is_up(chatrepl_env) -> None:
    """The toolbar shows a resumed session's context use and cost before its first turn (the
    count runs in the background once the prompt is on screen; Enter waits for it)."""
    config(chatrepl_env.home, 'provider = "openai"\n')
    first = run_repl(lines("one", "two", "/rename counted"))
    assert first.conversation.name == "counted"
    resumed = run_repl(lines(""), resume="counted")
    state = resumed.repl.state
    assert len(state.conversation.messages) == 4  # no turn was taken
    assert re.fullmatch(r"context \d+% · \$0\.\d+", state.meter_text), state.meter_text


def test_loading_another_session_recounts_the_toolbar(chatrepl_env) -> None:
    config(chatrepl_env.home, 'provider = "openai"\n')
    run_repl(lines("one", "/rename other"))
    result = run_repl(lines("first", "second", "/new", "", "/load other", ""))
    state = result.repl.state
    assert state.conversation.name == "other" and len(state.conversation.messages) == 2
    assert re.fullmatch(r"context \d+% · \$0\.\d+", state.meter_text), state.meter_text
    new = run_repl(lines("first", "/new", "")).repl.state
    assert new.meter_text == ""


def test_ctrl_c_while_the_count_is_awaited_offers_the_line_again(chatrepl_env, monkeypatch) -> None:
    from chatrepl.repl.state import ReplState

    def interrupted(self: ReplState) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ReplState, "settle", interrupted)
    result = run_repl(lines("typed while counting"))
    assert result.conversation.messages == []  # nothing was sent
    assert "(cancelled)" in result.output  # and the REPL went on to its next prompt
