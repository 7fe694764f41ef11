"""Several endpoints of one model: which one gets the next request, which are healthy, and the retry loop.

A model may be served by several OpenAI-compatible endpoints (vLLM replicas, a remote API in several regions).
`EndpointPool.generate` sends each request to the healthy endpoint with the fewest requests in flight, each
endpoint capped at its own concurrency, and owns the retry policy (`RetryPolicy`): one endpoint behaves as a
single server always did, several add failover.

Health, per endpoint (a circuit breaker):
- up: takes requests.
- out: taken out after a refused connection or a hang (`RequestFailed.failover`), or after
  `FAILURES_BEFORE_OUT` failed tries in a row (5xx storms, timeouts, malformed replies). A background probe asks
  `GET /models` after a back-off (1 s, doubling up to `MAX_BACKOFF_S` while it stays out) until it answers.
- trial: the probe got an answer; one request at a time goes there. Its success puts the endpoint back up; its
  failure takes it out again with a doubled back-off (a server whose /models answers while completions fail).

A try that fails on an endpoint that is (now) out is re-sent at once to another healthy endpoint, without using
one of the request's retries and without waiting. Other retryable failures use a retry: at once on another
endpoint when there is one, else after the policy's back-off. When every endpoint is out, requests go to them
anyway, paced by their own back-off, exactly as with a single server; a request that fails for good then reaches
the engine, which asks `server_answers` and stops the run (resumably) if no endpoint answers.

With `rpm`/`tpm`, each endpoint has a `RateLimiter`: a try waits for it after the endpoint is chosen (so a
limited endpoint counts as busy for the choice), and the reply's usage settles the estimate.

A request is written once: the pool returns one reply per `generate` call, from whichever endpoint answered, and
a try that failed produced no reply to write.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .client import GenerationParams, OpenAIClient, Reply, RequestFailed, RetryPolicy, encode_request, retry_delay
from .ratelimit import RateLimiter, estimate_tokens

FAILURES_BEFORE_OUT = 3
"""Failed tries in a row (without a success between) that take an endpoint out."""
FIRST_BACKOFF_S = 1.0
"""Wait before the first probe of an endpoint taken out."""
MAX_BACKOFF_S = 30.0
"""Longest wait between two probes of an endpoint that stays out."""
RESENDS_PER_ENDPOINT = 2
"""A request is re-sent for free at most this many times per endpoint of the pool (bounds flapping endpoints)."""

EndpointState = Literal["up", "out", "trial"]


@dataclass(slots=True)
class EndpointStats:
    """What one endpoint did in this run (shown live and in the summary)."""

    url: str
    requests: int = 0
    """Tries sent (a retried request counts once per try)."""
    replies: int = 0
    """Tries that returned samples."""
    errors: int = 0
    """Tries that failed."""
    in_flight: int = 0
    state: EndpointState = "up"
    times_out: int = 0
    """How often the endpoint was taken out."""
    last_error: str | None = None


class _Endpoint:
    """One server of the pool: its client, its cap and its health."""

    def __init__(self, client: OpenAIClient, cap: int, limiter: RateLimiter) -> None:
        self.client = client
        self.cap = cap
        self.limiter = limiter
        self.stats = EndpointStats(client.base_url)
        self.failures_in_row = 0
        self.backoff = FIRST_BACKOFF_S
        self.probe: asyncio.Task[None] | None = None
        self.outages = 0
        """Times taken out so far: a reply to a request sent before the last take-out does not bring it back."""

    @property
    def healthy(self) -> bool:
        return self.stats.state != "out"

    def can_take(self) -> bool:
        """Room for one more request, and (in trial) nothing else in flight."""
        stats = self.stats
        if stats.in_flight >= self.cap:
            return False
        return stats.state == "up" or (stats.state == "trial" and stats.in_flight == 0)


class EndpointPool:
    """The endpoints of one model; `generate` is safe to call from many tasks at once."""

    def __init__(
        self,
        clients: list[OpenAIClient],
        *,
        policy: RetryPolicy,
        endpoint_concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        on_retry: Callable[[str], None] | None = None,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        """
        Args:
            clients: one per endpoint (they may share one http client).
            policy: retries of one request, over all endpoints.
            endpoint_concurrency: most requests in flight at one endpoint (None: no cap of its own).
            rpm, tpm: requests and tokens per minute each endpoint may take (None: no limit); see `ratelimit`.
            on_retry: called with the failure kind each time a request uses a retry.
            warn: told when an endpoint is taken out or comes back (only when there are several).
        """
        if not clients:
            raise ValueError("an endpoint pool needs at least one endpoint")
        cap = endpoint_concurrency if endpoint_concurrency is not None else 1 << 30
        self._endpoints = [_Endpoint(client, cap, RateLimiter(rpm=rpm, tpm=tpm)) for client in clients]
        self.policy = policy
        self.on_retry = on_retry
        self.warn = warn
        self.resent = 0
        """Tries re-sent to another endpoint after theirs was taken out (no retry used)."""
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._max_resends = RESENDS_PER_ENDPOINT * len(clients)

    # --- what callers see --------------------------------------------------------------------------------
    @property
    def stats(self) -> list[EndpointStats]:
        """One entry per endpoint, in the order given (live objects)."""
        return [endpoint.stats for endpoint in self._endpoints]

    @property
    def base_urls(self) -> list[str]:
        return [endpoint.client.base_url for endpoint in self._endpoints]

    @property
    def base_url(self) -> str:
        """The endpoint (one) or the endpoints (several, comma-separated), for messages."""
        return ", ".join(self.base_urls)

    @property
    def clients(self) -> list[OpenAIClient]:
        """One client per endpoint, in the order given."""
        return [endpoint.client for endpoint in self._endpoints]

    def take_out(self, client: OpenAIClient, reason: str) -> None:
        """Take `client`'s endpoint out (e.g. it did not answer when the run started; the caller said so): it is
        probed until it answers."""
        for endpoint in self._endpoints:
            if endpoint.client is client and endpoint.stats.state != "out":
                endpoint.stats.last_error = reason
                self._take_out(endpoint, RequestFailed("connection", reason, failover=True), told=True)

    async def server_answers(self) -> bool:
        """Whether any endpoint answers GET /models (see `OpenAIClient.server_answers`)."""
        answers = await asyncio.gather(*(endpoint.client.server_answers() for endpoint in self._endpoints))
        return any(answers)

    async def aclose(self) -> None:
        """Stop the background probes."""
        probes = [endpoint.probe for endpoint in self._endpoints if endpoint.probe is not None]
        for probe in probes:
            probe.cancel()
        for probe in probes:
            with contextlib.suppress(BaseException):
                await probe

    async def generate(self, prompt: str | list[dict[str, str]], params: GenerationParams, n: int) -> Reply:
        """Ask for `n` samples of one prompt, on the best endpoint, retrying as the policy says.

        Raises:
            EndpointError: 401/403/404 or an incurable URL — the run cannot go on.
            RequestFailed: the request failed for good; kind "connection" when the last endpoint tried is gone.
        """
        path, content = encode_request(prompt, params, n)
        estimated = estimate_tokens(prompt, params.max_tokens, n)
        retry = 0
        resends = 0
        avoid: _Endpoint | None = None
        while True:
            endpoint = await self._acquire(avoid)
            sent_after = endpoint.outages
            try:
                await endpoint.limiter.acquire(estimated)  # a failed try keeps its estimate: it may have counted
                reply = await endpoint.client.send_once(path, content, params)
            except RequestFailed as failure:
                self._release(endpoint)
                taken_out = self._failed(endpoint, failure)
                elsewhere = self._healthy_other_than(endpoint)
                if (failure.failover or taken_out) and elsewhere and resends < self._max_resends:
                    resends += 1
                    self.resent += 1
                    avoid = endpoint
                    continue
                if not failure.retryable or retry >= self.policy.max_retries:
                    failure.retries = retry
                    raise
                if self.on_retry is not None:
                    self.on_retry(failure.kind)
                delay = retry_delay(retry, failure.retry_after, self.policy)
                retry += 1
                if failure.status == 429:
                    endpoint.client.pause(delay)
                if elsewhere:
                    avoid = endpoint
                    continue
                avoid = None
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self._release(endpoint)
                raise
            self._release(endpoint)
            endpoint.limiter.settle(estimated, reply.prompt_tokens + reply.completion_tokens)
            self._succeeded(endpoint, sent_after)
            reply.api_base = endpoint.client.base_url
            return reply

    # --- choosing an endpoint ----------------------------------------------------------------------------
    def _pick(self, avoid: _Endpoint | None) -> _Endpoint | None:
        ready = [endpoint for endpoint in self._endpoints if endpoint.can_take()]
        preferred = [endpoint for endpoint in ready if endpoint is not avoid] or ready
        if preferred:
            return min(preferred, key=lambda endpoint: (endpoint.stats.in_flight, endpoint.stats.requests))
        if any(endpoint.healthy for endpoint in self._endpoints):
            return None  # healthy ones are full (or in trial): wait for a free place
        # Every endpoint is out: send anyway, paced by each request's own back-off, as with a single server.
        room = [endpoint for endpoint in self._endpoints if endpoint.stats.in_flight < endpoint.cap]
        return min(room, key=lambda endpoint: endpoint.stats.in_flight) if room else None

    async def _acquire(self, avoid: _Endpoint | None) -> _Endpoint:
        while True:
            endpoint = self._pick(avoid)
            if endpoint is not None:
                endpoint.stats.in_flight += 1
                endpoint.stats.requests += 1
                return endpoint
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)

    def _release(self, endpoint: _Endpoint) -> None:
        endpoint.stats.in_flight -= 1
        self._wake(everyone=False)

    def _wake(self, *, everyone: bool) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def _healthy_other_than(self, endpoint: _Endpoint) -> bool:
        return any(other.healthy for other in self._endpoints if other is not endpoint)

    # --- health ------------------------------------------------------------------------------------------
    def _failed(self, endpoint: _Endpoint, failure: RequestFailed) -> bool:
        """Count a failed try; True if it took the endpoint out."""
        stats = endpoint.stats
        stats.errors += 1
        stats.last_error = failure.message[:200]
        if failure.status is not None and 400 <= failure.status < 500 and failure.status not in (408, 409):
            return False  # the request's fault (or a rate limit, paced by its pause), not the server's health
        endpoint.failures_in_row += 1
        if stats.state == "out":
            return False
        if failure.failover or stats.state == "trial" or endpoint.failures_in_row >= FAILURES_BEFORE_OUT:
            self._take_out(endpoint, failure)
            return True
        return False

    def _take_out(self, endpoint: _Endpoint, failure: RequestFailed, *, told: bool = False) -> None:
        stats = endpoint.stats
        if stats.state == "trial":  # still failing: probe less often, and say nothing new
            endpoint.backoff = min(endpoint.backoff * 2, MAX_BACKOFF_S)
        elif len(self._endpoints) > 1 and not told:
            self.warn(f"endpoint {stats.url} taken out ({failure.message[:120]}); probing it until it answers")
        stats.state = "out"
        stats.times_out += 1
        endpoint.outages += 1
        if endpoint.probe is None or endpoint.probe.done():
            endpoint.probe = asyncio.ensure_future(self._probe_until_back(endpoint))
        self._wake(everyone=True)  # waiters for it may now go elsewhere (or, if all are out, to any)

    async def _probe_until_back(self, endpoint: _Endpoint) -> None:
        delay = endpoint.backoff
        while endpoint.stats.state == "out":
            await asyncio.sleep(delay)
            if endpoint.stats.state != "out":
                return  # a request sent while every endpoint was out succeeded there
            if await endpoint.client.server_answers():
                endpoint.stats.state = "trial"
                self._wake(everyone=True)
                return
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _succeeded(self, endpoint: _Endpoint, sent_after: int) -> None:
        stats = endpoint.stats
        stats.replies += 1
        if sent_after != endpoint.outages:
            return  # sent before the endpoint was taken out: says nothing about now
        endpoint.failures_in_row = 0
        if stats.state != "up":
            stats.state = "up"
            endpoint.backoff = FIRST_BACKOFF_S
            if len(self._endpoints) > 1:
                self.warn(f"endpoint {stats.url} is back")
            self._wake(everyone=True)

