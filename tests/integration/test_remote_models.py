"""`collect infer` against servers that refuse parameters as hosted providers do (OpenAI reasoning models,
strict OpenAI-compatible APIs, providers without n>1): the refusal names the setting to change, the changed
setting is what arrives, and `--extra-body` is part of the results file's identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import OpenAIServer

FAST = ["--initial-retry-delay", "0", "--max-retry-delay", "0.05"]
QWEN_NO_THINKING = '{"chat_template_kwargs": {"enable_thinking": false}}'


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `collect ARGS` as a user would, in the test's working directory."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", *args], capture_output=True, text=True, env=env, timeout=120
    )


def infer(server: OpenAIServer, dataset: Path, out: Path, *extra: str, k: int = 2) -> subprocess.CompletedProcess[str]:
    args = ["infer", "--dataset", str(dataset), "--k", str(k), "--api-base", server.url, "--output-file", str(out)]
    return run_cli([*args, "--max-concurrent", "2", *FAST, *extra])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def good(path: Path) -> int:
    return sum(1 for record in lines(path) for r in record["responses"] if r["error"] is None)


def test_reasoning_model_refusals_name_the_settings_and_the_changed_settings_succeed(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.reasoning_model = True
    dataset = dataset_file(count=12)
    first = infer(openai_server, dataset, tmp_path / "a.jsonl")
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert "requests were all refused" in first.stderr
    assert "Unsupported parameter: 'max_tokens'" in first.stderr
    assert "pass --token-limit-field max_completion_tokens, and rerun" in first.stderr
    errors = [r["error"] for record in lines(tmp_path / "a.jsonl") for r in record["responses"]]
    assert errors and all("pass --token-limit-field max_completion_tokens" in e["message"] for e in errors)
    assert all(e["status"] == 400 for e in errors)

    # Following the hint on the same file: the file holds only refusals, and says it can be removed.
    again = infer(openai_server, dataset, tmp_path / "a.jsonl", "--token-limit-field", "max_completion_tokens")
    assert again.returncode == 1 and "generation.token_limit_field" in again.stderr
    assert "holds no response yet, only failed requests: remove it" in again.stderr

    openai_server.reset()
    openai_server.reasoning_model = True
    second = infer(openai_server, dataset, tmp_path / "b.jsonl", "--token-limit-field", "max_completion_tokens")
    assert second.returncode == 1
    assert "Unsupported value: 'temperature' does not support 0.7" in second.stderr
    assert "pass --temperature default" in second.stderr
    assert all(
        "max_completion_tokens" in r.body and "max_tokens" not in r.body for r in openai_server.completion_requests()
    )

    openai_server.reset()
    openai_server.reasoning_model = True
    remote = ["--token-limit-field", "max_completion_tokens", "--temperature", "default", "--reasoning-effort", "low"]
    third = infer(openai_server, dataset, tmp_path / "c.jsonl", *remote, "--max-tokens", "333")
    assert third.returncode == 0, third.stderr
    assert good(tmp_path / "c.jsonl") == 12 * 2
    bodies = [r.body for r in openai_server.completion_requests()]
    assert len(bodies) == 12
    for body in bodies:
        assert body["max_completion_tokens"] == 333 and body["reasoning_effort"] == "low"
        assert "max_tokens" not in body and "temperature" not in body
    generation = lines(tmp_path / "c.jsonl")[0]["generation"]
    assert generation["temperature"] is None and generation["reasoning_effort"] == "low"
    assert generation["token_limit_field"] == "max_completion_tokens" and generation["max_tokens"] == 333


def test_a_provider_without_n_still_gets_samples_one_by_one_with_remote_parameters(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.max_n = 1
    openai_server.reasoning_model = True
    remote = ["--token-limit-field", "max_completion_tokens", "--temperature", "default"]
    result = infer(openai_server, dataset_file(count=3), tmp_path / "out.jsonl", *remote, k=3)
    assert result.returncode == 0, result.stderr
    assert "one by one" in result.stderr
    assert good(tmp_path / "out.jsonl") == 9
    answered = openai_server.answered()
    assert len(answered) == 9 and all(r.n == 1 and "max_completion_tokens" in r.body for r in answered)


def test_extra_body_refused_by_a_strict_provider_names_the_flag(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.strict_fields = True
    result = infer(openai_server, dataset_file(count=12), tmp_path / "out.jsonl", "--extra-body", QWEN_NO_THINKING)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Unrecognized request argument supplied: chat_template_kwargs" in result.stderr
    assert "the server refuses `chat_template_kwargs` from --extra-body: remove it from --extra-body" in result.stderr


def test_extra_body_arrives_and_is_part_of_the_files_identity(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    first = infer(openai_server, dataset, out, "--extra-body", QWEN_NO_THINKING, k=2)
    assert first.returncode == 0, first.stderr
    bodies = [r.body for r in openai_server.completion_requests()]
    assert len(bodies) == 3
    assert all(body["chat_template_kwargs"] == {"enable_thinking": False} for body in bodies)
    assert lines(out)[0]["generation"]["extra_body"] == {"chat_template_kwargs": {"enable_thinking": False}}
    before = out.read_bytes()

    openai_server.reset()
    other = infer(openai_server, dataset, out, "--extra-body", '{"chat_template_kwargs": {"enable_thinking": true}}')
    assert other.returncode == 1 and "made with other settings" in other.stderr
    assert "generation.extra_body" in other.stderr and "--extra-body" in other.stderr
    none = infer(openai_server, dataset, out)
    assert none.returncode == 1 and "generation.extra_body: the file has" in none.stderr
    assert openai_server.completion_requests() == [] and out.read_bytes() == before

    # The same object (spelled differently) resumes: a larger --k asks only for the extra sample.
    same = infer(
        openai_server, dataset, out, "--extra-body", '{ "chat_template_kwargs" : {"enable_thinking":false} }', k=3
    )
    assert same.returncode == 0, same.stderr
    requests = openai_server.completion_requests()
    assert len(requests) == 3 and all(r.n == 1 and r.body["chat_template_kwargs"] for r in requests)
    assert good(out) == 9


def test_a_file_from_before_these_settings_resumes_at_their_defaults(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=2)
    out = tmp_path / "out.jsonl"
    assert infer(openai_server, dataset, out, k=1).returncode == 0
    old = []
    for record in lines(out):  # as an older collect wrote it: no token_limit_field, reasoning_effort, extra_body
        for key in ("token_limit_field", "reasoning_effort", "extra_body"):
            del record["generation"][key]
        old.append(json.dumps(record))
    out.write_text("\n".join(old) + "\n")
    openai_server.reset()
    refused = infer(openai_server, dataset, out, "--reasoning-effort", "high", k=2)
    assert (
        refused.returncode == 1 and "generation.reasoning_effort: the file has None, this run 'high'" in refused.stderr
    )
    assert openai_server.completion_requests() == []
    resumed = infer(openai_server, dataset, out, k=2)
    assert resumed.returncode == 0, resumed.stderr
    assert len(openai_server.completion_requests()) == 2 and good(out) == 4


def test_a_bad_extra_body_is_one_line_naming_the_flag_before_any_request(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    result = infer(openai_server, dataset_file(count=2), out, "--extra-body", '{"chat_template_kwargs": {enable}}')
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "invalid --extra-body / COLLECT_EXTRA_BODY" in result.stderr and "not JSON (" in result.stderr
    reserved = infer(openai_server, dataset_file(count=2), out, "--extra-body", '{"n": 8}')
    assert reserved.returncode == 1 and "may not set 'n'" in reserved.stderr
    assert openai_server.all_requests() == [] and not out.exists()
