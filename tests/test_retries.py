"""The pieces that bound and announce the SDK's retries (the whole flow is in test_faults.py)."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field

import pytest

from chatrepl.backends.retries import (
    MAX_RETRY_AFTER,
    RetryWatch,
    clock_after,
    describe_wait,
    retry_after,
)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_milliseconds_then_seconds(headers, seconds) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_reads_an_http_date() -> None:
    date = email.utils.formatdate(time.time() + 600, usegmt=True)
    assert 590 < retry_after({"retry-after": date}) <= 600


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(45, "45 s"), (61, "61 s"), (1200, "20 min"), (3600, "60 min"), (3 * 3600, "3 h")],
)
def test_describe_wait(seconds: float, words: str) -> None:
    assert describe_wait(seconds) == words


def test_clock_after_names_the_day_when_it_is_not_soon() -> None:
    assert len(clock_after(3600)) == len("15:04")
    assert clock_after(3 * 86400).count("-") == 2


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(("wait", "vetoed"), [(MAX_RETRY_AFTER, False), (61, True)])
def test_a_retry_after_over_a_minute_tells_the_sdk_not_to_retry(wait, vetoed) -> None:
    response = FakeResponse(429, {"retry-after": str(wait)})
    RetryWatch(2, print).event_hooks()["response"][0](response)
    assert (response.headers.get("x-should-retry") == "false") is vetoed


def test_a_success_is_never_vetoed() -> None:
    response = FakeResponse(200, {"retry-after": "3600"})
    RetryWatch(2, print).event_hooks()["response"][0](response)
    assert "x-should-retry" not in response.headers
