"""The input history keeps no line that looks like a secret: real-shaped (randomly generated) keys
and tokens of many services are recognised, ordinary lines are kept."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from chatrepl.repl import secret_shapes
from chatrepl.repl.prompt import MAX_HISTORY_ENTRY
from chatrepl.repl.secret_shapes import looks_like_secret
from tests.harness import PASTE_END, PASTE_START, lines, run_repl

RNG = random.Random(7)  # the tokens are made here: no real-looking secret sits in the repository
ALNUM = string.ascii_letters + string.digits


def rnd(length: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(length))


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def jwt() -> str:
    header, payload = {"alg": "HS256", "typ": "JWT"}, {"sub": "1234567890", "name": "Ann"}
    return f"{b64url(header)}.{b64url(payload)}.{rnd(43, ALNUM + '-_')}"


UPPER_DIGITS = string.ascii_uppercase + string.digits
SECRETS = {
    "OpenAI legacy key": "sk-" + rnd(48),
    "OpenAI project key": "sk-proj-" + rnd(40, ALNUM + "-_"),
    "OpenAI key with its marker": "sk-proj-" + rnd(20) + "T3Blbk" + "FJ" + rnd(20),
    "Anthropic key": "sk-ant-api03-" + rnd(60, ALNUM + "-_"),
    "GitHub classic token": "ghp_" + rnd(36),
    "GitHub OAuth token": "gho_" + rnd(36),
    "GitHub fine-grained token": "github_pat_11" + rnd(20, UPPER_DIGITS) + "_" + rnd(59),
    "AWS access key id": "AKIA" + rnd(16, UPPER_DIGITS),
    "AWS secret in code": 'aws_secret_access_key = "' + rnd(40, ALNUM + "/+") + '"',
    "Slack bot token": f"xoxb-{rnd(12, string.digits)}-{rnd(13, string.digits)}-{rnd(24)}",
    "Slack webhook": f"https://hooks.slack.com/services/T{rnd(8)}/B{rnd(8)}/{rnd(24)}",
    "Stripe live key": "sk_" + "live_" + rnd(24),
    "Stripe restricted key": "rk_" + "live_" + rnd(24),
    "Google API key": "AIza" + rnd(35, ALNUM + "-_"),
    "Hugging Face token": "hf_" + rnd(34),
    "GitLab token": "glpat-" + rnd(20),
    "npm token": "npm_" + rnd(36),
    "PyPI token": "pypi-AgEIcHlwaS5vcmc" + rnd(60),
    "PEM private key": "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
    "JWT": jwt(),
    "password in a URL": "postgres://admin:" + rnd(12) + "@db.example.com/app",
    "quoted password assignment": 'password = "' + rnd(12) + '"',
    "token of an unknown service": rnd(40),
}
ORDINARY = {
    "a long sentence": "Please explain how the Python garbage collector handles reference cycles "
    "in long-running servers, and when I should call gc.collect() myself.",
    "a git SHA": "what changed in commit 3f786850e387550fdab836ed7e6dc881de23001b?",
    "a sha256": "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "a UUID": "request 123e4567-e89b-12d3-a456-426614174000 failed",
    "a URL": "see https://github.com/openai/openai-python/blob/main/README.md#streaming",
    "a long identifier": "def test_input_history_persists_and_skips_secrets(env) -> None:",
    "an IP address": "why can I ping 8.8.8.8 but not 192.168.1.20?",
    "a question about passwords": "what is a good password manager?",
    "scikit-learn": "compare sk-learn and scikit-learn pipelines",
    "a path": "/home/user/projects/chatrepl/tests/test_cli.py line 120",
    "a slash-command": "/save refactoring-notes-2026",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_shapes_are_recognised(kind: str) -> None:
    secret = SECRETS[kind]
    assert looks_like_secret(secret)
    assert looks_like_secret(f"here it is: {secret} (keep it safe)")


@pytest.mark.parametrize("kind", sorted(ORDINARY))
def test_ordinary_lines_are_not_secrets(kind: str) -> None:
    assert not looks_like_secret(ORDINARY[kind])


def test_no_token_is_ever_verified_online(monkeypatch: pytest.MonkeyPatch) -> None:
    from detect_secrets.plugins.base import BasePlugin

    def verify(*args: object, **kwargs: object) -> None:
        raise AssertionError("a token was sent to its service to be checked")

    for plugin in {type(detector) for detector in secret_shapes._detectors()} | {BasePlugin}:
        monkeypatch.setattr(plugin, "verify", verify)
    assert all(looks_like_secret(secret) for secret in SECRETS.values())


def test_an_unloadable_token_list_keeps_every_line_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> tuple:
        raise ImportError("No module named 'detect_secrets'")

    monkeypatch.setattr(secret_shapes, "_load_detectors", broken)
    assert looks_like_secret("an ordinary line")


def test_the_history_file_keeps_ordinary_lines_and_drops_secrets(chatrepl_env) -> None:
    typed = [*ORDINARY.values(), *SECRETS.values()]
    run_repl(lines(*(text for text in typed if not text.startswith("/"))))
    history = (chatrepl_env.home / "history").read_text()
    for kind, text in ORDINARY.items():
        assert text in history or text.startswith("/"), kind
    for kind, secret in SECRETS.items():
        assert secret not in history, kind


def test_a_huge_paste_is_not_kept_in_the_history(chatrepl_env) -> None:
    chatrepl_env.server.reply = "ok"
    big = "a line of a long log\n" * (MAX_HISTORY_ENTRY // 20)
    result = run_repl(lines("small line") + PASTE_START + big + PASTE_END + "\r")
    assert result.conversation.messages[2].content == big  # sent all the same
    history = (chatrepl_env.home / "history").read_text()
    assert "small line" in history and "a line of a long log" not in history
    strings = result.repl.reader.session.history.get_strings()
    assert all(len(text) <= MAX_HISTORY_ENTRY for text in strings)
