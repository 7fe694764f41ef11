"""`collect infer --fleet` end to end: two models on two test servers, each into its own exact results file, each
request to its own server with its own key and settings; kill -9 of the whole command and a rerun; one model
refused while the other finishes; `report --prices fleet.toml`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fakes.openai_server import OpenAIServer
from tests.integration.test_infer import records, wait_for_lines
from tests.integration.test_resume_trust import assert_complete

from llmrouter_collect.store import scan

ALPHA_KEY = "sk-alpha-SECRET-5b1e77"
WRONG_KEY = "sk-wrong-SECRET-91c0aa"


@pytest.fixture
def servers() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    """`alpha` behind a key, `beta` without one: two servers, two models."""
    alpha = OpenAIServer(["alpha"], api_key=ALPHA_KEY).start()
    beta = OpenAIServer(["beta"]).start()
    try:
        yield alpha, beta
    finally:
        alpha.stop()
        beta.stop()


def write_fleet(path: Path, alpha: OpenAIServer, beta: OpenAIServer, dataset: Path, k: int = 2) -> Path:
    path.write_text(
        f"""
[defaults]
dataset = "{dataset}"
k_responses = {k}
output_dir = "results"
initial_retry_delay = 0
max_retry_delay = 0.05

[[models]]
name = "alpha"
endpoints = ["{alpha.url}"]
api_key_env = "ALPHA_KEY"
max_concurrent = 2
max_tokens = 300
price = {{ input = 1.0, output = 2.0 }}

[[models]]
name = "beta"
endpoints = ["{beta.url}"]
max_concurrent = 3
max_tokens = 200
temperature = 0.5
""",
        encoding="utf-8",
    )
    return path


def cli_env(key: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "ALPHA_KEY": key}


def run(*args: str, key: str = ALPHA_KEY) -> subprocess.CompletedProcess[str]:
    """`collect ARGS` to its end, with alpha's key (or `key`) in ALPHA_KEY."""
    command = [sys.executable, "-m", "llmrouter_collect", *args]
    return subprocess.run(command, capture_output=True, text=True, env=cli_env(key), timeout=120)


def start(*args: str) -> subprocess.Popen[str]:
    """`collect ARGS` in the background (stderr captured)."""
    command = [sys.executable, "-m", "llmrouter_collect", *args]
    env = cli_env(ALPHA_KEY)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def assert_no_secret(directory: Path, *texts: str, secret: str = ALPHA_KEY) -> None:
    for text in texts:
        assert secret not in text
    for path in directory.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_two_models_on_two_servers_write_two_exact_files(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=5), k=3)
    result = run("infer", "--fleet", str(fleet))
    assert result.returncode == 0, result.stderr
    for name, server, max_tokens in (("alpha", alpha, 300), ("beta", beta, 200)):
        out = tmp_path / "results" / f"{name}_problems.jsonl"
        assert_complete(out, 5, 3)
        assert {record["model"] for record in records(out).values()} == {name}
        requests = server.completion_requests()
        assert len(requests) == 5 and all(r.body["model"] == name for r in requests)  # each to its own server
        assert {r.body["max_tokens"] for r in requests} == {max_tokens}  # each with its own settings
        assert f"model     {name}" in result.stderr and f"output    results/{name}_problems.jsonl" in result.stderr
    assert {r.authorization for r in alpha.all_requests()} == {f"Bearer {ALPHA_KEY}"}
    assert {r.authorization for r in beta.all_requests()} == {None}  # alpha's key never goes to beta's server
    assert {r.body["temperature"] for r in beta.completion_requests()} == {0.5}
    summary = result.stderr[result.stderr.index("fleet") :]
    assert "alpha" in summary and "beta" in summary and summary.count(" ok") == 2
    assert_no_secret(tmp_path, result.stdout, result.stderr)


def test_kill_9_of_the_whole_fleet_then_a_rerun_completes_both_files(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    alpha.latency = beta.latency = 0.3
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=12))
    outs = {name: tmp_path / "results" / f"{name}_problems.jsonl" for name in ("alpha", "beta")}
    proc = start("infer", "--fleet", str(fleet))
    for out in outs.values():
        wait_for_lines(out, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = {name: scan(out) for name, out in outs.items()}
    for state in saved.values():
        assert 2 <= len(state.problems) < 12  # both were in flight when the whole command was killed
    alpha.reset()
    beta.reset()
    alpha.api_key = ALPHA_KEY
    result = run("infer", "--fleet", str(fleet))
    assert result.returncode == 0, result.stderr
    for (name, out), server in zip(outs.items(), (alpha, beta), strict=True):
        assert_complete(out, 12, 2)  # nothing lost, nothing twice
        assert len(server.completion_requests()) == 12 - len(saved[name].problems)  # only what was missing
    assert_no_secret(tmp_path, result.stdout, result.stderr)


def test_sigterm_stops_every_model_cleanly(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    alpha.latency = beta.latency = 0.3
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=12))
    outs = [tmp_path / "results" / f"{name}_problems.jsonl" for name in ("alpha", "beta")]
    proc = start("infer", "--fleet", str(fleet))
    for out in outs:
        wait_for_lines(out, 2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert "interrupted; every finished response of every model is saved" in stderr and "Traceback" not in stderr
    for out in outs:
        state = scan(out)
        assert 2 <= len(state.problems) < 12 and all(st.good == 2 for st in state.problems.values())
    alpha.latency = beta.latency = 0
    result = run("infer", "--fleet", str(fleet))  # the locks were released
    assert result.returncode == 0, result.stderr
    for out in outs:
        assert_complete(out, 12, 2)


def test_a_refused_model_does_not_stop_the_other(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=4))
    result = run("infer", "--fleet", str(fleet), key=WRONG_KEY)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: alpha: " in result.stderr and "401" in result.stderr
    assert "check the key in ALPHA_KEY" in result.stderr  # the hint names the variable, not --api-key
    assert "error" in result.stderr[result.stderr.index("fleet") :]  # the summary table says which model failed
    assert_complete(tmp_path / "results" / "beta_problems.jsonl", 4, 2)
    assert not (tmp_path / "results" / "alpha_problems.jsonl").exists()  # a refused run leaves no empty file
    assert_no_secret(tmp_path, result.stdout, result.stderr, secret=WRONG_KEY)


def test_a_missing_key_variable_is_one_line_and_nothing_is_sent(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=2))
    result = run("infer", "--fleet", str(fleet), key="")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"error: {fleet}, model 'alpha': api_key_env names ALPHA_KEY, which is not set"
    )
    assert "Traceback" not in result.stderr and not alpha.all_requests() and not beta.all_requests()
    assert not (tmp_path / "results").exists()


def test_dry_run_prints_every_plan_and_writes_nothing(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=3))
    result = run("infer", "--fleet", str(fleet), "--dry-run")
    assert result.returncode == 0, result.stderr
    for name, server in (("alpha", alpha), ("beta", beta)):
        assert f"model     {name}" in result.stderr and f"endpoint  {server.url} (chat)" in result.stderr
        assert not server.completion_requests()
    assert result.stderr.count("3 problems × k=2 = 6 responses") == 2
    assert not (tmp_path / "results").exists()


def test_repeated_model_flags_share_one_endpoint(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    with OpenAIServer(["one", "two"]) as server:
        dataset = dataset_file(count=3)
        args = ["infer", "--dataset", str(dataset), "--k", "2", "--api-base", server.url, "--output-dir", "out"]
        result = run(*args, "--model", "one", "--model", "two")
        assert result.returncode == 0, result.stderr
        for name in ("one", "two"):
            assert_complete(tmp_path / "out" / f"{name}_problems.jsonl", 3, 2)
        assert sorted(r.body["model"] for r in server.completion_requests()) == ["one"] * 3 + ["two"] * 3


def test_report_prices_reads_the_fleet_file(
    servers: tuple[OpenAIServer, OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    alpha, beta = servers
    fleet = write_fleet(tmp_path / "fleet.toml", alpha, beta, dataset_file(count=4))
    assert run("infer", "--fleet", str(fleet)).returncode == 0
    assert run("extract", "results").returncode == 0
    result = run("report", "results", "--prices", str(fleet), "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    models = {model["model"]: model["overall"] for model in report["models"]}
    alpha_stats = models["alpha"]
    expected = (alpha_stats["prompt_tokens_total"] * 1.0 + alpha_stats["completion_tokens_total"] * 2.0) / 1e6
    assert alpha_stats["cost_total"] == pytest.approx(expected) and expected > 0
    assert models["beta"]["cost_total"] is None and report["unpriced"] == ["beta"]
