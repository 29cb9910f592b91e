"""`chatrepl ask`: one prompt, one reply, then exit. Plain unbuffered text when piped."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import Console

from chatrepl import view
from chatrepl.backends.base import Backend
from chatrepl.config import Settings
from chatrepl.conversation import Conversation
from chatrepl.render import make_renderer
from chatrepl.sessions import SessionStore
from chatrepl.turns import add_user_message, respond_turn, stream_turn


@dataclass(frozen=True)
class AskOptions:
    """What `ask` was told on the command line."""

    prompt: str
    stream: bool = True
    json_output: bool = False
    markdown: bool = True


def compose_prompt(words: list[str], piped: str | None) -> str:
    """Piped stdin first, then the prompt words: `cat notes.txt | chatrepl ask summarize`."""
    prompt = " ".join(words).strip()
    piped = (piped or "").strip()
    return f"{piped}\n\n{prompt}" if piped and prompt else piped or prompt


def run_ask(
    options: AskOptions,
    conversation: Conversation,
    settings: Settings,
    backend: Backend,
    out: Console,
    err: Console,
    store: SessionStore | None = None,
) -> None:
    """Answer one prompt; save the turn when the conversation is a named session."""
    add_user_message(conversation, options.prompt, backend)
    if options.json_output or not options.stream:
        reply = respond_turn(conversation, settings, backend)
        if options.json_output:
            out.file.write(json.dumps(reply.raw, indent=2, ensure_ascii=False) + "\n")
        else:
            _print_whole(out, reply.text, options.markdown and conversation.mode == "chat")
    else:
        markdown = options.markdown and conversation.mode == "chat"
        renderer = make_renderer(out, markdown=markdown, code_theme=settings.code_theme)
        with renderer:
            stream_turn(conversation, settings, backend, renderer)
    if store is not None:
        store.save(conversation)
    _footer(err, conversation)


def _print_whole(out: Console, text: str, markdown: bool) -> None:
    if markdown:
        from rich.markdown import Markdown

        out.print(Markdown(text))
    else:
        out.file.write(text if text.endswith("\n") else text + "\n")
        out.file.flush()


def _footer(err: Console, conversation: Conversation) -> None:
    reply = conversation.messages[-1]
    if reply.finish_reason == "length" or (reply.usage and err.is_terminal):
        view.reply_footer(err, reply)
