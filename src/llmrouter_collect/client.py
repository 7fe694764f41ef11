"""OpenAI-compatible client over one shared httpx.AsyncClient: requests, retry policy, backoff, error mapping.

The transport is aiohttp's (httpx-aiohttp): plain httpx's connection pool costs milliseconds of CPU per
request at hundreds of connections, which would make the client the bottleneck. Completion requests are built
once as `httpx.Request`s and handed straight to that transport: the client layer's URL merging, cookie and
redirect handling cost ~200 µs per request, as much again as the transport itself (bench/README.md).

Each failed request ends in one of three ways:
- retried (transport errors, 408, 409, 429, 5xx, malformed JSON) with exponential backoff and jitter,
  honouring Retry-After up to a cap, at most `max_retries` times;
- `EndpointError`, fatal for the whole run (401, 403, 404: wrong key, model or URL);
- `RequestFailed`, fatal for this request only (other 4xx such as a prompt that is too long, or retries used up).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from .errors import EndpointError

RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403, 404})
FailureKind = Literal["connection", "transport", "timeout", "http", "malformed"]


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What is asked of the model, besides the prompt and n."""

    model: str
    endpoint: Literal["chat", "completions"] = "chat"
    temperature: float = 0.7
    top_p: float | None = None
    max_tokens: int = 4096
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def as_record(self) -> dict[str, Any]:
        """The `generation` field of a results record."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
        }


@dataclass(slots=True)
class Sample:
    """One choice of a reply."""

    text: str
    finish_reason: str | None
    reasoning: str | None = None
    completion_tokens: int | None = None


@dataclass(slots=True)
class Reply:
    """A successful reply: its samples and the request's token usage and latency."""

    samples: list[Sample]
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    latency_s: float


@dataclass
class RequestFailed(Exception):
    """A request that failed for good (not retried, or retries used up)."""

    kind: FailureKind
    message: str
    status: int | None = None
    retries: int = 0

    def __str__(self) -> str:
        return self.message

    def as_record(self) -> dict[str, Any]:
        """The `error` field of a failed response."""
        return {"type": self.kind, "status": self.status, "message": self.message}


@dataclass(slots=True)
class RetryPolicy:
    """How often and how long to wait before asking again."""

    max_retries: int = 8
    initial_delay: float = 1.0
    max_delay: float = 60.0
    rng: random.Random = field(default_factory=random.Random)


def should_retry(status: int) -> bool:
    """True for the statuses worth asking again: 408, 409, 429 and every 5xx."""
    return status in RETRY_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return max(0.0, seconds)


def retry_delay(retry: int, retry_after: float | None, policy: RetryPolicy) -> float:
    """Seconds before retry number `retry` (0-based): the server's Retry-After if given, else exponential
    backoff with full jitter between half and all of `initial * 2**retry`; always capped at `max_delay`."""
    if retry_after is not None:
        return min(retry_after, policy.max_delay)
    base = min(policy.initial_delay * 2.0 ** min(retry, 30), policy.max_delay)
    return base * (0.5 + 0.5 * policy.rng.random())


def create_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """aiohttp's transport under the httpx interface, its connection pool sized to the concurrency."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return AiohttpTransport(limits=limits, trust_env=True)


def create_http_client(
    base_url: str,
    *,
    api_key: str | None,
    request_timeout: float,
    connect_timeout: float,
    transport: httpx.AsyncBaseTransport,
) -> httpx.AsyncClient:
    """The one httpx.AsyncClient of a run (it owns and closes `transport`)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.AsyncClient(
        base_url=base_url + "/",
        headers=headers,
        timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
        transport=transport,
    )


class OpenAIClient:
    """Talks to one OpenAI-compatible server; safe to share between many concurrent tasks."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        *,
        policy: RetryPolicy,
        request_timeout: float,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self.transport = transport
        self.policy = policy
        self.request_timeout = request_timeout
        self.on_retry = on_retry
        self.base_url = str(http.base_url).rstrip("/")
        self._headers = list(http.headers.multi_items())
        self._timeout = http.timeout.as_dict()
        self._urls = {path: httpx.URL(f"{self.base_url}/{path}") for path in ("chat/completions", "completions")}
        self._paused_until = 0.0
        """A 429 pauses every request of the run, not just the one that got it (rate limits are per key)."""

    async def _post(self, path: str, content: bytes) -> tuple[int, httpx.Headers, bytes]:
        """POST straight to the transport; returns status, headers and the whole body."""
        request = httpx.Request(
            "POST", self._urls[path], headers=self._headers, content=content, extensions={"timeout": self._timeout}
        )
        response = await self.transport.handle_async_request(request)
        try:
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        return response.status_code, response.headers, raw

    async def list_models(self) -> list[str]:
        """The model ids the server serves (GET /models), without retries.

        Raises:
            EndpointError: the server refuses the key.
            RequestFailed: any other failure (unreachable, or a server without /models).
        """
        return [str(entry["id"]) for entry in await self.model_entries()]

    async def model_entries(self) -> list[dict[str, Any]]:
        """The model entries of GET /models (vLLM adds `max_model_len`), without retries; raises as list_models."""
        try:
            response = await self.http.get("models", timeout=httpx.Timeout(30.0, connect=10.0))
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise RequestFailed("connection", f"cannot connect to {self.base_url}: {_describe(err)}") from None
        except httpx.TransportError as err:
            raise RequestFailed("transport", f"{self.base_url}/models: {_describe(err)}") from None
        if response.status_code in (401, 403):
            raise self._fatal(response.status_code, response.content, "GET models")
        if response.status_code != 200:
            raise RequestFailed(
                "http", f"GET {self.base_url}/models: HTTP {response.status_code}", response.status_code
            )
        try:
            data = orjson.loads(response.content)
            return [item for item in data["data"] if isinstance(item, dict) and "id" in item]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RequestFailed("malformed", f"GET {self.base_url}/models: not an OpenAI model list") from None

    async def generate(self, prompt: str | list[dict[str, str]], params: GenerationParams, n: int) -> Reply:
        """Ask for `n` samples of one prompt (chat messages or completion text), retrying as the policy says.

        Raises:
            EndpointError: 401/403/404 — the run cannot go on.
            RequestFailed: this request failed for good.
        """
        path, body = build_request(prompt, params, n)
        content = orjson.dumps(body)
        retry = 0
        while True:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                async with asyncio.timeout(self.request_timeout):
                    status, headers, raw = await self._post(path, content)
                latency = time.perf_counter() - started
                if status == 200:
                    try:
                        return parse_reply(orjson.loads(raw), params.endpoint, latency)
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as err:
                        failure = RequestFailed("malformed", f"malformed reply from {path}: {err}", status)
                elif status in FATAL_STATUSES:
                    raise self._fatal(status, raw, f"POST {path}", params.model)
                else:
                    failure = RequestFailed("http", f"HTTP {status}: {_error_message(raw)}", status)
                    if not should_retry(status):
                        failure.retries = retry
                        raise failure
                    retry_after = parse_retry_after(headers.get("retry-after"))
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                failure = RequestFailed("connection", f"cannot connect to {self.base_url}: {_describe(err)}")
            except httpx.TimeoutException as err:
                failure = RequestFailed("timeout", f"timed out: {_describe(err)}")
            except TimeoutError:
                failure = RequestFailed("timeout", f"no complete reply within {self.request_timeout:g} s")
            except httpx.TransportError as err:
                failure = RequestFailed("transport", f"transport error: {_describe(err)}")
            if retry >= self.policy.max_retries:
                failure.retries = retry
                raise failure
            if self.on_retry is not None:
                self.on_retry(failure.kind)
            delay = retry_delay(retry, retry_after, self.policy)
            if failure.status == 429:
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            await asyncio.sleep(delay)
            retry += 1

    def _fatal(self, status: int, raw: bytes, what: str, model: str | None = None) -> EndpointError:
        detail = _error_message(raw)
        if status == 401:
            hint = "check the API key: --api-key or COLLECT_API_KEY"
        elif status == 403:
            hint = "the key is not allowed to use this model or endpoint"
        else:
            hint = f"check --model ({model!r}) against `GET {self.base_url}/models`, and that --api-base ends in /v1"
        return EndpointError(f"{what} → HTTP {status} from {self.base_url}: {detail}", hint=hint, status=status)


def build_request(prompt: str | list[dict[str, str]], params: GenerationParams, n: int) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of a chat or completions request."""
    body: dict[str, Any] = {"model": params.model}
    if params.endpoint == "chat":
        path = "chat/completions"
        body["messages"] = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    else:
        path = "completions"
        body["prompt"] = prompt if isinstance(prompt, str) else "\n\n".join(m["content"] for m in prompt)
    body["n"] = n
    body["temperature"] = params.temperature
    body["max_tokens"] = params.max_tokens
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    return path, body


def parse_reply(data: dict[str, Any], endpoint: str, latency: float) -> Reply:
    """Samples and usage from a chat or completions reply body."""
    samples = []
    for choice in sorted(data["choices"], key=lambda c: c.get("index", 0)):
        if endpoint == "chat":
            message = choice["message"]
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
        else:
            text = choice["text"]
            reasoning = None
        if not isinstance(text, str):
            raise ValueError("choice text is not a string")
        samples.append(Sample(text=text, finish_reason=choice.get("finish_reason"), reasoning=reasoning))
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return Reply(
        samples=samples,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_tokens=int(details.get("reasoning_tokens") or 0),
        latency_s=latency,
    )


def _error_message(raw: bytes) -> str:
    """The server's error message from an OpenAI-style error body, or the start of the body."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:300] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
        if data.get("detail"):
            return str(data["detail"])[:500]
    return str(data)[:300]


def _describe(err: Exception) -> str:
    text = str(err).strip()
    if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout) and "connect call failed" in text.lower():
        return "connection refused (nothing listens there)"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
