"""Servers that misbehave in ways that once crashed a run, leaked the key, or stalled it for 90 minutes.

`collect infer` runs as a subprocess against the test server; the client-level tests use a real
`OpenAIClient` over real HTTP to the same server (no mocks).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.openai_server import (
    EchoAuth,
    FailAfter,
    Hang,
    NullMessage,
    OpenAIServer,
    Status,
    StringChoices,
)
from tests.integration.test_infer import infer_args, run_cli

from llmrouter_collect.client import (
    GenerationParams,
    OpenAIClient,
    RequestFailed,
    RetryPolicy,
    create_http_client,
    create_transport,
)
from llmrouter_collect.endpoints import EndpointPool
from llmrouter_collect.errors import EndpointError
from llmrouter_collect.infer import resolve_model
from llmrouter_collect.settings import Settings
from llmrouter_collect.store import iter_records, scan

SECRET = "sk-test-ECHO-5f3a9c1e7b2d4680aa"
def records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in iter_records(path)}


def good_texts(record: dict[str, Any]) -> list[str]:
    return [r["full_response"] for r in record["responses"] if r["error"] is None]


# --- 6. malformed 200 replies --------------------------------------------------------------------------


def test_malformed_replies_in_flight_are_retried_and_the_run_completes(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.latency = 0.05
    openai_server.enqueue(NullMessage(), StringChoices(), NullMessage(), StringChoices())
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=8), out, "--max-concurrent", "4", k=2))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "retries 4" in result.stderr
    final = records(out)
    assert len(final) == 8 and all(len(good_texts(r)) == 2 for r in final.values())


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        (NullMessage(), "malformed reply from chat/completions: choices[0].message is null"),
        (StringChoices(), "malformed reply from chat/completions: choices[0] is a string, not an object"),
    ],
)
def test_a_permanently_malformed_server_leaves_error_responses_not_a_crash(
    openai_server: OpenAIServer,
    dataset_file: Callable[..., Path],
    tmp_path: Path,
    behaviour: NullMessage | StringChoices,
    message: str,
) -> None:
    openai_server.set_mode(behaviour)
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    args = infer_args(openai_server, dataset, out, "--max-retries", "1", "--max-concurrent", "2", k=2)
    first = run_cli(args)
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert "failed 3" in first.stderr and message in first.stderr
    assert len(openai_server.completion_requests()) == 6  # every problem asked, once retried
    for record in records(out).values():
        assert record["attempts"] == 1
        expected = {"type": "malformed", "status": 200, "message": message}
        assert [r["error"] for r in record["responses"]] == [expected, expected]
    openai_server.set_mode(None)
    second = run_cli(args)
    assert second.returncode == 0, second.stderr
    assert all(len(good_texts(r)) == 2 for r in records(out).values())


def test_malformed_completions_reply(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.enqueue(NullMessage())
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=2), out, "--endpoint", "completions", k=1))
    assert result.returncode == 0, result.stderr
    assert "retries 1" in result.stderr and len(records(out)) == 2


# --- 9. the API key never leaves the process -----------------------------------------------------------


def assert_key_nowhere(tmp_path: Path, *outputs: str) -> None:
    for text in outputs:
        assert SECRET not in text and SECRET[:12] not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and SECRET[5:17].encode() not in data, path


@pytest.mark.parametrize("code", [400, 401, 403, 500])
def test_a_server_echoing_the_authorization_header_does_not_leak_the_key(
    dataset_file: Callable[..., Path], tmp_path: Path, code: int
) -> None:
    with OpenAIServer(api_key=SECRET) as server:
        server.set_mode(EchoAuth(code))
        out = tmp_path / "results" / "out.jsonl"
        args = infer_args(server, dataset_file(count=3), out, "--max-retries", "1", k=2)
        result = run_cli(args, env={"COLLECT_API_KEY": SECRET})
        assert server.completion_requests()[0].authorization == f"Bearer {SECRET}"  # the echo did quote it
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "invalid key Bearer ***" in result.stderr
    assert_key_nowhere(tmp_path, result.stdout, result.stderr)
    if code in (400, 500):  # errors of these problems, stored
        errors = [r["error"] for record in records(out).values() for r in record["responses"]]
        assert errors and all(e["message"] == f"HTTP {code}: invalid key Bearer ***" for e in errors)
        assert (out.parent / "out.jsonl.meta.json").exists()


@pytest.mark.parametrize("code", [401, 403, 500])
def test_echoed_key_on_get_models_at_start(dataset_file: Callable[..., Path], tmp_path: Path, code: int) -> None:
    with OpenAIServer(api_key=SECRET) as server:
        server.set_models_mode(EchoAuth(code))
        result = run_cli(
            infer_args(server, dataset_file(count=2), tmp_path / "out.jsonl", "--model", "test-model", k=1),
            env={"COLLECT_API_KEY": SECRET},
        )
    assert "Traceback" not in result.stderr
    if code != 500:  # a 500 on /models is "no model list": the run goes on
        assert result.returncode == 1 and "invalid key Bearer ***" in result.stderr
    assert_key_nowhere(tmp_path, result.stdout, result.stderr)


def test_a_key_echoed_without_bearer_and_truncated_is_redacted(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    with OpenAIServer(api_key=SECRET) as server:
        body = {"error": {"message": f"key {SECRET} or {SECRET[:20]}... not valid here", "type": "BadRequest"}}
        server.set_mode(Status(400, body=body))
        out = tmp_path / "out.jsonl"
        result = run_cli(infer_args(server, dataset_file(count=1), out, k=1), env={"COLLECT_API_KEY": SECRET})
    assert result.returncode == 1
    assert "HTTP 400: key *** or ***... not valid here" in result.stderr
    assert_key_nowhere(tmp_path, result.stdout, result.stderr)


# --- 13. a server that accepts connections but never answers -------------------------------------------


def test_a_silent_server_at_start_is_given_up_quickly_with_a_hint(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.set_models_mode(Hang())
    started = time.monotonic()
    result = run_cli(
        infer_args(openai_server, dataset_file(count=2), tmp_path / "out.jsonl", "--request-timeout", "2"),
        timeout=60,
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"the server at {openai_server.url} accepted the connection but did not answer GET /models within 2 s"
        in result.stderr
    )
    assert "collect serve status" in result.stderr and "--request-timeout" in result.stderr
    assert openai_server.completion_requests() == []


def test_resolve_model_tells_the_user_it_waits_and_caps_the_wait(openai_server: OpenAIServer) -> None:
    openai_server.set_models_mode(Hang())
    told: list[str] = []

    async def main() -> None:
        async with client_for(openai_server, request_timeout=60.0) as client:
            assert client.models_timeout == 15.0  # the default, capped
        async with client_for(openai_server, request_timeout=1.0) as client:
            assert client.models_timeout == 1.0
            with pytest.raises(EndpointError) as caught:
                await resolve_model(client, Settings(api_base=openai_server.url), told.append, notice_after=0.2)
            assert "did not answer GET /models within 1 s" in caught.value.message

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5
    assert told == [f"waiting for {openai_server.url} to answer GET /models (up to 1 s)"]
    openai_server.set_models_mode(None)
    told.clear()

    async def quick() -> str:
        async with client_for(openai_server, request_timeout=1.0) as client:
            return await resolve_model(client, Settings(api_base=openai_server.url), told.append)

    assert asyncio.run(quick()) == "test-model" and told == []


def test_a_server_that_hangs_mid_run_stops_the_run_in_seconds_without_using_attempts(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=8)
    out = tmp_path / "out.jsonl"
    openai_server.set_mode(FailAfter(3, then=Hang()))

    def hang_models_too() -> None:  # the whole server hangs once 3 requests are answered
        if openai_server.wait_for(lambda s: len(s.answered()) >= 3, timeout=30):
            openai_server.set_models_mode(Hang())

    watcher = threading.Thread(target=hang_models_too)
    watcher.start()
    args = infer_args(openai_server, dataset, out, "--max-concurrent", "2", "--request-timeout", "2", k=1)
    started = time.monotonic()
    result = run_cli(args, timeout=120)
    elapsed = time.monotonic() - started
    watcher.join()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert elapsed < 30, elapsed  # not 8 retries × 2 s, let alone 90 minutes at the defaults
    assert "lost the server" in result.stderr and "does not answer" in result.stderr
    state = scan(out)
    assert sum(1 for st in state.problems.values() if st.good == 1) == 3
    assert all(st.attempts == 0 for st in state.problems.values() if st.good == 0)
    assert len(openai_server.completion_requests()) <= 5  # the hung ones were not retried

    openai_server.reset()  # the server recovers
    again = run_cli(args)
    assert again.returncode == 0, again.stderr
    final = records(out)
    assert len(final) == 8 and all(len(good_texts(r)) == 1 for r in final.values())


def test_a_slow_but_alive_server_is_retried_as_before(openai_server: OpenAIServer) -> None:
    openai_server.set_mode(Hang())  # completions hang, /models answers: slow, not gone

    async def main() -> tuple[RequestFailed, list[str]]:
        retried: list[str] = []
        async with client_for(openai_server, request_timeout=0.5) as client:
            pool = pool_of(client, max_retries=2, on_retry=retried.append)
            with pytest.raises(RequestFailed) as caught:
                await pool.generate("hi", GenerationParams(model="test-model"), 1)
        return caught.value, retried

    failure, retried = asyncio.run(main())
    assert (failure.kind, failure.retries, retried) == ("timeout", 2, ["timeout", "timeout"])
    assert "no complete reply within 0.5 s" in failure.message
    assert len(openai_server.completion_requests()) == 3
    assert 1 <= sum(r.path == "/v1/models" for r in openai_server.all_requests()) <= 3


def test_concurrent_timeouts_share_one_probe_of_a_hung_server(openai_server: OpenAIServer) -> None:
    openai_server.set_mode(Hang())
    openai_server.set_models_mode(Hang())

    async def main() -> list[BaseException | Any]:
        async with client_for(openai_server, request_timeout=0.5) as client:
            pool = pool_of(client, max_retries=8)
            params = GenerationParams(model="test-model")
            calls = [pool.generate(f"q{i}", params, 1) for i in range(6)]
            return await asyncio.gather(*calls, return_exceptions=True)

    started = time.monotonic()
    outcomes = asyncio.run(main())
    assert time.monotonic() - started < 4  # one timeout and one probe, no retries
    assert all(isinstance(o, RequestFailed) and o.kind == "connection" for o in outcomes), outcomes
    first = outcomes[0]
    assert isinstance(first, RequestFailed) and first.retries == 0
    assert first.message.startswith(f"the server at {openai_server.url} does not answer (no complete reply")
    assert first.message.endswith("; no answer to GET /models within 0.5 s either)")
    assert len(openai_server.completion_requests()) == 6
    assert sum(r.path == "/v1/models" for r in openai_server.all_requests()) == 1


def test_probe_of_a_server_that_is_gone_reports_a_connection_failure(openai_server: OpenAIServer) -> None:
    url = openai_server.url
    openai_server.stop()

    async def main() -> bool:
        async with client_for(url, request_timeout=1.0) as client:
            return await client.server_answers()

    assert asyncio.run(main()) is False


def test_model_ids_quoted_from_get_models_are_one_capped_line() -> None:
    names = ["evil\nline\x1b[2J", *(f"org/model-{i}-" + "x" * 40 for i in range(30))]
    with OpenAIServer(models=names) as server:

        async def main() -> EndpointError:
            async with client_for(server, request_timeout=5.0) as client:
                with pytest.raises(EndpointError) as caught:
                    await resolve_model(client, Settings(api_base=server.url, model="nope"))
                return caught.value

        error = asyncio.run(main())
    assert error.hint is not None and "\n" not in error.hint and "\x1b" not in error.hint
    assert len(error.hint) < 400 and "evil line [2J, org/model-0-" in error.hint


# --- helpers ---------------------------------------------------------------------------------------------


class client_for:  # used like a function: `async with client_for(server) as client`
    """A real OpenAIClient (and its http client) for `server` or a URL, closed on exit."""

    def __init__(
        self,
        server: OpenAIServer | str,
        *,
        request_timeout: float,
        api_key: str | None = None,
    ) -> None:
        self.url = server if isinstance(server, str) else server.url
        self.request_timeout = request_timeout
        self.api_key = api_key

    async def __aenter__(self) -> OpenAIClient:
        transport = create_transport(16)
        self.http = create_http_client(
            self.url,
            api_key=self.api_key,
            request_timeout=self.request_timeout,
            connect_timeout=2.0,
            transport=transport,
        )
        return OpenAIClient(self.http, transport, request_timeout=self.request_timeout)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()


def pool_of(client: OpenAIClient, *, max_retries: int, on_retry: Callable[[str], None] | None = None) -> EndpointPool:
    """A one-endpoint pool over `client` (the pool owns the retry loop), with instant back-off."""
    policy = RetryPolicy(max_retries=max_retries, initial_delay=0.0, max_delay=0.01)
    return EndpointPool([client], policy=policy, on_retry=on_retry)
