"""OpenAI-compatible client over one shared httpx.AsyncClient: requests, retry policy, backoff, error mapping.

The transport is aiohttp's (httpx-aiohttp): plain httpx's connection pool costs milliseconds of CPU per
request at hundreds of connections, which would make the client the bottleneck. Completion requests are built
once as `httpx.Request`s and handed straight to that transport: the client layer's URL merging, cookie and
redirect handling cost ~200 µs per request, as much again as the transport itself (bench/README.md).

`OpenAIClient.send_once` sends one try to one server; the endpoint pool (`endpoints.py`) chooses the server and
owns the retry loop (`RetryPolicy`, `retry_delay`). Each failed request ends in one of three ways:
- retried (transport errors, timeouts, 408, 409, 429, 5xx, malformed replies) with exponential backoff and
  jitter, honouring Retry-After up to a cap, at most `max_retries` times (a try re-sent to another endpoint
  because its own was taken out uses none);
- `EndpointError`, fatal for the whole run (401, 403, 404: wrong key, model or URL; and errors no retry can
  cure: an unsupported scheme or invalid URL, a TLS certificate that fails verification — see `incurable`);
- `RequestFailed`, fatal for this request only (other 4xx such as a prompt that is too long, or retries used up),
  or kind "connection" when the server is gone (cannot connect, or silent: see below).

A 200 reply is malformed (kind "malformed", retried) unless it has the shape of a chat or completions reply:
an object whose `choices` is a non-empty list of objects, each with a `message` object (chat) or a `text`
string (completions), strings or nulls where strings belong, whole numbers in `usage`.

Timeouts. A completion request may take minutes (thousands of tokens behind hundreds of others in vLLM's
batch), hence the long default `--request-timeout` (600 s). A request that times out is ambiguous: the server
is slow, or it hangs (accepts connections but never answers). GET /models is cheap and answered by the API
process itself whatever the generation queue holds, so before retrying a timed-out request the client probes
it with a short timeout (`MODELS_TIMEOUT_S`, or the request timeout if shorter). An answer, any answer, means
slow: retry as usual. Silence or a refused connection means hung or gone: `RequestFailed("connection")` at
once (re-sent to another endpoint, if there is one), instead of `max_retries` more timeouts (8 × 600 s and
backoff, about 90 minutes). Concurrent requests that time out together share one probe. The same short
timeout bounds GET /models when a run starts.

Secrets. Every text taken from a server (error bodies, reply shapes, transport errors) goes through a
`Redactor` before it lands in a `RequestFailed` or `EndpointError` message, so a server that echoes the
Authorization header cannot put the API key on the terminal or in a results file. Such texts are also
flattened to one line and capped (`MESSAGE_CAP` characters); bodies that are not UTF-8 are decoded with
replacement characters.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from .errors import EndpointError
from .refusals import refusal_hint

RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403, 404})
FailureKind = Literal["connection", "transport", "timeout", "http", "malformed"]
MODELS_TIMEOUT_S = 15.0
"""Longest wait for an answer to GET /models (at start, and as the probe after a timed-out request), capped
by the request timeout: a live server answers it in milliseconds, however busy its generation queue is."""
PROBE_REUSE_S = 1.0
"""A probe that finished this recently answers for the next ones (a hung server times out many requests at once)."""
MESSAGE_CAP = 500
"""Most characters of server text quoted in one error message."""
REDACTED = "***"
KEY_FRAGMENT = 8
"""Runs of this many characters of the API key are redacted too (a server may echo a truncated key)."""
_BEARER_RE = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"'`,;]+")
_SHORT_KEY_BOUNDARY = r"[A-Za-z0-9_\-.~+/=]"


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What is asked of the model, besides the prompt and n."""

    model: str
    endpoint: Literal["chat", "completions"] = "chat"
    temperature: float | None = 0.7
    """None: not sent (models that take only their own temperature)."""
    top_p: float | None = None
    max_tokens: int = 4096
    seed: int | None = None
    stop: tuple[str, ...] = ()
    token_limit_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """The request field `max_tokens` is sent as."""
    reasoning_effort: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Merged into the request body last (never over model, messages, prompt or n)."""

    def as_record(self) -> dict[str, Any]:
        """The `generation` field of a results record (part of a results file's identity)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
            "token_limit_field": self.token_limit_field,
            "reasoning_effort": self.reasoning_effort,
            "extra_body": self.extra_body,
        }


GENERATION_RECORD_DEFAULTS: dict[str, Any] = {
    "token_limit_field": "max_tokens",
    "reasoning_effort": None,
    "extra_body": {},
}
"""What a `generation` record written before these fields existed implies for them (the settings' defaults)."""
BODY_OWN_FIELDS = frozenset({"model", "messages", "prompt", "n"})
"""Request fields that `extra_body` never overrides."""


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
    api_base: str = ""
    """The endpoint that answered (set by the endpoint pool)."""


@dataclass
class RequestFailed(Exception):
    """A request that failed for good (not retried, or retries used up)."""

    kind: FailureKind
    message: str
    status: int | None = None
    retries: int = 0
    retryable: bool = True
    """Another try may succeed (transport errors, timeouts, malformed replies, 408, 409, 429, 5xx)."""
    failover: bool = False
    """The server looks gone (refuses connections, or hangs): send the request to another endpoint."""
    retry_after: float | None = None
    """Seconds the server asked to wait (Retry-After), if any."""
    hint: str | None = None
    """The setting to change, when the server refused one of the request's parameters (see `refusals`)."""

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


class MalformedReply(ValueError):
    """A 200 reply that is not shaped like a chat or completions reply; the message says what is wrong."""


class Redactor:
    """Removes an API key from text taken from a server, before it is shown or stored.

    It replaces by `***` the key itself, every run of `KEY_FRAGMENT` or more of its characters (a truncated
    echo), and the token of any `Bearer <token>` (whoever's key it is). A key shorter than `KEY_FRAGMENT` is
    replaced only where it stands alone (not inside a longer word), so that a 3-character key does not blank
    out every occurrence of those 3 characters.
    """

    def __init__(self, secret: str | None) -> None:
        self.secret = secret.strip() if secret and secret.strip() else None
        self._fragments: frozenset[str] = frozenset()
        self._short: re.Pattern[str] | None = None
        if self.secret is not None:
            if len(self.secret) >= KEY_FRAGMENT:
                size = KEY_FRAGMENT
                self._fragments = frozenset(self.secret[i : i + size] for i in range(len(self.secret) - size + 1))
            else:
                boundary = _SHORT_KEY_BOUNDARY
                self._short = re.compile(f"(?<!{boundary}){re.escape(self.secret)}(?!{boundary})")

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> Redactor:
        """A redactor for the credentials of an `Authorization: <scheme> <key>` header (or of its whole value)."""
        value = headers.get("authorization", "").strip()
        _, _, token = value.partition(" ")
        return cls(token.strip() or value)

    def __call__(self, text: str) -> str:
        if self.secret is not None:
            if self._short is not None:
                text = self._short.sub(REDACTED, text)
            else:
                text = self._mask_fragments(text.replace(self.secret, REDACTED))
        return _BEARER_RE.sub(rf"\1\2{REDACTED}", text)

    def _mask_fragments(self, text: str) -> str:
        size = KEY_FRAGMENT
        spans: list[list[int]] = []
        for start in range(len(text) - size + 1):
            if text[start : start + size] in self._fragments:
                if spans and start <= spans[-1][1]:
                    spans[-1][1] = start + size
                else:
                    spans.append([start, start + size])
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], REDACTED]
            last = end
        parts.append(text[last:])
        return "".join(parts)


def server_text(text: str, redact: Callable[[str], str], cap: int = MESSAGE_CAP) -> str:
    """Text from a server made fit for an error message: key redacted, one line, printable, at most `cap` chars."""
    text = redact(text[: cap * 20])  # redact before cutting, so that no part of the key survives a cut
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


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
    """Talks to one OpenAI-compatible server; safe to share between many concurrent tasks. The clients of several
    servers (endpoints of one model) share one `http` client and its transport."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        *,
        request_timeout: float,
        base_url: str | None = None,
    ) -> None:
        """`base_url` (ending in /v1) defaults to `http`'s own base URL."""
        self.http = http
        self.transport = transport
        self.request_timeout = request_timeout
        self.base_url = (base_url or str(http.base_url)).rstrip("/")
        self.redact = Redactor.from_headers(http.headers)
        """Applied to every server text quoted in an error (the key is the one in `http`'s Authorization)."""
        self.models_timeout = min(MODELS_TIMEOUT_S, request_timeout)
        """Seconds GET /models may stay silent before the server counts as not answering."""
        connect = http.timeout.connect
        self._connect_timeout = connect if connect is not None else MODELS_TIMEOUT_S
        self._probe_task: asyncio.Task[RequestFailed | None] | None = None
        self._probe_finished = 0.0
        self._headers = list(http.headers.multi_items())
        self._timeout = http.timeout.as_dict()
        self._urls = {path: httpx.URL(f"{self.base_url}/{path}") for path in ("chat/completions", "completions")}
        self._paused_until = 0.0
        """A 429 pauses every request to this server, not just the one that got it (rate limits are per key)."""

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

    async def list_models(self, timeout: float | None = None) -> list[str]:
        """The model ids the server serves (GET /models), without retries.

        Raises:
            EndpointError: the server refuses the key.
            RequestFailed: any other failure: "connection" (unreachable), "timeout" (connected, but no answer
                within `timeout`), "http" (e.g. a server without /models), "transport", "malformed".
        """
        return [str(entry["id"]) for entry in await self.model_entries(timeout)]

    async def model_entries(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The model entries of GET /models (vLLM adds `max_model_len`), without retries; raises as list_models.

        Args:
            timeout: seconds to wait for the answer once connected (default `models_timeout`); connecting is
                bounded by the connect timeout of the http client.
        """
        try:
            return await self._model_entries(self.models_timeout if timeout is None else timeout)
        except RequestFailed as failure:
            failure.message = self.redact(failure.message)
            raise

    async def _model_entries(self, timeout: float) -> list[dict[str, Any]]:
        url = f"{self.base_url}/models"
        try:
            async with asyncio.timeout(timeout + self._connect_timeout):
                response = await self.http.get(url, timeout=httpx.Timeout(timeout, connect=self._connect_timeout))
        except (httpx.TransportError, httpx.InvalidURL) as err:
            self._raise_if_incurable(err, f"GET {url}")
            if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
                raise RequestFailed("connection", f"cannot connect to {self.base_url}: {self._describe(err)}") from None
            if isinstance(err, httpx.TimeoutException):
                raise RequestFailed("timeout", f"GET {url}: no answer within {timeout:g} s") from None
            raise RequestFailed("transport", f"GET {url}: {self._describe(err)}") from None
        except TimeoutError:
            raise RequestFailed("timeout", f"GET {url}: no answer within {timeout:g} s") from None
        if response.status_code in (401, 403):
            raise self._fatal(response.status_code, response.content, "GET models")
        if response.status_code != 200:
            detail = _error_message(response.content, self.redact, cap=200)
            raise RequestFailed("http", f"GET {url}: HTTP {response.status_code}: {detail}", response.status_code)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise RequestFailed("malformed", f"GET {url}: not an OpenAI model list", 200)
        return [item for item in data["data"] if isinstance(item, dict) and "id" in item]

    async def server_answers(self) -> bool:
        """Whether the server answers GET /models within `models_timeout` (any status counts as an answer).

        False when it cannot be reached or stays silent. Concurrent callers share one probe, and a probe that
        finished less than `PROBE_REUSE_S` ago answers for the next ones.
        """
        return await self._probe() is None

    async def answers_now(self) -> bool:
        """Like `server_answers`, but always a fresh GET /models (not shared with other callers)."""
        return await self._probe_once() is None

    async def _probe(self) -> RequestFailed | None:
        """None if the server answers GET /models, else why not (kind "connection" or "timeout")."""
        task = self._probe_task
        if task is None or (task.done() and time.monotonic() - self._probe_finished > PROBE_REUSE_S):
            task = self._probe_task = asyncio.ensure_future(self._probe_once())
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(task)

    async def _probe_once(self) -> RequestFailed | None:
        try:
            await self.model_entries()
        except RequestFailed as failure:
            return failure if failure.kind in ("connection", "timeout") else None
        except EndpointError:
            return None
        finally:
            self._probe_finished = time.monotonic()
        return None

    async def send_once(self, path: str, content: bytes, params: GenerationParams) -> Reply:
        """One try of a completion request (`encode_request` built `path` and `content`); retries are the
        caller's (the endpoint pool's) business.

        Raises:
            EndpointError: 401/403/404, or a URL or certificate no retry can cure — the run cannot go on.
            RequestFailed: this try failed. `retryable` says whether another try may succeed, `failover` that
                the server itself looks gone (it refuses connections, or it hangs: a timed-out request whose
                GET /models probe got no answer either), and `retry_after` what the server asked to wait.
        """
        try:
            return await self._send_once(path, content, params)
        except RequestFailed as failure:
            failure.message = self.redact(failure.message)
            raise

    async def _send_once(self, path: str, content: bytes, params: GenerationParams) -> Reply:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.request_timeout):
                status, headers, raw = await self._post(path, content)
            latency = time.perf_counter() - started
            if status == 200:
                try:
                    return parse_reply(orjson.loads(raw), params.endpoint, latency)
                except orjson.JSONDecodeError:
                    failure = RequestFailed("malformed", f"malformed reply from {path}: not JSON", status)
                except MalformedReply as err:
                    failure = RequestFailed("malformed", f"malformed reply from {path}: {err}", status)
            elif status in FATAL_STATUSES:
                raise self._fatal(status, raw, f"POST {path}", params.model)
            else:
                failure = http_failure(status, raw, self.redact, params)
                failure.retryable = should_retry(status)
                if failure.retryable:
                    failure.retry_after = parse_retry_after(headers.get("retry-after"))
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            self._raise_if_incurable(err, f"POST {path}")
            raise
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            self._raise_if_incurable(err, f"POST {path}")
            failure = RequestFailed(
                "connection", f"cannot connect to {self.base_url}: {self._describe(err)}", failover=True
            )
        except httpx.TimeoutException as err:
            failure = RequestFailed("timeout", f"timed out: {self._describe(err)}")
        except TimeoutError:
            failure = RequestFailed("timeout", f"no complete reply within {self.request_timeout:g} s")
        except httpx.TransportError as err:
            failure = RequestFailed("transport", f"transport error: {self._describe(err)}")
        if failure.kind == "timeout":
            silent = await self._probe()
            if silent is not None:  # not slow but hung or gone: retrying here would only time out again
                why = (
                    f"no answer to GET /models within {self.models_timeout:g} s either"
                    if silent.kind == "timeout"
                    else "it no longer accepts connections"
                )
                raise RequestFailed(
                    "connection",
                    f"the server at {self.base_url} does not answer ({failure.message}; {why})",
                    retryable=False,
                    failover=True,
                )
        raise failure

    def pause(self, seconds: float) -> None:
        """Hold every request to this server for `seconds` (after a 429: rate limits are per key, not per
        request)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def quote(self, text: str, cap: int = MESSAGE_CAP) -> str:
        """Server text (e.g. model ids from GET /models) fit for a message: redacted, one line, capped."""
        return server_text(text, self.redact, cap)

    def _describe(self, err: Exception) -> str:
        return _describe(err, self.redact)

    def _raise_if_incurable(self, err: Exception, what: str) -> None:
        """Raise EndpointError (fatal for the run, never retried) if no retry could cure `err`."""
        why = incurable(err)
        if why is None:
            return
        if why == "tls":
            raise EndpointError(
                f"{what}: the TLS certificate of {self.base_url} cannot be verified ({self._describe(err)})",
                hint="check the host name in --api-base, or use the server's http:// URL if it has one; "
                "a private CA can be trusted with SSL_CERT_FILE=/path/to/ca.pem",
            ) from None
        raise EndpointError(
            f"{what}: {self.base_url} cannot be requested ({self._describe(err)})",
            hint="--api-base must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1",
        ) from None

    def _fatal(self, status: int, raw: bytes, what: str, model: str | None = None) -> EndpointError:
        detail = _error_message(raw, self.redact)
        if status == 401:
            hint = "check the API key: --api-key or COLLECT_API_KEY"
        elif status == 403:
            hint = "the key is not allowed to use this model or endpoint"
        else:
            hint = f"check --model ({model!r}) against `GET {self.base_url}/models`, and that --api-base ends in /v1"
        return EndpointError(f"{what} → HTTP {status} from {self.base_url}: {detail}", hint=hint, status=status)


def encode_request(prompt: str | list[dict[str, str]], params: GenerationParams, n: int) -> tuple[str, bytes]:
    """The path and encoded JSON body of a chat or completions request (sent as is by `send_once`)."""
    path, body = build_request(prompt, params, n)
    return path, orjson.dumps(body)


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
    if params.temperature is not None:
        body["temperature"] = params.temperature
    body[params.token_limit_field] = params.max_tokens
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.reasoning_effort is not None:
        body["reasoning_effort"] = params.reasoning_effort
    for key, value in params.extra_body.items():  # last: it may override any field but the request's own
        if key not in BODY_OWN_FIELDS:
            body[key] = value
    return path, body


def parse_reply(data: Any, endpoint: str, latency: float) -> Reply:
    """Samples and usage from a chat or completions reply body.

    Raises:
        MalformedReply: the body is not shaped like such a reply (says where: `choices[0].message is null`).
    """
    if not isinstance(data, dict):
        raise MalformedReply(f"the body is {_json_type(data)}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise MalformedReply("no choices" if choices is None else f"choices is {_json_type(choices)}, not a list")
    if not choices:
        raise MalformedReply("choices is empty")
    ordered: list[tuple[int, Sample]] = []
    for position, choice in enumerate(choices):
        where = f"choices[{position}]"
        if not isinstance(choice, dict):
            raise MalformedReply(f"{where} is {_json_type(choice)}, not an object")
        if endpoint == "chat":
            message = choice.get("message")
            if not isinstance(message, dict):
                raise MalformedReply(_wrong_type(f"{where}.message", message, "an object"))
            text = _optional_str(message, "content", f"{where}.message") or ""
            reasoning = _optional_str(message, "reasoning_content", f"{where}.message") or _optional_str(
                message, "reasoning", f"{where}.message"
            )
        else:
            text_value = choice.get("text")
            if not isinstance(text_value, str):
                raise MalformedReply(_wrong_type(f"{where}.text", text_value, "a string"))
            text, reasoning = text_value, None
        index = choice.get("index")
        order = index if isinstance(index, int) and not isinstance(index, bool) else position
        finish_reason = _optional_str(choice, "finish_reason", where)
        ordered.append((order, Sample(text=text, finish_reason=finish_reason, reasoning=reasoning or None)))
    ordered.sort(key=lambda pair: pair[0])
    usage = _optional_object(data, "usage", "usage")
    details = _optional_object(usage, "completion_tokens_details", "usage.completion_tokens_details")
    return Reply(
        samples=[sample for _, sample in ordered],
        prompt_tokens=_token_count(usage, "prompt_tokens", "usage"),
        completion_tokens=_token_count(usage, "completion_tokens", "usage"),
        reasoning_tokens=_token_count(details, "reasoning_tokens", "usage.completion_tokens_details"),
        latency_s=latency,
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _wrong_type(where: str, value: object, expected: str) -> str:
    return f"{where} is null" if value is None else f"{where} is {_json_type(value)}, not {expected}"


def _optional_str(parent: dict[str, Any], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedReply(f"{where}.{key} is {_json_type(value)}, not a string")


def _optional_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise MalformedReply(f"{where} is {_json_type(value)}, not an object")


def _token_count(parent: dict[str, Any], key: str, where: str) -> int:
    value = parent.get(key)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    shown = repr(value) if isinstance(value, int | float) and not isinstance(value, bool) else _json_type(value)
    raise MalformedReply(f"{where}.{key} is {shown}, not a whole number of tokens")


def http_failure(status: int, raw: bytes, redact: Callable[[str], str], params: GenerationParams) -> RequestFailed:
    """The failure of a request answered with an error status; a refused parameter adds the setting to change
    to the message (and as `hint`), e.g. "— the server refuses `max_tokens`: pass --token-limit-field ..."."""
    message = f"HTTP {status}: {_error_message(raw, redact)}"
    hint = refusal_hint(status, message, _error_param(raw), params)
    return RequestFailed("http", f"{message} — {hint}" if hint else message, status, hint=hint)


def _error_param(raw: bytes) -> str | None:
    """The `param` of an OpenAI-style error body ({"error": {"param": ...}}), if any."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) else None


def _error_message(raw: bytes, redact: Callable[[str], str], cap: int = MESSAGE_CAP) -> str:
    """The server's error message from an OpenAI-style error body, or the start of the body; redacted, capped."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:  # also a body that is not UTF-8
        return server_text(raw[: cap * 20].decode("utf-8", "replace"), redact, cap) or "(empty body)"
    detail: object = data
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and error.get("message"):
            detail = error["message"]
        elif isinstance(error, str) and error:
            detail = error
        elif data.get("detail"):
            detail = data["detail"]
    text = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
    return server_text(text, redact, cap) or "(empty body)"


def incurable(err: BaseException) -> Literal["url", "tls"] | None:
    """Whether a transport error is one no retry can cure: "url" (unsupported scheme, invalid URL), "tls" (the
    server's certificate fails verification), or None (pure; looks through the chain of causes)."""
    if isinstance(err, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "url"
    seen: BaseException | None = err
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) or type(seen).__name__ == "ClientConnectorCertificateError":
            return "tls"
        seen = seen.__cause__ or seen.__context__
    return "tls" if "CERTIFICATE_VERIFY_FAILED" in str(err) else None


def _describe(err: Exception, redact: Callable[[str], str]) -> str:
    text = server_text(str(err), redact, 300)
    if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout) and "connect call failed" in text.lower():
        return "connection refused (nothing listens there)"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
