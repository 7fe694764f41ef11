"""An OpenAI-compatible test server on 127.0.0.1 with scriptable failures, run in a thread or as a process.

In tests::

    with OpenAIServer(models=["test-model"]) as server:
        server.enqueue(Status(429, retry_after=0.01), Ok())   # consumed one per completion request, in order
        server.set_mode(FailAfter(3, then=Drop()))             # applies whenever the queue is empty
        server.set_models_mode(Hang())                         # GET /v1/models (None: answer normally)
        ... talk to server.url ("http://127.0.0.1:PORT/v1") ...
        assert server.samples_requested() == 10

As a process (for tests that need it outside the test process, and for benchmarks)::

    python tests/fakes/openai_server.py --port 0 --port-file F [--latency S] [--model NAME] [--api-key K]
        [--mode SPEC] [--models-mode SPEC]

where SPEC names a behaviour: ok, drop, malformed, null-message, string-choices, hang, reject-n,
status:CODE, echo-auth:CODE, delay:SECONDS, fewer-choices:M, or fail-after:N:SPEC (--mode only).

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health.

Providers' refusals (constructor arguments, or attributes to change at any time): `reasoning_model=True`
refuses as OpenAI's o-series and gpt-5 do (400 for `max_tokens`, and for a temperature other than 1, with
`param` naming the field), `strict_fields=True` refuses unknown fields ("Unrecognized request argument
supplied: chat_template_kwargs"), `max_n=1` refuses n>1. Each request's JSON body is recorded
(`completion_requests()[i].body`), so tests can assert what arrived.

Behaviours (one per completion request via `enqueue`, or for all of them via `set_mode`/`FailAfter`):
`Ok`, `Status(code)`, `Delay(s)`, `Drop` (close without answering), `Malformed` (200, invalid JSON),
`FewerChoices(m)`, `RejectN` (400 for n > 1), `NullMessage` (200, every choice has "message": null, or
"text": null on /v1/completions), `StringChoices` (200, "choices" is a list of strings), `EchoAuth(code)`
(answers `code` with an OpenAI-style error whose message quotes the request's Authorization header
verbatim, as some proxies do), `Hang` (accepts the request and never answers; it ends, with the connection
closed unanswered, when the server stops, which does not wait for it).
`set_models_mode(behaviour)` scripts GET /v1/models the same way (`Hang`, `Status`, `EchoAuth`, `Delay`,
`Drop`, `Malformed`; the others answer normally).
Answers are deterministic: a prompt that lists lettered options ("A. ..." or "(A) ...") gets
"... The answer is (X)." with X derived from a hash of the prompt and the choice index; any other prompt
gets "... \\boxed{N}". `answer_fn(body, choice_index) -> str` replaces that. Every request is recorded
(with its headers, kept in memory only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import re
import signal
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

COMPLETION_PATHS = ("/v1/chat/completions", "/v1/completions")
DEFAULT_MODEL = "test-model"
SHUTDOWN_TIMEOUT = 0.2

AnswerFn = Callable[[dict[str, Any], int], str]


# --- behaviours ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    """Answer normally."""


@dataclass(frozen=True)
class Status:
    """Answer with this status and an OpenAI-style error body (or `body`), optionally with Retry-After."""

    code: int
    body: dict[str, Any] | str | None = None
    retry_after: float | str | None = None


@dataclass(frozen=True)
class Delay:
    """Wait `seconds`, then answer normally."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending a response."""


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with a body that is not valid JSON."""


@dataclass(frozen=True)
class FewerChoices:
    """Answer normally but with only `m` choices (when fewer than `n` were asked)."""

    m: int


@dataclass(frozen=True)
class RejectN:
    """Answer 400 "n>1 not supported" when the request asks for n > 1; answer normally otherwise."""


@dataclass(frozen=True)
class NullMessage:
    """Answer 200 with the usual number of choices, each with "message": null (chat) or "text": null."""


@dataclass(frozen=True)
class StringChoices:
    """Answer 200 with "choices" a list of strings (the answer texts) instead of objects."""


@dataclass(frozen=True)
class EchoAuth:
    """Answer `code` with an OpenAI-style error whose message contains the request's Authorization header."""

    code: int = 401


@dataclass(frozen=True)
class Hang:
    """Accept the request and never answer; the connection is closed unanswered when the server stops."""


Behaviour = (
    Ok | Status | Delay | Drop | Malformed | FewerChoices | RejectN | NullMessage | StringChoices | EchoAuth | Hang
)


@dataclass(frozen=True)
class FailAfter:
    """Persistent mode: after `n` successful completion requests, every completion request gets `then`."""

    n: int
    then: Behaviour = Status(500)


Mode = Behaviour | FailAfter


@dataclass
class RecordedRequest:
    """One request as the server saw it, and the status it answered (None while in flight or when dropped)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    time: float
    behaviour: str = "ok"
    status: int | None = None

    @property
    def n(self) -> int:
        """The `n` asked for (1 when absent)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("n"), int):
            return int(self.body["n"])
        return 1

    @property
    def prompt(self) -> str:
        """The prompt text: chat message contents joined by newlines, or the completions `prompt`."""
        return prompt_text(self.body) if isinstance(self.body, dict) else ""

    @property
    def authorization(self) -> str | None:
        """The Authorization header as sent, if any."""
        return self.headers.get("authorization")


# --- answers ---------------------------------------------------------------------------------------------

_OPTION_RE = re.compile(r"^\s*\(?([A-Z])[.)]\s", re.MULTILINE)


def prompt_text(body: dict[str, Any]) -> str:
    """The text of a request's prompt (chat: the message contents joined by newlines)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):  # content parts
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(str(p) for p in prompt)
    return str(prompt or "")


def option_letters(prompt: str) -> list[str]:
    """The option letters listed in a prompt ("A. ..." or "(A) ..." at the start of a line), in order."""
    seen: list[str] = []
    for letter in _OPTION_RE.findall(prompt):
        if letter not in seen:
            seen.append(letter)
    return seen


def default_answer(body: dict[str, Any], choice_index: int) -> str:
    """A deterministic answer: a lettered option for multiple-choice prompts, else a boxed number."""
    prompt = prompt_text(body)
    digest = hashlib.sha256(f"{prompt}\x00{choice_index}".encode()).digest()
    letters = option_letters(prompt)
    if len(letters) >= 2:
        letter = letters[digest[0] % len(letters)]
        return f"Let me weigh each option in turn. The answer is ({letter})."
    number = int.from_bytes(digest[:2], "big") % 100
    return f"Let me work it out step by step. The final answer is \\boxed{{{number}}}."


def _count_tokens(text: str) -> int:
    return len(text.split())


def _apply_limits(text: str, max_tokens: int | None, stop: list[str]) -> tuple[str, str]:
    """Cut `text` at the first stop sequence and at `max_tokens` words; return (text, finish_reason)."""
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    words = text.split()
    if max_tokens is not None and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def error_body(message: str, err_type: str, code: int, param: str | None = None) -> dict[str, Any]:
    """An error body in the shape vLLM and OpenAI use: {"error": {message, type, param, code}}."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


_STATUS_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "RequestTimeoutError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}


# --- the server ------------------------------------------------------------------------------------------


class OpenAIServer:
    """OpenAI-compatible HTTP server for tests; settings are plain attributes that may change at any time.

    Args:
        models: model names served; a request naming another model gets 404 (one naming none is accepted).
        api_key: when set, requests must send `Authorization: Bearer <api_key>` (401 otherwise).
        latency: seconds every completion request waits before answering (concurrent requests overlap).
        max_n: when set, a request asking for more choices gets 400 "n>1 not supported"-style errors.
        reasoning: add the reasoning text to each message (in `reasoning_field`) and count its tokens.
        answer_fn: `answer_fn(body, choice_index) -> str` replaces the default answers.
        prompt_too_long: a substring (or predicate on the prompt text) that makes a request fail with vLLM's
            400 "maximum context length" error.
        reasoning_model: refuse as OpenAI's reasoning models (o-series, gpt-5) do: 400 for `max_tokens` (they
            take `max_completion_tokens`) and for a temperature other than 1, with `param` naming the field.
        strict_fields: refuse as OpenAI does a field it does not know (e.g. vLLM's `chat_template_kwargs`):
            400 "Unrecognized request argument supplied: NAME".
        host: address to bind.
        port: port to bind (0 picks a free one).
    """

    def __init__(
        self,
        models: list[str] | None = None,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        max_n: int | None = None,
        reasoning: bool = False,
        answer_fn: AnswerFn | None = None,
        prompt_too_long: str | Callable[[str], bool] | None = None,
        reasoning_model: bool = False,
        strict_fields: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.models: list[str] = list(models) if models else [DEFAULT_MODEL]
        self.api_key = api_key
        self.latency = latency
        self.max_n = max_n
        self.reasoning = reasoning
        self.reasoning_field = "reasoning_content"
        self.answer_fn = answer_fn
        self.prompt_too_long = prompt_too_long
        self.reasoning_model = reasoning_model
        self.strict_fields = strict_fields
        self.max_model_len: int | None = None
        """When set, GET /v1/models lists it (as vLLM does)."""
        self.record = record
        self.ssl_context = ssl_context
        """When set, the server speaks HTTPS (`url` starts with https://)."""
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        """Completion requests being handled now."""
        self.max_in_flight = 0
        """The most completion requests handled at once since the start (or `reset`)."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[Behaviour] = deque()
        self._mode: Mode | None = None
        self._models_mode: Behaviour | None = None
        self._successes = 0
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._defaults = {
            "models": list(self.models),
            "api_key": api_key,
            "latency": latency,
            "max_n": max_n,
            "reasoning": reasoning,
            "answer_fn": answer_fn,
            "prompt_too_long": prompt_too_long,
            "reasoning_model": reasoning_model,
            "strict_fields": strict_fields,
        }

    # --- scripting ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. http://127.0.0.1:PORT/v1."""
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}/v1"

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, each consumed by one completion request, in order (then the mode applies)."""
        with self._lock:
            self._queue.extend(behaviours)

    def set_mode(self, mode: Mode | None) -> None:
        """Set the behaviour of every completion request when the queue is empty (None: answer normally)."""
        with self._lock:
            self._mode = mode
            self._successes = 0

    def set_models_mode(self, mode: Behaviour | None) -> None:
        """Set the behaviour of GET /v1/models (None: answer normally); e.g. `Hang()` or `EchoAuth(401)`."""
        with self._lock:
            self._models_mode = mode

    def reset(self) -> None:
        """Forget requests, queue, modes and settings changes (back to the constructor's arguments)."""
        with self._lock:
            self.requests = []
            self._queue.clear()
            self._mode = None
            self._models_mode = None
            self._successes = 0
            for name, value in self._defaults.items():
                setattr(self, name, list(value) if isinstance(value, list) else value)
            self.reasoning_field = "reasoning_content"
            self.max_model_len = None
            self.max_in_flight = self.in_flight

    # --- the request log ---------------------------------------------------------------------------------

    def all_requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self.requests)

    def completion_requests(self) -> list[RecordedRequest]:
        """The requests to /v1/chat/completions and /v1/completions, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path in COMPLETION_PATHS]

    def samples_requested(self) -> int:
        """Sum of `n` over all completion requests."""
        return sum(r.n for r in self.completion_requests())

    def answered(self) -> list[RecordedRequest]:
        """Completion requests answered with 200."""
        return [r for r in self.completion_requests() if r.status == 200]

    def wait_for(self, predicate: Callable[[OpenAIServer], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate(self)` holds (checked after every request and answer); False on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.05))
        return True

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Start serving in a background thread with its own event loop; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as err:  # reported to start()
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread = None
            raise RuntimeError(f"test server failed to start: {failure[0]!r}")
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests are cut after a short grace period) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = self.make_app()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context)
        await site.start()
        server = site._server  # the asyncio server: the only place the bound port is known
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # hung handlers close their connections and return
            await asyncio.sleep(0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def make_app(self) -> web.Application:
        """The aiohttp application (for serving it in another loop)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # --- handlers ----------------------------------------------------------------------------------------

    def _record(self, request: web.Request, body: Any) -> RecordedRequest:
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=time.time(),
        )
        if self.record:
            with self._changed:
                self.requests.append(entry)
                self._changed.notify_all()
        return entry

    def _finish(
        self, entry: RecordedRequest, response: web.StreamResponse | None
    ) -> web.StreamResponse | None:
        with self._changed:
            entry.status = response.status if response is not None else None
            if response is not None and response.status == 200 and entry.path in COMPLETION_PATHS:
                self._successes += 1
            self._changed.notify_all()
        return response

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        body = error_body("Incorrect API key provided.", "AuthenticationError", 401)
        return _json_response(body, 401)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, None)
        return self._finish(entry, web.Response(status=200)) or web.Response()

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, None)
        body = error_body(f"Not Found: {request.method} {request.path}", "NotFoundError", 404)
        return self._finish(entry, _json_response(body, 404)) or web.Response()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        entry = self._record(request, None)
        with self._lock:
            mode = self._models_mode
        if mode is not None:
            entry.behaviour = type(mode).__name__.lower()
        response = self._auth_error(request)
        if response is None and isinstance(mode, Delay):
            await asyncio.sleep(mode.seconds)
        elif response is None and isinstance(mode, Status | EchoAuth | Drop | Malformed | Hang):
            scripted = await self._behave(request, mode, None)
            if scripted is None:
                self._finish(entry, None)
                return web.Response(status=499)
            return self._finish(entry, scripted) or web.Response()
        if response is None:
            created = int(time.time())
            data: list[dict[str, Any]] = [
                {"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": name}
                for name in self.models
            ]
            if self.max_model_len is not None:  # as vLLM lists it
                for item in data:
                    item["max_model_len"] = self.max_model_len
            response = _json_response({"object": "list", "data": data}, 200)
        return self._finish(entry, response) or web.Response()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        entry = self._record(request, body)
        auth = self._auth_error(request)
        if auth is not None:
            return self._finish(entry, auth) or web.Response()
        behaviour = self._next_behaviour()
        entry.behaviour = type(behaviour).__name__.lower()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            response = await self._behave(request, behaviour, body)
        finally:
            with self._lock:
                self.in_flight -= 1
        if response is None:  # dropped: the transport is closed, aiohttp writes nothing
            self._finish(entry, None)
            return web.Response(status=499)
        return self._finish(entry, response) or web.Response()

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            mode = self._mode
            if isinstance(mode, FailAfter):
                return mode.then if self._successes >= mode.n else Ok()
            return mode if mode is not None else Ok()

    async def _behave(self, request: web.Request, behaviour: Behaviour, body: Any) -> web.Response | None:
        if isinstance(behaviour, Status):
            return _status_response(behaviour)
        if isinstance(behaviour, EchoAuth):
            return _echo_auth_response(behaviour.code, request.headers.get("Authorization"))
        if isinstance(behaviour, Hang):
            if self._stopping is not None:
                await self._stopping.wait()
            else:  # served in another loop (make_app): hang until that loop cancels the handler
                await asyncio.Future()
            behaviour = Drop()
        if isinstance(behaviour, Drop):
            if request.transport is not None:
                request.transport.abort()
            return None
        if isinstance(behaviour, Malformed):
            return web.Response(
                status=200, body=b'{"id": "cmpl-broken", "choices": [', content_type="application/json"
            )
        if isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)
        if not isinstance(body, dict):
            return _json_response(error_body("Request body is not valid JSON.", "BadRequestError", 400), 400)
        n = body.get("n", 1)
        if isinstance(behaviour, RejectN) and isinstance(n, int) and n > 1:
            return _n_rejected()
        return self._answer(request.path, body, behaviour)

    def _refused_parameter(self, body: dict[str, Any]) -> web.Response | None:
        """A provider's 400 for a parameter it does not take (`reasoning_model`, `strict_fields`), or None."""
        if self.strict_fields:
            unknown = [key for key in body if key not in KNOWN_FIELDS]
            if unknown:
                message = f"Unrecognized request argument supplied: {unknown[0]}"
                return _json_response(error_body(message, "invalid_request_error", 400), 400)
        if self.reasoning_model:
            if "max_tokens" in body:
                message = (
                    "Unsupported parameter: 'max_tokens' is not supported with this model. "
                    "Use 'max_completion_tokens' instead."
                )
                return _json_response(error_body(message, "invalid_request_error", 400, "max_tokens"), 400)
            temperature = body.get("temperature", 1)
            if temperature != 1:
                message = (
                    f"Unsupported value: 'temperature' does not support {temperature} with this model. "
                    "Only the default (1) value is supported."
                )
                return _json_response(error_body(message, "invalid_request_error", 400, "temperature"), 400)
        return None

    def _answer(self, path: str, body: dict[str, Any], behaviour: Behaviour) -> web.Response:
        model = body.get("model")
        if model is not None and model not in self.models:
            message = f"The model `{model}` does not exist."
            return _json_response(error_body(message, "NotFoundError", 404, "model"), 404)
        if body.get("stream"):
            message = "stream=true is not supported by this test server."
            return _json_response(error_body(message, "BadRequestError", 400, "stream"), 400)
        n = body.get("n", 1)
        if not isinstance(n, int) or n < 1:
            return _json_response(error_body("n must be at least 1.", "BadRequestError", 400, "n"), 400)
        if self.max_n is not None and n > self.max_n:
            return _n_rejected()
        refused = self._refused_parameter(body)
        if refused is not None:
            return refused
        prompt = prompt_text(body)
        too_long = self.prompt_too_long
        if too_long is not None and (too_long(prompt) if callable(too_long) else too_long in prompt):
            message = (
                "This model's maximum context length is 4096 tokens. However, your prompt contains "
                f"{len(prompt) + 20000} characters (more than 16384 characters, which is the upper bound for "
                "4096 input tokens). Please reduce the length of the input prompt."
            )
            return _json_response(error_body(message, "BadRequestError", 400, "input_text"), 400)
        count = min(n, behaviour.m) if isinstance(behaviour, FewerChoices) else n
        chat = path == "/v1/chat/completions"
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)]
        answer = self.answer_fn or default_answer
        choices: list[Any] = []
        texts = []
        completion_tokens = reasoning_tokens = 0
        for index in range(count):
            text, finish = _apply_limits(answer(body, index), max_tokens, stop)
            texts.append(text)
            completion_tokens += _count_tokens(text)
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": []}
                if self.reasoning:
                    thought = f"Thinking about sample {index}: check the question carefully before answering."
                    message[self.reasoning_field] = thought
                    reasoning_tokens += _count_tokens(thought)
                choices.append(
                    {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
                )
            else:
                choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": finish})
        if isinstance(behaviour, NullMessage):
            for entry in choices:
                entry["message" if chat else "text"] = None
        elif isinstance(behaviour, StringChoices):
            choices = texts
        prompt_tokens = max(1, _count_tokens(prompt))
        completion_tokens += reasoning_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        result = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model or self.models[0],
            "choices": choices,
            "usage": usage,
        }
        return _json_response(result, 200)


KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "prompt",
        "n",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "reasoning_effort",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "response_format",
        "tools",
        "tool_choice",
    }
)
"""The request fields a `strict_fields` server knows (OpenAI's); any other is refused."""


def _json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _status_response(behaviour: Status) -> web.Response:
    headers = {}
    if behaviour.retry_after is not None:
        headers["Retry-After"] = str(behaviour.retry_after)
    if isinstance(behaviour.body, str):
        return web.Response(status=behaviour.code, text=behaviour.body, headers=headers)
    body = behaviour.body
    if body is None:
        err_type = _STATUS_TYPES.get(behaviour.code, "InternalServerError")
        body = error_body(f"Scripted error {behaviour.code}.", err_type, behaviour.code)
    return _json_response(body, behaviour.code, headers)


def _echo_auth_response(code: int, authorization: str | None) -> web.Response:
    err_type = _STATUS_TYPES.get(code, "InternalServerError")
    message = f"invalid key {authorization}" if authorization else "invalid key: no Authorization header"
    return _json_response(error_body(message, err_type, code), code)


def _n_rejected() -> web.Response:
    return _json_response(error_body("n>1 is not supported by this model.", "BadRequestError", 400, "n"), 400)


@contextlib.contextmanager
def running_server(**kwargs: Any) -> Iterator[OpenAIServer]:
    """Context manager: a started `OpenAIServer(**kwargs)`, stopped on exit."""
    server = OpenAIServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


# --- standalone process ----------------------------------------------------------------------------------

_SIMPLE_BEHAVIOURS: dict[str, Behaviour] = {
    "ok": Ok(),
    "drop": Drop(),
    "malformed": Malformed(),
    "null-message": NullMessage(),
    "string-choices": StringChoices(),
    "hang": Hang(),
    "reject-n": RejectN(),
}


def parse_behaviour(spec: str) -> Mode:
    """A behaviour from its command-line spelling (see the module docstring), e.g. `echo-auth:401`."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    try:
        if name in _SIMPLE_BEHAVIOURS and not arg:
            return _SIMPLE_BEHAVIOURS[name]
        if name == "status":
            return Status(int(arg))
        if name == "echo-auth":
            return EchoAuth(int(arg) if arg else 401)
        if name == "delay":
            return Delay(float(arg))
        if name == "fewer-choices":
            return FewerChoices(int(arg))
        if name == "fail-after":
            count, _, then = arg.partition(":")
            behaviour = parse_behaviour(then) if then else Status(500)
            if isinstance(behaviour, FailAfter):
                raise ValueError("fail-after cannot nest")
            return FailAfter(int(count), then=behaviour)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"bad behaviour {spec!r}: {err}") from None
    raise argparse.ArgumentTypeError(f"unknown behaviour {spec!r}")


def _models_behaviour(spec: str) -> Behaviour:
    mode = parse_behaviour(spec)
    if isinstance(mode, FailAfter):
        raise argparse.ArgumentTypeError("--models-mode takes a plain behaviour, not fail-after")
    return mode


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; write the bound port to --port-file when given."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per completion request")
    parser.add_argument("--model", action="append", default=None, help="model served (repeatable)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--max-n", type=int, default=None)
    parser.add_argument("--reasoning", action="store_true")
    parser.add_argument("--reasoning-model", action="store_true", help="refuse as OpenAI's o-series models do")
    parser.add_argument("--strict-fields", action="store_true", help="refuse unknown request fields")
    parser.add_argument("--mode", type=parse_behaviour, default=None, help="behaviour of completion requests")
    parser.add_argument("--models-mode", type=_models_behaviour, default=None, help="behaviour of GET /v1/models")
    args = parser.parse_args(argv)
    server = OpenAIServer(
        args.model,
        api_key=args.api_key,
        latency=args.latency,
        max_n=args.max_n,
        reasoning=args.reasoning,
        reasoning_model=args.reasoning_model,
        strict_fields=args.strict_fields,
        host=args.host,
        port=args.port,
        record=False,
    )
    server.set_mode(args.mode)
    server.set_models_mode(args.models_mode)

    async def serve() -> None:
        await server._serve()
        if args.port_file is not None:
            tmp = args.port_file.with_name(args.port_file.name + ".tmp")
            tmp.write_text(str(server.port))
            tmp.replace(args.port_file)
        print(f"serving {server.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server._shutdown()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
