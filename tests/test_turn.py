"""The turn transaction on the scripted backend: no HTTP, every path of a turn."""

from __future__ import annotations

import pytest

from chatrepl.backends.scripted import ScriptedBackend, Step, chat_requests
from chatrepl.config import Settings
from chatrepl.conversation.conversation import Conversation
from chatrepl.conversation.messages import Message, ToolCall, Usage
from chatrepl.engine.turn import NothingToRetry, Turn, TurnRunner
from chatrepl.errors import BackendError


class Collect:
    """A sink that keeps what it is fed."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def feed(self, text: str) -> None:
        self.parts.append(text)


class EchoTools:
    """A tool runner that answers every call with its name and arguments."""

    tools = ()

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []

    def run(self, call: ToolCall) -> str:
        self.calls.append(call)
        return f"ran {call.name} with {call.arguments}"

    def end_of_reply(self) -> bool:
        return False


def runner(*steps: Step | str, conversation: Conversation | None = None, **options) -> TurnRunner:
    convo = conversation or Conversation(chat_model="chat-m", completion_model="comp-m")
    backend = ScriptedBackend().then(*steps)
    return TurnRunner(convo, backend, Settings(), **options)


def exchange(run: TurnRunner, text: str, mode: str = "chat"):
    return run.take(Turn(text, mode), Collect())  # type: ignore[arg-type]


def test_a_turn_records_the_question_and_the_streamed_reply() -> None:
    run = runner(Step.text("hello there", usage=Usage(5, 2, 7)))
    sink = Collect()
    outcome = run.take(Turn("hi", "chat"), sink)
    assert sink.parts == ["hello ", "there"]
    user, reply = run.conversation.messages
    assert (user.role, user.content, user.model) == ("user", "hi", "chat-m")
    assert (reply.content, reply.finish_reason, reply.usage) == (
        "hello there",
        "stop",
        Usage(5, 2, 7),
    )
    assert outcome.added == [user, reply] and not outcome.interrupted


def test_the_question_is_checkpointed_before_anything_is_sent() -> None:
    seen: list[list[str]] = []
    run = runner("ok")
    run.checkpoint = lambda: seen.append([m.content for m in run.conversation.messages])
    exchange(run, "saved first")
    assert seen == [["saved first"]]


def test_a_failure_leaves_the_conversation_exactly_as_it_was() -> None:
    run = runner("first answer", Step.error("server down"))
    exchange(run, "one")
    before = list(run.conversation.messages)
    updated = run.conversation.updated
    with pytest.raises(BackendError, match="server down"):
        exchange(run, "two")
    assert run.conversation.messages == before
    assert run.conversation.updated == updated


def test_ctrl_c_before_the_first_token_undoes_the_turn() -> None:
    run = runner(Step(chunks=("never",), interrupt_after=0))
    with pytest.raises(KeyboardInterrupt):
        exchange(run, "question")
    assert run.conversation.messages == []  # no empty assistant message is saved


def test_ctrl_c_mid_reply_keeps_the_partial_reply_marked_interrupted() -> None:
    run = runner(Step(chunks=("part ", "of ", "it"), interrupt_after=2))
    outcome = exchange(run, "question")
    assert outcome.interrupted
    assert outcome.reply.content == "part of " and outcome.reply.interrupted


def test_a_failure_mid_reply_keeps_the_partial_reply_and_reports_the_error() -> None:
    run = runner(Step(chunks=("half ", "done"), fail="connection reset", fail_after=1))
    outcome = exchange(run, "question")
    assert isinstance(outcome.error, BackendError)
    assert outcome.reply.content == "half " and outcome.reply.interrupted


def test_chat_history_and_system_prompt_go_with_each_request() -> None:
    convo = Conversation(chat_model="m", completion_model="c", system="be brief")
    run = runner("a1", "a2", conversation=convo)
    exchange(run, "q1")
    exchange(run, "q2")
    last = chat_requests(run.backend)[-1]  # type: ignore[arg-type]
    assert last.system == "be brief"
    assert [(m.role, m.content) for m in last.messages] == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
    ]


def test_completion_turns_send_only_the_prompt_and_are_not_chat_history() -> None:
    convo = Conversation(chat_model="m", completion_model="c", suffix="END")
    run = runner(" continued", "chat answer", conversation=convo)
    exchange(run, "def f(", mode="complete")
    request = run.backend.requests[0]  # type: ignore[attr-defined]
    assert (request.prompt, request.suffix, request.model) == ("def f(", "END", "c")
    assert request.params.max_tokens == 256  # completion servers default to 16: always sent
    exchange(run, "hello")
    chat = chat_requests(run.backend)[-1]  # type: ignore[arg-type]
    assert [m.content for m in chat.messages] == ["hello"]


def test_retry_keeps_the_old_reply_until_the_new_one_arrives() -> None:
    run = runner("old answer", "new answer")
    exchange(run, "question")
    outcome = run.retry(Collect())
    assert [m.content for m in run.conversation.messages] == ["question", "new answer"]
    assert outcome.reply.content == "new answer"
    # The retried request is the same question, without the old answer in it.
    assert [m.content for m in chat_requests(run.backend)[-1].messages] == ["question"]  # type: ignore[arg-type]


def test_a_failed_retry_restores_the_previous_reply() -> None:
    run = runner("first", "keep me", Step.error("server down"))
    exchange(run, "q1")
    exchange(run, "q2")
    before = [(m.id, m.content) for m in run.conversation.messages]
    with pytest.raises(BackendError):
        run.retry(Collect())
    assert [(m.id, m.content) for m in run.conversation.messages] == before


def test_a_retry_interrupted_before_its_first_token_restores_the_previous_reply() -> None:
    run = runner("keep me", Step(chunks=("x",), interrupt_after=0))
    exchange(run, "q")
    with pytest.raises(KeyboardInterrupt):
        run.retry(Collect())
    assert [m.content for m in run.conversation.messages] == ["q", "keep me"]


def test_a_retry_does_not_checkpoint_before_the_new_reply() -> None:
    run = runner("old", "new")
    exchange(run, "q")
    saves: list[int] = []
    run.checkpoint = lambda: saves.append(1)
    run.retry(Collect())
    assert saves == []


def test_retry_repeats_the_last_turn_in_the_mode_it_was_made() -> None:
    run = runner(" 42", " 43")
    exchange(run, "The answer is", mode="complete")
    run.conversation.mode = "chat"  # the person switched with /chat
    run.retry(Collect())
    assert [type(r).__name__ for r in run.backend.requests] == [  # type: ignore[attr-defined]
        "CompletionRequest",
        "CompletionRequest",
    ]
    assert run.conversation.messages[-1].mode == "complete"


def test_retry_with_another_model() -> None:
    run = runner("a", "b")
    exchange(run, "q")
    run.retry(Collect(), model="other-model")
    assert run.backend.requests[-1].model == "other-model"  # type: ignore[attr-defined]
    assert run.conversation.messages[-1].model == "other-model"


def test_nothing_to_retry() -> None:
    with pytest.raises(NothingToRetry):
        runner().retry(Collect())


def test_tool_calls_run_and_the_model_continues() -> None:
    call = ToolCall("call_1", "lookup", '{"q": "x"}')
    tools = EchoTools()
    run = runner(Step(tool_calls=(call,)), "final answer", tools=tools)
    outcome = exchange(run, "use a tool")
    roles = [m.role for m in run.conversation.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    result = run.conversation.messages[2]
    assert (result.tool_call_id, result.name) == ("call_1", "lookup")
    assert result.content == 'ran lookup with {"q": "x"}'
    assert tools.calls == [call]
    assert outcome.reply.content == "final answer"
    second = chat_requests(run.backend)[-1]  # type: ignore[arg-type]
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]


def test_the_tool_loop_stops_at_the_step_limit() -> None:
    call = ToolCall("c", "again", "{}")
    run = runner(*[Step(tool_calls=(call,)) for _ in range(5)], tools=EchoTools(), max_steps=3)
    outcome = exchange(run, "loop forever")
    assert outcome.step_limit_reached
    assert len(run.backend.requests) == 3  # type: ignore[attr-defined]


def test_tool_calls_without_a_runner_end_the_turn() -> None:
    run = runner(Step(tool_calls=(ToolCall("c", "x", "{}"),)))
    outcome = exchange(run, "q")
    assert outcome.reply.tool_calls[0].name == "x"
    assert len(run.backend.requests) == 1  # type: ignore[attr-defined]


def test_a_whole_reply_when_not_streaming() -> None:
    run = runner(Step.text("all at once", usage=Usage(1, 3, 4)), streaming=False)
    outcome = exchange(run, "q")
    assert outcome.reply.content == "all at once" and outcome.reply.usage == Usage(1, 3, 4)
    assert outcome.raw == {"scripted": True}


def test_messages_added_by_hand_before_are_kept_on_failure() -> None:
    convo = Conversation(chat_model="m")
    convo.add(Message("user", "earlier"))
    run = runner(Step.error("boom"), conversation=convo)
    with pytest.raises(BackendError):
        exchange(run, "now")
    assert [m.content for m in convo.messages] == ["earlier"]


def test_extend_continues_a_cut_reply_into_the_same_message() -> None:
    run = runner(Step.text("The first half", finish_reason="length"), Step.text(" and the rest."))
    exchange(run, "tell me")
    outcome = run.extend(Collect())
    (_user, reply) = run.conversation.messages
    assert reply.content == "The first half and the rest." and reply.finish_reason == "stop"
    assert outcome.reply is reply
    request = chat_requests(run.backend)[-1]  # type: ignore[arg-type]
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[-1].content.startswith("Continue your last reply exactly")


def test_extend_in_completion_mode_sends_the_text_so_far() -> None:
    run = runner(Step.text(" once upon", finish_reason="length"), Step.text(" a time"))
    exchange(run, "Story:", mode="complete")
    run.extend(Collect())
    assert run.backend.requests[-1].prompt == "Story: once upon"  # type: ignore[attr-defined]
    assert run.conversation.messages[-1].content == " once upon a time"


def test_a_failed_extend_changes_nothing() -> None:
    run = runner(Step.text("half", finish_reason="length"), Step.error("down"))
    exchange(run, "q")
    with pytest.raises(BackendError):
        run.extend(Collect())
    assert run.conversation.messages[-1].content == "half"
