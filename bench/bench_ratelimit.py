"""The per-endpoint rate limiter with a real clock: does it hold a run at its limit, and what does it cost?

Usage: .venv/bin/python bench/bench_ratelimit.py [--seconds S]

1. pace (RPM): 16 tasks acquire as fast as they can from a limiter at 12000 rpm (200/s) whose first minute's
   burst is already spent; achieved requests/s over S seconds ÷ 200.
2. pace (TPM, settled): 16 tasks, each request estimated at 100 tokens and settled at 50 (replies use half their
   max_tokens), tpm 120000 (2000/s): achieved tokens/s (settled) ÷ 2000, so requests go at ~40/s, not 20/s.
3. cost: µs per `acquire` + `settle` without limits and with limits that never make it wait, against a bare
   `await asyncio.sleep(0)` loop.
All in one run; the figures are ratios, so the machine's speed matters little (its load does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from llmrouter_collect.ratelimit import RateLimiter

TASKS = 16


async def pace(rate: RateLimiter, seconds: float, estimated: int, actual: int) -> tuple[int, int]:
    """Requests and settled tokens that went through `rate` in `seconds`."""
    deadline = time.monotonic() + seconds
    counts = [0, 0]

    async def worker() -> None:
        while True:
            await rate.acquire(estimated)
            if time.monotonic() > deadline:
                return
            rate.settle(estimated, actual)
            counts[0] += 1
            counts[1] += actual

    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return counts[0], counts[1]


async def cost(rate: RateLimiter | None, count: int) -> float:
    """µs per acquire+settle (or per bare yield when `rate` is None)."""
    started = time.perf_counter()
    for _ in range(count):
        if rate is None:
            await asyncio.sleep(0)
        else:
            await rate.acquire(100)
            rate.settle(100, 50)
    return (time.perf_counter() - started) / count * 1e6


async def main(seconds: float) -> None:
    rpm = RateLimiter(12_000, None)
    for _ in range(12_000):  # spend the first minute's burst
        await rpm.acquire(0)
    requests, _ = await pace(rpm, seconds, 0, 0)
    print(f"pace RPM: {requests / seconds:.1f} req/s of 200 configured → ratio {requests / seconds / 200:.3f}")

    tpm = RateLimiter(None, 120_000)
    await tpm.acquire(120_000)  # spend the first minute's burst
    done, tokens = await pace(tpm, seconds, 100, 50)
    print(
        f"pace TPM: {tokens / seconds:.0f} settled tok/s of 2000 configured → ratio {tokens / seconds / 2000:.3f}"
        f" ({done / seconds:.1f} req/s; unsettled estimates would allow 20)"
    )

    count = 200_000
    bare = await cost(None, count)
    unlimited = await cost(RateLimiter(None, None), count)
    never_waits = await cost(RateLimiter(10**9, 10**12), count)
    print(
        f"cost: bare yield {bare:.2f} µs · no limits {unlimited:.2f} µs · limits that never wait {never_waits:.2f} µs"
        f" ({never_waits / bare:.1f}× a bare yield)"
    )
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args().seconds))
