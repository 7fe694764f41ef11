"""The pure retry policy: which statuses retry, backoff delays, Retry-After parsing."""

from __future__ import annotations

import email.utils
import random

import pytest

from llmrouter_collect.client import RetryPolicy, parse_retry_after, retry_delay, should_retry


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (422, False),
        (200, False),
    ],
)
def test_should_retry(status: int, retry: bool) -> None:
    assert should_retry(status) is retry


def test_backoff_doubles_with_jitter_and_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=10.0, rng=random.Random(0))
    for retry, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        delays = [retry_delay(retry, None, policy) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert max(delays) - min(delays) > base * 0.2  # jittered, not constant


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=30.0)
    assert retry_delay(0, 7.0, policy) == 7.0
    assert retry_delay(5, 0.0, policy) == 0.0
    assert retry_delay(0, 3600.0, policy) == 30.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == pytest.approx(30.0)
