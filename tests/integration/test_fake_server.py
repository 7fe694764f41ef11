"""The OpenAI-compatible test server itself: answers, `n`, scripted behaviours, auth, the request log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fakes.openai_server import (
    Delay,
    Drop,
    EchoAuth,
    FailAfter,
    FewerChoices,
    Hang,
    Malformed,
    NullMessage,
    Ok,
    OpenAIServer,
    RejectN,
    Status,
    StringChoices,
    default_answer,
    parse_behaviour,
)

MCQ_PROMPT = "Which is a prime number?\nA. 4\nB. 6\nC. 7\nD. 9\nEnd your answer with 'The answer is (X)'."
MATH_PROMPT = "What is $1 + 1$? Put the final answer in \\boxed{}."


def chat(server: OpenAIServer, prompt: str = MATH_PROMPT, **fields: Any) -> httpx.Response:
    headers = fields.pop("headers", None)
    body = {"model": "test-model", "messages": [{"role": "user", "content": prompt}], **fields}
    return httpx.post(f"{server.url}/chat/completions", json=body, headers=headers, timeout=5)


def test_chat_returns_n_choices_with_usage(openai_server: OpenAIServer) -> None:
    response = chat(openai_server, MCQ_PROMPT, n=5, max_tokens=100)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-") and isinstance(data["created"], int)
    assert data["model"] == "test-model"
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3, 4]
    for choice in data["choices"]:
        assert choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"].endswith(")."), choice
        assert "The answer is (" in choice["message"]["content"]
        assert choice["message"]["content"][-3] in "ABCD"
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_answers_are_deterministic_and_vary_by_choice() -> None:
    body = {"messages": [{"role": "user", "content": MCQ_PROMPT}]}
    answers = [default_answer(body, i) for i in range(10)]
    assert answers == [default_answer(body, i) for i in range(10)]
    assert len({a[-3] for a in answers}) > 1  # not always the same letter
    boxed = default_answer({"messages": [{"role": "user", "content": MATH_PROMPT}]}, 0)
    assert "\\boxed{" in boxed


def test_completions_endpoint(openai_server: OpenAIServer) -> None:
    body = {"model": "test-model", "prompt": MATH_PROMPT, "n": 3}
    response = httpx.post(f"{openai_server.url}/completions", json=body, timeout=5)
    data = response.json()
    assert response.status_code == 200
    assert data["object"] == "text_completion"
    assert len(data["choices"]) == 3
    assert "\\boxed{" in data["choices"][0]["text"]


def test_max_tokens_cuts_with_length_and_stop_is_honoured(openai_server: OpenAIServer) -> None:
    cut = chat(openai_server, max_tokens=3).json()["choices"][0]
    assert cut["finish_reason"] == "length"
    assert len(cut["message"]["content"].split()) == 3
    openai_server.answer_fn = lambda body, i: f"answer {i} <|im_end|> trailing junk"
    stopped = chat(openai_server, n=2, stop=["<|im_end|>"]).json()["choices"]
    assert [c["message"]["content"] for c in stopped] == ["answer 0 ", "answer 1 "]
    assert {c["finish_reason"] for c in stopped} == {"stop"}


def test_answer_fn_receives_body_and_choice_index(openai_server: OpenAIServer) -> None:
    openai_server.answer_fn = lambda body, i: f"{body['model']}:{i}"
    data = chat(openai_server, n=2).json()
    assert [c["message"]["content"] for c in data["choices"]] == ["test-model:0", "test-model:1"]


def test_reasoning_content(openai_server: OpenAIServer) -> None:
    openai_server.reasoning = True
    data = chat(openai_server).json()
    assert data["choices"][0]["message"]["reasoning_content"].startswith("Thinking")
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_models_and_unknown_model(openai_server: OpenAIServer) -> None:
    models = httpx.get(f"{openai_server.url}/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["test-model"]
    response = chat(openai_server, model="no-such-model")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "The model `no-such-model` does not exist."
    assert error["type"] == "NotFoundError" and error["code"] == 404


def test_api_key_required_when_configured(openai_server: OpenAIServer) -> None:
    openai_server.api_key = "sk-test-123"
    assert chat(openai_server).status_code == 401
    assert httpx.get(f"{openai_server.url}/models", timeout=5).status_code == 401
    good = chat(openai_server, headers={"Authorization": "Bearer sk-test-123"})
    assert good.status_code == 200
    assert [r.authorization for r in openai_server.completion_requests()] == [None, "Bearer sk-test-123"]


def test_enqueue_is_consumed_in_order(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Status(429, retry_after=0.01), Status(500), Ok())
    first = chat(openai_server)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "0.01"
    assert first.json()["error"]["type"] == "RateLimitError"
    assert chat(openai_server).status_code == 500
    assert chat(openai_server).status_code == 200
    assert chat(openai_server).status_code == 200  # queue empty: normal answers
    assert [r.status for r in openai_server.completion_requests()] == [429, 500, 200, 200]
    assert [r.behaviour for r in openai_server.completion_requests()] == ["status", "status", "ok", "ok"]


def test_status_with_custom_body(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Status(503, body="overloaded"))
    response = chat(openai_server)
    assert (response.status_code, response.text) == (503, "overloaded")


def test_drop_closes_connection_without_response(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Drop())
    with pytest.raises(httpx.RemoteProtocolError):
        chat(openai_server)
    assert chat(openai_server).status_code == 200
    assert [r.status for r in openai_server.completion_requests()] == [None, 200]


def test_malformed_is_invalid_json(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Malformed())
    response = chat(openai_server)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fewer_choices_and_reject_n(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(FewerChoices(2), RejectN(), RejectN())
    assert len(chat(openai_server, n=5).json()["choices"]) == 2
    rejected = chat(openai_server, n=5)
    assert rejected.status_code == 400 and "n>1" in rejected.json()["error"]["message"]
    assert chat(openai_server, n=1).status_code == 200  # RejectN lets n=1 through


def test_max_n_is_persistent(openai_server: OpenAIServer) -> None:
    openai_server.max_n = 1
    assert chat(openai_server, n=2).status_code == 400
    assert chat(openai_server, n=2).status_code == 400
    assert len(chat(openai_server, n=1).json()["choices"]) == 1


def test_persistent_mode_and_fail_after(openai_server: OpenAIServer) -> None:
    openai_server.set_mode(Status(500))
    assert [chat(openai_server).status_code for _ in range(3)] == [500, 500, 500]
    openai_server.set_mode(FailAfter(2, then=Status(502)))
    assert [chat(openai_server).status_code for _ in range(4)] == [200, 200, 502, 502]
    openai_server.set_mode(FailAfter(1, then=Drop()))
    assert chat(openai_server).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        chat(openai_server)
    openai_server.set_mode(None)
    assert chat(openai_server).status_code == 200


def test_prompt_too_long_rule(openai_server: OpenAIServer) -> None:
    openai_server.prompt_too_long = "HUGE"
    response = chat(openai_server, "a HUGE prompt")
    assert response.status_code == 400
    assert "maximum context length" in response.json()["error"]["message"]
    assert chat(openai_server, "a small prompt").status_code == 200


def test_delay_and_latency_overlap_across_concurrent_requests(openai_server: OpenAIServer) -> None:
    openai_server.latency = 0.2

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=5) as client:
            body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
            calls = [client.post(f"{openai_server.url}/chat/completions", json=body) for _ in range(10)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    started = time.perf_counter()
    assert asyncio.run(burst()) == [200] * 10
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 1.5  # overlapped, not 10 × 0.2 s in a row
    openai_server.latency = 0.0
    openai_server.enqueue(Delay(0.3))
    started = time.perf_counter()
    assert chat(openai_server).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_request_log_and_wait_for(openai_server: OpenAIServer) -> None:
    openai_server.latency = 0.1
    thread = threading.Thread(target=lambda: [chat(openai_server, n=3) for _ in range(2)])
    thread.start()
    assert openai_server.wait_for(lambda s: len(s.answered()) == 2, timeout=5)
    thread.join()
    httpx.get(f"{openai_server.url}/models", timeout=5)
    paths = [r.path for r in openai_server.all_requests()]
    assert paths == ["/v1/chat/completions", "/v1/chat/completions", "/v1/models"]
    assert openai_server.samples_requested() == 6
    first = openai_server.completion_requests()[0]
    assert first.body["n"] == 3 and first.prompt == MATH_PROMPT and first.method == "POST"
    assert not openai_server.wait_for(lambda s: len(s.answered()) == 3, timeout=0.1)


def test_reset_forgets_everything(openai_server: OpenAIServer) -> None:
    openai_server.api_key = "k"
    openai_server.set_mode(Status(500))
    openai_server.enqueue(Drop())
    chat(openai_server)
    openai_server.reset()
    assert openai_server.all_requests() == []
    assert chat(openai_server).status_code == 200


def test_standalone_process_writes_port_file(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).resolve().parents[1] / "fakes" / "openai_server.py"
    argv = [sys.executable, str(script), "--port", "0", "--port-file", str(port_file), "--model", "m1"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "server did not write its port file"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port_file.read_text()}/v1"
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}], "n": 4}
        response = httpx.post(f"{url}/chat/completions", json=body, timeout=5)
        assert response.status_code == 200 and len(response.json()["choices"]) == 4
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_bench_fast_server_honours_n_and_counts(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).resolve().parents[2] / "bench" / "fast_server.py"
    argv = [sys.executable, str(script), "--port-file", str(port_file), "--latency", "0.01", "--model", "m"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "fast server did not write its port file"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port_file.read_text()}"
        with httpx.Client(base_url=base, timeout=5) as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 3}
            reply = client.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200 and len(reply.json()["choices"]) == 3
            assert client.post("/v1/completions", json={"model": "m", "prompt": "x"}).json()["choices"][0]["text"]
            assert client.post("/v1/chat/completions", json={**body, "model": "other"}).status_code == 404
            stats = client.get("/_bench/stats").json()
            assert (stats["requests"], stats["samples"], stats["errors"]) == (3, 4, 1)
            assert stats["span_s"] > 0
            client.post("/_bench/reset")
            assert client.get("/_bench/stats").json()["requests"] == 0
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_null_message_and_string_choices(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(NullMessage(), StringChoices(), NullMessage(), StringChoices())
    null = chat(openai_server, n=2)
    assert null.status_code == 200
    assert [c["message"] for c in null.json()["choices"]] == [None, None]
    strings = chat(openai_server, MCQ_PROMPT, n=3).json()
    assert len(strings["choices"]) == 3 and all(isinstance(c, str) for c in strings["choices"])
    assert "The answer is (" in strings["choices"][0] and strings["usage"]["completion_tokens"] > 0
    body = {"model": "test-model", "prompt": MATH_PROMPT}
    completion = httpx.post(f"{openai_server.url}/completions", json=body, timeout=5).json()
    assert completion["choices"][0]["text"] is None
    strings = httpx.post(f"{openai_server.url}/completions", json=body, timeout=5).json()
    assert isinstance(strings["choices"][0], str)
    assert [r.behaviour for r in openai_server.completion_requests()] == [
        "nullmessage", "stringchoices", "nullmessage", "stringchoices",
    ]  # fmt: skip


@pytest.mark.parametrize("code", [400, 401, 403, 500])
def test_echo_auth_quotes_the_authorization_header(openai_server: OpenAIServer, code: int) -> None:
    openai_server.set_mode(EchoAuth(code))
    response = chat(openai_server, headers={"Authorization": "Bearer sk-echo-me"})
    assert response.status_code == code
    error = response.json()["error"]
    assert "Bearer sk-echo-me" in error["message"] and error["code"] == code
    assert "no Authorization header" in chat(openai_server).json()["error"]["message"]


def test_echo_auth_passes_the_servers_own_key_check(openai_server: OpenAIServer) -> None:
    openai_server.api_key = "sk-right"
    openai_server.enqueue(EchoAuth(500))
    response = chat(openai_server, headers={"Authorization": "Bearer sk-right"})
    assert response.status_code == 500 and "Bearer sk-right" in response.json()["error"]["message"]


def test_hang_never_answers_and_does_not_hold_up_stop() -> None:
    server = OpenAIServer().start()
    server.enqueue(Hang())
    with pytest.raises(httpx.ReadTimeout):
        chat_with_timeout(server, 0.3)
    assert chat(server).status_code == 200  # only the queued request hangs
    server.set_mode(FailAfter(0, then=Hang()))
    outcome: list[BaseException | int] = []

    def patient() -> None:
        try:
            outcome.append(chat_with_timeout(server, 30).status_code)
        except httpx.HTTPError as err:
            outcome.append(err)

    thread = threading.Thread(target=patient)
    thread.start()
    assert server.wait_for(lambda s: len(s.completion_requests()) == 3, timeout=5)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)
    assert [r.status for r in server.all_requests()] == [None, 200, None]


def chat_with_timeout(server: OpenAIServer, timeout: float) -> httpx.Response:
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{server.url}/chat/completions", json=body, timeout=timeout)


def test_models_mode(openai_server: OpenAIServer) -> None:
    url = f"{openai_server.url}/models"
    openai_server.set_models_mode(Hang())
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=0.3)
    assert chat(openai_server).status_code == 200  # completions are not affected
    openai_server.set_models_mode(EchoAuth(401))
    response = httpx.get(url, headers={"Authorization": "Bearer sk-m"}, timeout=5)
    assert response.status_code == 401 and "Bearer sk-m" in response.json()["error"]["message"]
    openai_server.set_models_mode(Status(503))
    assert httpx.get(url, timeout=5).status_code == 503
    openai_server.set_models_mode(Malformed())
    with pytest.raises(ValueError):
        httpx.get(url, timeout=5).json()
    openai_server.set_models_mode(None)
    assert httpx.get(url, timeout=5).json()["data"][0]["id"] == "test-model"
    openai_server.set_models_mode(Hang())
    openai_server.reset()
    assert httpx.get(url, timeout=5).status_code == 200
    assert [r.behaviour for r in openai_server.all_requests()] == ["ok"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hang", Hang()),
        ("null-message", NullMessage()),
        ("string-choices", StringChoices()),
        ("echo-auth:403", EchoAuth(403)),
        ("echo-auth", EchoAuth(401)),
        ("status:502", Status(502)),
        ("delay:0.5", Delay(0.5)),
        ("fewer-choices:2", FewerChoices(2)),
        ("fail-after:3:hang", FailAfter(3, then=Hang())),
        ("fail-after:2", FailAfter(2)),
        ("DROP", Drop()),
    ],
)
def test_parse_behaviour(spec: str, expected: object) -> None:
    assert parse_behaviour(spec) == expected


def test_standalone_process_takes_modes(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).resolve().parents[1] / "fakes" / "openai_server.py"
    argv = [sys.executable, str(script), "--port-file", str(port_file), "--mode", "echo-auth:403",
            "--models-mode", "hang"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "server did not write its port file"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port_file.read_text()}/v1"
        body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer k9"}, timeout=5)
        assert response.status_code == 403 and "Bearer k9" in response.json()["error"]["message"]
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{url}/models", timeout=0.3)
        hung: list[BaseException] = []

        def wait_for_models() -> None:
            try:
                httpx.get(f"{url}/models", timeout=30)
            except httpx.HTTPError as err:
                hung.append(err)

        thread = threading.Thread(target=wait_for_models)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        process.terminate()
        assert process.wait(10) == 0  # a hung request does not hold up shutdown
        thread.join(5)
        assert time.monotonic() - started < 5 and len(hung) == 1
    finally:
        process.terminate()
        assert process.wait(10) == 0
