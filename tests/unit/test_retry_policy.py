"""The retry policy: which statuses retry, backoff delays, Retry-After parsing; the retry loop and redaction."""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from llmrouter_collect.client import (
    GenerationParams,
    OpenAIClient,
    RequestFailed,
    RetryPolicy,
    create_http_client,
    incurable,
    parse_retry_after,
    retry_delay,
    should_retry,
)
from llmrouter_collect.endpoints import EndpointPool
from llmrouter_collect.errors import EndpointError


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


# --- the retry loop over an httpx.MockTransport (fast; the real server covers the rest) -----------------

KEY = "sk-unit-0123456789abcdef"
GOOD = {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}], "usage": {}}


def run_generate(handler: Callable[[httpx.Request], httpx.Response], max_retries: int = 3) -> tuple[Any, list[str]]:
    """generate() over a MockTransport answering with `handler`; returns its reply or failure, and the retries."""
    retried: list[str] = []

    async def main() -> Any:
        transport = httpx.MockTransport(handler)
        http = create_http_client(
            "http://api.test/v1", api_key=KEY, request_timeout=5, connect_timeout=1, transport=transport
        )
        policy = RetryPolicy(max_retries=max_retries, initial_delay=0.0, max_delay=0.0)
        async with http:
            client = OpenAIClient(http, transport, request_timeout=5)
            pool = EndpointPool([client], policy=policy, on_retry=retried.append)
            try:
                return await pool.generate("hi", GenerationParams(model="m"), 1)
            except (RequestFailed, EndpointError) as failure:
                return failure

    return asyncio.run(main()), retried


def test_malformed_200_is_retried_then_succeeds() -> None:
    answers = iter([{"choices": [{"message": None}]}, {"choices": ["text"]}, {"choices": "x"}, GOOD])
    outcome, retried = run_generate(lambda request: httpx.Response(200, json=next(answers)))
    assert outcome.samples[0].text == "ok" and retried == ["malformed"] * 3


def test_malformed_200_for_good_says_what_was_wrong() -> None:
    outcome, _ = run_generate(lambda request: httpx.Response(200, json={"choices": [{"message": None}]}), 1)
    assert isinstance(outcome, RequestFailed)
    assert (outcome.kind, outcome.status, outcome.retries) == ("malformed", 200, 1)
    assert outcome.message == "malformed reply from chat/completions: choices[0].message is null"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_key_echoed_in_error_bodies_is_redacted(status: int) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(status, json={"error": {"message": f"invalid key {auth} ({KEY[:10]}…)"}})

    outcome, _ = run_generate(echo, max_retries=0)
    assert isinstance(outcome, RequestFailed | EndpointError)
    assert KEY not in str(outcome) and KEY[:8] not in str(outcome) and "invalid key Bearer ***" in str(outcome)


def test_key_in_a_transport_error_is_redacted_and_non_utf8_bodies_are_fine() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"proxy said: bad header Authorization: Bearer {KEY}")

    outcome, retried = run_generate(broken, max_retries=1)
    assert isinstance(outcome, RequestFailed) and outcome.kind == "transport" and retried == ["transport"]
    assert KEY not in outcome.message and "Bearer ***" in outcome.message
    outcome, _ = run_generate(lambda request: httpx.Response(400, content=b"\xff\xfe" + KEY.encode() + b"\x80"), 0)
    assert isinstance(outcome, RequestFailed) and outcome.message == "HTTP 400: \ufffd\ufffd***\ufffd"


def _caused_by(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol."), "url"),
        (httpx.InvalidURL("Invalid port: '99999'"), "url"),
        (_caused_by(httpx.ConnectError("Cannot connect"), ssl.SSLCertVerificationError(1, "self-signed")), "tls"),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls"),
        (httpx.ConnectError("connection refused"), None),
        (httpx.ReadTimeout("timed out"), None),
        (_caused_by(httpx.ConnectError("reset"), ConnectionResetError()), None),
    ],
)
def test_errors_no_retry_can_cure_are_told_apart(error: Exception, expected: str | None) -> None:
    assert incurable(error) == expected
