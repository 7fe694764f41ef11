"""The per-endpoint rate limiter, driven by a fake clock whose sleep only moves the time on (no real waits)."""

from __future__ import annotations

import asyncio

import pytest

from llmrouter_collect.ratelimit import RateLimiter, estimate_tokens


class FakeClock:
    """Monotonic seconds that move only when a task sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(rpm: int | None, tpm: int | None) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep), clock


def test_no_limits_never_waits() -> None:
    rate, clock = limiter(None, None)

    async def many() -> None:
        for _ in range(10_000):
            await rate.acquire(10**9)
        rate.settle(10**9, 5)

    asyncio.run(many())
    assert clock.sleeps == [] and not rate.limited and rate.wait_time(10**9) == 0.0


def test_rpm_allows_a_minutes_burst_then_its_pace() -> None:
    rate, clock = limiter(rpm=60, tpm=None)
    start = clock.now

    async def send(count: int) -> list[float]:
        times = []
        for _ in range(count):
            await rate.acquire(0)
            times.append(clock.now - start)
        return times

    times = asyncio.run(send(63))
    assert times[:60] == [0.0] * 60  # a full bucket: one minute's worth at once
    assert times[60:] == pytest.approx([1.0, 2.0, 3.0])  # then one per second (60 per minute)
    assert rate.waited_s == pytest.approx(3.0)


def test_rpm_over_ten_minutes_stays_at_the_limit() -> None:
    rate, clock = limiter(rpm=600, tpm=None)
    start = clock.now

    async def run_for(seconds: float) -> int:
        sent = 0
        while True:
            await rate.acquire(0)
            if clock.now - start > seconds:
                return sent
            sent += 1

    sent = asyncio.run(run_for(600.0))
    assert sent == 600 + 600 * 10  # the first minute's burst, then exactly 600 per minute


def test_tpm_waits_for_the_estimate_and_settle_gives_back_what_was_not_used() -> None:
    rate, clock = limiter(rpm=None, tpm=6000)  # 100 tokens per second

    async def scenario() -> None:
        await rate.acquire(6000)  # the whole bucket
        assert clock.sleeps == []
        assert rate.wait_time(1000) == pytest.approx(10.0)
        rate.settle(6000, 1000)  # the reply used 1000: 5000 come back
        assert rate.wait_time(5000) == 0.0 and rate.wait_time(5001) == pytest.approx(0.01)
        await rate.acquire(5000)
        await rate.acquire(3000)  # waits 30 s for 3000 tokens at 100/s
        assert clock.sleeps == [pytest.approx(30.0)]

    asyncio.run(scenario())


def test_an_underestimate_is_a_debt_the_next_requests_wait_for() -> None:
    rate, clock = limiter(rpm=None, tpm=600)  # 10 tokens per second

    async def scenario() -> None:
        await rate.acquire(100)
        rate.settle(100, 1100)  # it used 1000 more than estimated: the bucket is at -500
        await rate.acquire(100)  # needs 600 more tokens: 60 s
        assert sum(clock.sleeps) == pytest.approx(60.0)

    asyncio.run(scenario())


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_not_forever() -> None:
    rate, clock = limiter(rpm=None, tpm=1200)  # 20 tokens per second

    async def scenario() -> None:
        await rate.acquire(600)
        await rate.acquire(50_000)  # charged 1200: waits until the bucket is full again (600 / 20 = 30 s)
        assert sum(clock.sleeps) == pytest.approx(30.0)

    asyncio.run(scenario())


def test_both_limits_the_stricter_one_decides() -> None:
    rate, clock = limiter(rpm=120, tpm=12_000)  # 2 requests/s, 200 tokens/s

    async def scenario() -> None:
        for _ in range(120):
            await rate.acquire(10)  # requests run out first (120 × 10 tokens = 1200)
        await rate.acquire(10)
        assert sum(clock.sleeps) == pytest.approx(0.5)
        await rate.acquire(11_000)  # now tokens: the bucket holds 12000 - 1210 + 100 = 10890, it needs 110 more
        assert sum(clock.sleeps) == pytest.approx(0.5 + 0.55)

    asyncio.run(scenario())


def test_waiters_are_served_first_come_first_served() -> None:
    rate, clock = limiter(rpm=60, tpm=None)
    order: list[int] = []

    async def one(number: int) -> None:
        await rate.acquire(0)
        order.append(number)

    async def scenario() -> None:
        for _ in range(60):
            await rate.acquire(0)
        await asyncio.gather(*(one(i) for i in range(5)))

    asyncio.run(scenario())
    assert order == [0, 1, 2, 3, 4]
    assert clock.now - 1000.0 == pytest.approx(5.0)


def test_a_cancelled_waiter_takes_nothing() -> None:
    clock = FakeClock()
    asleep = asyncio.Event()

    async def never(seconds: float) -> None:  # a sleep that lasts until the waiter is cancelled
        asleep.set()
        await asyncio.Future()

    rate = RateLimiter(60, None, clock=clock, sleep=never)

    async def scenario() -> None:
        for _ in range(60):
            await rate.acquire(0)
        waiting = asyncio.ensure_future(rate.acquire(0))
        await asleep.wait()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        clock.now += 1.0  # one request's worth refills ...
        assert rate.wait_time(0) == 0.0  # ... and is still there: the cancelled waiter took nothing
        await asyncio.wait_for(rate.acquire(0), 1)  # and the turn was handed on

    asyncio.run(scenario())


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rpm and tpm must be at least 1"):
        RateLimiter(0, None)


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "n", "expected"),
    [
        ("abcd" * 10, 100, 1, 10 + 100),
        ("abcde", 100, 3, 2 + 300),
        ([{"role": "user", "content": "abcd" * 25}], 50, 2, 25 + 4 + 100),
        ([{"role": "system", "content": ""}, {"role": "user", "content": "hi"}], 10, 1, 4 + 5 + 10),
        ("", 7, 0, 7),
    ],
)
def test_estimate_tokens(prompt: str | list[dict[str, str]], max_tokens: int, n: int, expected: int) -> None:
    assert estimate_tokens(prompt, max_tokens, n) == expected
