"""`collect infer` end to end, as a subprocess, against the OpenAI-compatible test server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.openai_server import (
    Delay,
    Drop,
    FailAfter,
    FewerChoices,
    OpenAIServer,
    RejectN,
    Status,
)
from tests.vllm.serve_helpers import sigint_default

from llmrouter_collect.store import iter_records, scan

FAST = ["--initial-retry-delay", "0", "--max-retry-delay", "0.05"]


def run_cli(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `collect ARGS` as a user would, in the test's working directory."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def infer_args(server: OpenAIServer, dataset: Path, out: Path, *extra: str, k: int = 3) -> list[str]:
    return [
        "infer",
        "--dataset",
        str(dataset),
        "--k",
        str(k),
        "--api-base",
        server.url,
        "--output-file",
        str(out),
        *FAST,
        *extra,
    ]


def start_cli(args: list[str], *, sigint: Callable[[], None] | None = sigint_default) -> subprocess.Popen[str]:
    """Start `collect ARGS` in the background (stderr captured, for `communicate`).

    `sigint` runs in the child before `collect` starts: by default it gives SIGINT its default handler back, so
    that Ctrl-C tests also work when the test run itself was started with SIGINT ignored (in the background).
    """
    return subprocess.Popen(
        [sys.executable, "-m", "llmrouter_collect", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint,
    )


def wait_for_lines(path: Path, count: int, timeout: float = 30) -> None:
    """Wait until `path` holds at least `count` complete lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not path.exists() or path.read_bytes().count(b"\n") < count):
        time.sleep(0.02)


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in iter_records(path)}


def summary_counts(stderr: str) -> dict[str, int]:
    """The problem counts of the closing summary line ("done 3 · already done 0 · failed 1 · ...")."""
    line = next(line for line in stderr.splitlines() if line.startswith("done "))
    counts = {}
    for part in line.split(" · "):
        match = re.fullmatch(r"([a-z ]+?) (\d+)", part.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def good_texts(record: dict[str, Any]) -> list[str]:
    return [r["full_response"] for r in record["responses"] if r["error"] is None]


def test_k_samples_land_with_one_request_per_problem(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=6)
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset, out, k=4))
    assert result.returncode == 0, result.stderr
    requests = openai_server.completion_requests()
    assert len(requests) == 6 and all(r.n == 4 for r in requests)
    got = records(out)
    assert len(got) == 6 and len(out.read_text().splitlines()) == 6
    for record in got.values():
        assert len(record["responses"]) == 4
        assert [r["index"] for r in record["responses"]] == [0, 1, 2, 3]
        assert all(r["full_response"] and r["finish_reason"] == "stop" for r in record["responses"])
        assert all(r["obtained_via"] == "n=4" and r["usage"]["completion_tokens"] > 0 for r in record["responses"])
        # A run in which no request failed uses no attempt.
        assert record["model"] == "test-model" and record["attempts"] == 0 and record["schema_version"] == 1
        assert record["generation"]["stop"][:3] == ["<end_of_turn>", "<|im_end|>", "<|eot_id|>"]
    assert "done 6" in result.stderr
    # Running it again sends nothing.
    again = run_cli(infer_args(openai_server, dataset, out, k=4))
    assert again.returncode == 0, again.stderr
    assert len(openai_server.completion_requests()) == 6
    assert "already done 6" in again.stderr


def test_completions_endpoint(openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=2), out, "--endpoint", "completions", k=2))
    assert result.returncode == 0, result.stderr
    assert {r.path for r in openai_server.completion_requests()} == {"/v1/completions"}
    assert all(len(good_texts(r)) == 2 for r in records(out).values())


def test_kill_9_then_resume_sends_only_missing_requests(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=40)
    out = tmp_path / "out.jsonl"
    openai_server.latency = 0.1
    proc = start_cli([*infer_args(openai_server, dataset, out, "--max-concurrent", "4")])
    wait_for_lines(out, 12, timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first_lines = out.read_bytes().count(b"\n")
    assert 12 <= first_lines < 40
    # A crash mid-write leaves a torn last line: it must be tolerated.
    with out.open("ab") as handle:
        handle.write(b'{"unique_id": "open/algebra/1", "resp')
    done_before = {uid for uid, st in scan(out).problems.items() if st.good == 3}
    assert len(done_before) >= 10
    questions = {row["unique_id"]: row["question"] for row in map(json.loads, dataset.read_text().splitlines())}
    openai_server.reset()
    openai_server.latency = 0.0

    result = run_cli(infer_args(openai_server, dataset, out))
    assert result.returncode == 0, result.stderr
    assert "incomplete last line" in result.stderr
    second = openai_server.completion_requests()
    asked = [
        uid
        for r in second
        for uid, q in questions.items()
        if f"Question: {q}\n" in r.prompt or r.prompt.endswith(f"Problem: {q}")
    ]
    assert len(asked) == len(second)  # every request maps to exactly one problem
    assert sorted(asked) == sorted(set(questions) - done_before)  # only the missing ones, each once
    final = records(out)
    assert len(final) == 40 and len(out.read_text().splitlines()) == 40  # compacted, no duplicates
    for uid, record in final.items():
        assert len(good_texts(record)) == 3, uid
        assert [r["index"] for r in record["responses"]] == [0, 1, 2]


def test_top_up_asks_only_for_missing_samples(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=5)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    openai_server.reset()
    result = run_cli(infer_args(openai_server, dataset, out, k=5))
    assert result.returncode == 0, result.stderr
    assert [r.n for r in openai_server.completion_requests()] == [3] * 5
    final = records(out)
    assert all(len(r["responses"]) == 5 for r in final.values())
    assert all([x["index"] for x in r["responses"]] == [0, 1, 2, 3, 4] for r in final.values())
    assert len(out.read_text().splitlines()) == 5


def test_a_resume_that_sends_nothing_leaves_the_file_as_it_was(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=6)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    stat = out.stat()
    before = (stat.st_ino, stat.st_size, stat.st_mtime_ns, out.read_bytes())
    openai_server.reset()
    result = run_cli(infer_args(openai_server, dataset, out, k=2))
    assert result.returncode == 0, result.stderr
    assert openai_server.completion_requests() == []
    stat = out.stat()
    assert (stat.st_ino, stat.st_size, stat.st_mtime_ns, out.read_bytes()) == before  # not rewritten


def test_resume_with_other_settings_is_refused(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    before = out.read_bytes()
    openai_server.reset()
    result = run_cli(infer_args(openai_server, dataset, out, "--temperature", "1.3", k=2))
    assert result.returncode == 1
    assert "generation.temperature" in result.stderr and "--temperature" in result.stderr
    assert "--output-file" in result.stderr and "Traceback" not in result.stderr
    assert openai_server.completion_requests() == []
    assert out.read_bytes() == before


def test_bad_dataset_row_is_reported_before_any_request(
    openai_server: OpenAIServer,
    dataset_file: Callable[..., Path],
    make_problem_rows: Callable[[int], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    rows = make_problem_rows(4)
    rows[2]["choice_index_correct"] = 9
    dataset = dataset_file(rows=rows)
    result = run_cli(infer_args(openai_server, dataset, tmp_path / "out.jsonl"))
    assert result.returncode == 1
    assert "problems.jsonl" in result.stderr and "3" in result.stderr and "choice_index_correct" in result.stderr
    assert "Traceback" not in result.stderr
    assert openai_server.all_requests() == []


def test_no_server_suggests_collect_serve(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    result = run_cli(["infer", "--dataset", str(dataset_file(count=2)), "--api-base", "http://127.0.0.1:9/v1", *FAST])
    assert result.returncode == 1
    assert "no server answers at http://127.0.0.1:9/v1" in result.stderr
    assert "collect serve" in result.stderr and "Traceback" not in result.stderr


def test_rate_limits_and_server_errors_are_retried(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.enqueue(Status(429, retry_after=0.01), Status(429, retry_after="0"), Status(503), Drop(), Status(500))
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=3), out, "--max-concurrent", "1", k=2))
    assert result.returncode == 0, result.stderr
    assert "retries 5" in result.stderr
    assert all(len(good_texts(r)) == 2 for r in records(out).values())


def test_failed_problem_is_recorded_and_retried_until_max_attempts(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=2)
    out = tmp_path / "out.jsonl"
    openai_server.set_mode(Status(500))
    args = infer_args(openai_server, dataset, out, "--max-retries", "1", "--max-attempts", "2", k=2)
    first = run_cli(args)
    assert first.returncode == 1 and "failed 2" in first.stderr
    assert "rerun the same command to retry them" in first.stderr and "out of attempts" not in first.stderr
    got = records(out)
    for record in got.values():
        assert record["attempts"] == 1
        assert [r["error"]["status"] for r in record["responses"]] == [500, 500]
        assert all(r["full_response"] is None for r in record["responses"])
    second = run_cli(args)  # the last attempt: a rerun would not retry them, so it must not say so
    assert second.returncode == 1
    assert all(r["attempts"] == 2 for r in records(out).values())
    assert "rerun the same command" not in second.stderr
    assert "2 problems are out of attempts" in second.stderr and "--max-attempts 3" in second.stderr
    openai_server.reset()
    third = run_cli(args)  # attempts used up: nothing is asked
    assert third.returncode == 1 and "out of attempts 2" in third.stderr
    assert "rerun the same command" not in third.stderr and "--max-attempts 3" in third.stderr
    assert openai_server.completion_requests() == []


def test_successful_retry_replaces_earlier_errors(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=2)
    out = tmp_path / "out.jsonl"
    openai_server.set_mode(Status(500))
    assert run_cli(infer_args(openai_server, dataset, out, "--max-retries", "0", k=2)).returncode == 1
    openai_server.set_mode(None)
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    for record in records(out).values():
        assert len(record["responses"]) == 2 and all(r["error"] is None for r in record["responses"])
        assert record["attempts"] == 1  # only the failed run used an attempt
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_not_found_stop_the_run_at_once(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path, status: int
) -> None:
    openai_server.set_mode(Status(status))
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=30), out, "--max-concurrent", "2"))
    assert result.returncode == 1
    assert f"HTTP {status}" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1
    assert len(openai_server.completion_requests()) <= 3


def test_wrong_key_message_and_key_never_written(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    secret = "sk-test-SECRET-123456"
    with OpenAIServer(api_key=secret) as server:
        out = tmp_path / "out.jsonl"
        bad = run_cli(infer_args(server, dataset_file(count=2), out, "--api-key", "wrong-key"))
        assert bad.returncode == 1 and "401" in bad.stderr and "--api-key" in bad.stderr
        assert "wrong-key" not in bad.stderr
        good = run_cli(infer_args(server, dataset_file(count=2), out), env={"COLLECT_API_KEY": secret})
        assert good.returncode == 0, good.stderr
        assert server.completion_requests()[-1].authorization == f"Bearer {secret}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in good.stderr + good.stdout


def test_server_that_rejects_n_gets_single_sample_requests(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.set_mode(RejectN())
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=4), out, k=3))
    assert result.returncode == 0, result.stderr
    assert "n=1" in result.stderr or "one by one" in result.stderr
    final = records(out)
    assert all(len(good_texts(r)) == 3 for r in final.values())
    vias = Counter(x["obtained_via"] for r in final.values() for x in r["responses"])
    assert vias["n=1"] >= 9  # the first problem may have been probed with n=3


def test_fewer_choices_are_topped_up(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.enqueue(FewerChoices(1))
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=1), out, k=4))
    assert result.returncode == 0, result.stderr
    assert [r.n for r in openai_server.completion_requests()] == [4, 3]
    record = next(iter(records(out).values()))
    assert [r["obtained_via"] for r in record["responses"]] == ["n=4", "n=3", "n=3", "n=3"]


def test_prompt_too_long_is_that_problems_error_and_run_goes_on(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    with OpenAIServer(prompt_too_long="hypotenuse") as server:
        out = tmp_path / "out.jsonl"
        result = run_cli(infer_args(server, dataset_file(count=6), out, k=2))
    assert result.returncode == 1 and "failed 1" in result.stderr and "done 5" in result.stderr
    bad = records(out)["open/geometry/1"]
    assert bad["responses"][0]["error"]["status"] == 400 and bad["attempts"] == 1


def test_server_going_away_does_not_use_attempts(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=10)
    out = tmp_path / "out.jsonl"
    url = openai_server.url
    openai_server.set_mode(FailAfter(3, then=Delay(0.3)))
    proc = start_cli([*infer_args(openai_server, dataset, out, "--max-concurrent", "1", "--max-retries", "2")])
    assert openai_server.wait_for(lambda s: len(s.completion_requests()) >= 4, timeout=20)
    openai_server.stop()  # the server dies mid-run
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "lost the server" in stderr and "rerun the same command" in stderr
    summary = summary_counts(stderr)  # every problem is counted once: done, failed or not asked
    assert sum(summary.get(key, 0) for key in ("done", "already done", "failed", "not asked")) == 10, stderr
    state = scan(out)
    assert 3 <= sum(1 for st in state.problems.values() if st.good == 3) < 10
    assert all(st.attempts == 0 for st in state.problems.values() if st.good == 0)
    assert url.startswith("http://127.0.0.1:")


def test_second_run_on_the_same_file_refuses_to_start(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=20)
    out = tmp_path / "out.jsonl"
    openai_server.latency = 0.2
    proc = start_cli([*infer_args(openai_server, dataset, out, "--max-concurrent", "1")])
    try:
        assert openai_server.wait_for(lambda s: len(s.completion_requests()) >= 1, timeout=20)
        second = run_cli(infer_args(openai_server, dataset, out))
        assert second.returncode == 1
        assert "another `collect infer` is writing" in second.stderr
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_stops_cleanly_with_exit_130(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    openai_server.latency = 0.2
    proc = start_cli([*infer_args(openai_server, dataset_file(count=30), out, "--max-concurrent", "2")])
    wait_for_lines(out, 2, timeout=20)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    written = len(list(iter_records(out)))
    assert written >= 1
    openai_server.latency = 0
    assert run_cli(infer_args(openai_server, dataset_file(count=30), out)).returncode == 0
    assert len(records(out)) == 30


def test_ctrl_c_works_when_collect_inherited_sigint_ignored(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    # `collect infer … &` and `nohup` start it with SIGINT ignored; a later `kill -INT` must still stop it cleanly.
    out = tmp_path / "out.jsonl"
    openai_server.latency = 0.2
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    proc = start_cli([*infer_args(openai_server, dataset_file(count=30), out, "--max-concurrent", "2")], sigint=ignore)
    wait_for_lines(out, 2, timeout=20)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr


def test_reasoning_content_is_kept(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    with OpenAIServer(reasoning=True) as server:
        out = tmp_path / "out.jsonl"
        assert run_cli(infer_args(server, dataset_file(count=1), out, k=2)).returncode == 0
    record = next(iter(records(out).values()))
    assert all(r["reasoning_content"] for r in record["responses"])


def test_meta_sidecar_records_settings_without_secrets(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    assert (
        run_cli(
            infer_args(openai_server, dataset_file(count=1), out, k=1), env={"COLLECT_API_KEY": "sk-zzz"}
        ).returncode
        == 0
    )
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["model"] == "test-model" and meta["k_responses"] == 1
    assert meta["dataset_fingerprint"].startswith("sha256:")
    assert "api_key" not in meta["settings"] and "sk-zzz" not in json.dumps(meta)


def test_dropped_connections_from_a_live_server_count_as_failures_not_an_outage(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.set_mode(Drop())
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=3), out, "--max-retries", "1", k=2))
    assert result.returncode == 1
    assert "failed 3" in result.stderr and "lost the server" not in result.stderr
    assert all(r["attempts"] == 1 for r in records(out).values())
    assert len(openai_server.completion_requests()) == 6  # every problem asked (1 retry each), none skipped


def test_old_underscore_flags_still_work(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=4)
    result = run_cli(
        ["infer", "--dataset", str(dataset), "--k_responses", "2", "--api_base", openai_server.url,
         "--num_problems", "3", "--output_dir", str(tmp_path / "res"), "--output_file", "old.jsonl",
         "--max_concurrent", "2", "--batch_size", "1", "--max_attempts", "2", "--max_tokens", "64"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = records(tmp_path / "res" / "old.jsonl")
    assert len(got) == 3 and all(len(r["responses"]) == 2 for r in got.values())
    assert all(r.body["max_tokens"] == 64 and r.n == 2 for r in openai_server.completion_requests())


def test_growing_the_subset_only_asks_the_new_problems(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=12)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, "--num-problems", "4", k=1)).returncode == 0
    first = set(records(out))
    assert len(first) == 4 and len({uid.split("/")[1] for uid in first}) >= 3  # spread over categories
    openai_server.reset()
    assert run_cli(infer_args(openai_server, dataset, out, "--num-problems", "7", k=1)).returncode == 0
    assert len(openai_server.completion_requests()) == 3
    assert first < set(records(out)) and len(records(out)) == 7


def test_a_run_whose_requests_are_all_refused_stops_early_and_says_why(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    message = "max_tokens=4096 cannot be greater than max_model_len=512."
    openai_server.set_mode(Status(400, body={"error": {"message": message, "type": "BadRequestError"}}))
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=60), out, "--max-concurrent", "2", k=1))
    assert result.returncode == 1
    assert "requests were all refused" in result.stderr and message in result.stderr
    assert "failed request(s): HTTP 400" in result.stderr and "not asked" in result.stderr
    assert len(openai_server.completion_requests()) < 20  # stopped early, not 60 refusals
    assert "Traceback" not in result.stderr


def test_a_rate_limit_pauses_every_request_not_just_the_one_that_got_it(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.latency = 0.05
    openai_server.enqueue(Status(429, retry_after=0.6))
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=12), out, "--max-concurrent", "3",
                                "--max-retry-delay", "5", k=1))  # fmt: skip
    assert result.returncode == 0, result.stderr
    requests = sorted(openai_server.completion_requests(), key=lambda r: r.time)
    limited = next(r for r in requests if r.status == 429)
    # The two requests already in flight may land; nothing new is sent during the server's Retry-After.
    during = [r for r in requests if limited.time + 0.1 < r.time < limited.time + 0.55]
    assert during == []
    assert len(requests) == 13 and len(records(out)) == 12


def test_max_tokens_beyond_the_served_context_is_refused_before_any_request(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    openai_server.max_model_len = 512
    out = tmp_path / "out.jsonl"
    result = run_cli(infer_args(openai_server, dataset_file(count=3), out, "--max-tokens", "4096"))
    assert result.returncode == 1
    assert "--max-tokens 4096 does not fit the context" in result.stderr and "512" in result.stderr
    assert openai_server.completion_requests() == [] and not out.exists()
    assert run_cli(infer_args(openai_server, dataset_file(count=3), out, "--max-tokens", "256")).returncode == 0
