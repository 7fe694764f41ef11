"""The endpoint pool's choices (where, failover, health, caps) over an HTTP edge answered in-process."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from llmrouter_collect.client import (
    GenerationParams,
    OpenAIClient,
    RequestFailed,
    RetryPolicy,
    create_http_client,
)
from llmrouter_collect.endpoints import FAILURES_BEFORE_OUT, EndpointPool

GOOD = {"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}], "usage": {}}
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def run_pool(
    behaviours: dict[str, Handler],
    body: Callable[[EndpointPool], Awaitable[object]],
    *,
    max_retries: int = 3,
    endpoint_concurrency: int | None = None,
) -> tuple[object, EndpointPool, list[str]]:
    """A pool over one http client whose transport answers each host with its handler; runs `body(pool)`."""
    retried: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        return await behaviours[request.url.host](request)

    async def main() -> tuple[object, EndpointPool]:
        transport = httpx.MockTransport(handle)
        http = create_http_client(
            "http://a/v1", api_key=None, request_timeout=5, connect_timeout=1, transport=transport
        )
        clients = [
            OpenAIClient(http, transport, request_timeout=5, base_url=f"http://{host}/v1") for host in behaviours
        ]
        policy = RetryPolicy(max_retries=max_retries, initial_delay=0.0, max_delay=0.0)
        pool = EndpointPool(
            clients, policy=policy, endpoint_concurrency=endpoint_concurrency, on_retry=retried.append
        )
        async with http:
            try:
                return await body(pool), pool
            finally:
                await pool.aclose()

    outcome, pool = asyncio.run(main())
    return outcome, pool, retried


async def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=GOOD)


async def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"error": {"message": "overloaded"}})


def ask(times: int) -> Callable[[EndpointPool], Awaitable[object]]:
    async def body(pool: EndpointPool) -> object:
        params = GenerationParams(model="m")
        return await asyncio.gather(*(pool.generate(f"q{i}", params, 1) for i in range(times)), return_exceptions=True)

    return body


def test_a_refused_endpoint_is_taken_out_and_its_request_resent_without_a_retry() -> None:
    outcome, pool, retried = run_pool({"dead": refused, "live": ok}, ask(6))
    assert all(not isinstance(reply, BaseException) for reply in outcome)  # type: ignore[union-attr]
    assert {reply.api_base for reply in outcome} == {"http://live/v1"}  # type: ignore[union-attr]
    assert retried == [] and pool.resent >= 1
    dead, live = pool.stats
    assert (dead.state, dead.times_out, dead.replies) == ("out", 1, 0)
    assert (live.state, live.replies) == ("up", 6)


def test_server_errors_in_a_row_take_an_endpoint_out_and_the_work_goes_elsewhere() -> None:
    outcome, pool, retried = run_pool({"sick": unavailable, "well": ok}, ask(20))
    assert all(not isinstance(reply, BaseException) for reply in outcome)  # type: ignore[union-attr]
    sick, well = pool.stats
    assert sick.state == "out" and sick.errors == FAILURES_BEFORE_OUT  # no request after it was taken out
    assert well.replies == 20
    assert len(retried) < FAILURES_BEFORE_OUT  # the error that took it out re-sent for free


def test_one_endpoint_keeps_the_single_server_retry_policy() -> None:
    outcome, pool, retried = run_pool({"only": unavailable}, ask(1), max_retries=3)
    (failure,) = outcome  # type: ignore[misc]
    assert isinstance(failure, RequestFailed) and failure.status == 503 and failure.retries == 3
    assert retried == ["http"] * 3 and pool.stats[0].requests == 4


def test_a_client_error_is_the_requests_fault_not_the_endpoints() -> None:
    async def too_long(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "prompt too long"}})

    outcome, pool, retried = run_pool({"strict": too_long}, ask(FAILURES_BEFORE_OUT + 2))
    assert all(isinstance(failure, RequestFailed) and failure.status == 400 for failure in outcome)  # type: ignore[union-attr]
    (strict,) = pool.stats
    assert (strict.state, strict.times_out, strict.errors) == ("up", 0, FAILURES_BEFORE_OUT + 2) and retried == []


@pytest.mark.parametrize("cap", [1, 2])
def test_least_in_flight_within_the_cap(cap: int) -> None:
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()

    async def slow(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        in_flight[host] += 1
        most[host] = max(most[host], in_flight[host])
        await asyncio.sleep(0.01)
        in_flight[host] -= 1
        return httpx.Response(200, json=GOOD)

    outcome, pool, _ = run_pool({"a": slow, "b": slow, "c": slow}, ask(30), endpoint_concurrency=cap)
    assert all(not isinstance(reply, BaseException) for reply in outcome)  # type: ignore[union-attr]
    assert max(most.values()) == cap  # used up to the cap, never beyond
    assert sorted(stats.replies for stats in pool.stats) == [10, 10, 10]  # an even spread
