"""Requests-per-minute and tokens-per-minute limits of one endpoint: two token buckets, as curator keeps them.

Hosted APIs publish rate limits per key and model: requests per minute (RPM) and tokens per minute (TPM). A
run that drives past them gets 429s, and retrying them all at once turns into a 429 storm. `RateLimiter`
keeps one endpoint under its limits instead: a request waits until both buckets can pay for it.

The buckets. Each holds one minute's worth (`rpm` requests, `tpm` tokens), starts full and refills
continuously (rpm/60 requests and tpm/60 tokens per second), so a run may start with a minute's burst and
then goes at the limit's pace. A request costs 1 request and its estimated tokens (`estimate_tokens`: the
prompt's length / 4 + max_tokens × n, an upper bound, as OpenAI counts a request against TPM when it arrives).
Once the reply is in, `settle(estimated, actual)` gives back what the estimate took too much (reasoning models
seldom use all of max_tokens), or takes what it took too little; the token bucket may go below zero then, and
the next requests wait for it. A request estimated above `tpm` is charged `tpm` (it waits for a full bucket
rather than forever). Waiters are served first come, first served.

API (one limiter per endpoint; the endpoint pool calls it around every HTTP request it sends, retries
included)::

    limiter = RateLimiter(rpm=settings.rpm, tpm=settings.tpm)  # None, None: never waits
    estimated = estimate_tokens(prompt, params.max_tokens, n)
    await limiter.acquire(estimated)                            # waits until both buckets can pay
    reply = await client.generate(prompt, params, n)            # a failed request keeps its estimate
    limiter.settle(estimated, reply.prompt_tokens + reply.completion_tokens)

`limiter.wait_time(tokens)` says how long a request would wait now (0.0: it could go at once), e.g. to prefer
an endpoint that is not rate-limited; `limiter.waited_s` is the total time its requests have waited.

`clock` (seconds, monotonic) and `sleep` are parameters, so tests drive the limiter with a fake clock whose
sleep only moves the time on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

CHARS_PER_TOKEN = 4
"""Prompt characters per token in `estimate_tokens` (English text with common tokenizers; settle corrects it)."""
TOKENS_PER_MESSAGE = 4
"""Tokens a chat message adds besides its content (role and delimiters), in `estimate_tokens`."""
NEGLIGIBLE_WAIT_S = 1e-6
"""A wait this short is no wait (rounding of the refill arithmetic must not make a request sleep again)."""


def estimate_tokens(prompt: str | list[dict[str, str]], max_tokens: int, n: int) -> int:
    """Tokens a request may use, before it is sent: prompt (characters / 4, per-message overhead) + max_tokens × n.

    An upper bound for the completion (the reply's usage corrects it through `RateLimiter.settle`); pure.
    """
    if isinstance(prompt, str):
        prompt_tokens = math.ceil(len(prompt) / CHARS_PER_TOKEN)
    else:
        prompt_tokens = sum(
            math.ceil(len(message.get("content") or "") / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for message in prompt
        )
    return prompt_tokens + max_tokens * max(n, 1)


class _Bucket:
    """`capacity` units that refill at capacity/60 per second, up to capacity; may be in debt (below zero)."""

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / 60.0
        self.level = float(capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (after `refill`); 0.0 if it does now."""
        missing = amount - self.level
        return missing / self.rate if missing > 0 else 0.0


class RateLimiter:
    """Keeps the requests sent to one endpoint under `rpm` requests and `tpm` tokens per minute (None: no limit).

    Safe to share between the tasks of one event loop.
    """

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if (rpm is not None and rpm < 1) or (tpm is not None and tpm < 1):
            raise ValueError(f"rpm and tpm must be at least 1 (or None), not rpm={rpm}, tpm={tpm}")
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._requests = _Bucket(rpm, now) if rpm is not None else None
        self._tokens = _Bucket(tpm, now) if tpm is not None else None
        self._turn = asyncio.Lock()  # first come, first served: the first waiter takes its share before the next
        self.waited_s = 0.0
        """Total seconds requests have waited in `acquire`."""

    @property
    def limited(self) -> bool:
        """Whether any limit is set (a limiter without one never waits)."""
        return self._requests is not None or self._tokens is not None

    def wait_time(self, tokens: int = 0) -> float:
        """Seconds a request estimated at `tokens` would wait if it asked now (not counting requests already
        waiting); 0.0 when it could go at once."""
        now = self._clock()
        wait = 0.0
        if self._requests is not None:
            self._requests.refill(now)
            wait = self._requests.wait_for(1)
        if self._tokens is not None:
            self._tokens.refill(now)
            wait = max(wait, self._tokens.wait_for(self._charge(tokens)))
        return wait

    async def acquire(self, tokens: int) -> None:
        """Wait until the endpoint's limits allow one more request estimated at `tokens`, then count it.

        A task cancelled while it waits takes nothing.
        """
        if not self.limited:
            return
        async with self._turn:
            while True:
                wait = self.wait_time(tokens)
                if wait <= NEGLIGIBLE_WAIT_S:
                    break
                started = self._clock()
                await self._sleep(wait)
                self.waited_s += max(0.0, self._clock() - started)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= self._charge(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once a reply's usage is known: give back `estimated - actual` (or take more
        when the estimate was short). `estimated` is what `acquire` was given."""
        if self._tokens is None:
            return
        self._tokens.refill(self._clock())
        refund = self._charge(estimated) - actual
        self._tokens.level = min(self._tokens.capacity, self._tokens.level + refund)

    def _charge(self, tokens: int) -> float:
        """What a request estimated at `tokens` takes from the token bucket: at most all of it."""
        assert self._tokens is not None
        return float(min(max(tokens, 0), self._tokens.capacity))
