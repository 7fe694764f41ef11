"""`collect serve` against a real vLLM (CPU build) serving a tiny model: start, infer, status, logs, stop."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.vllm.conftest import MAX_MODEL_LEN, SERVED_NAME
from tests.vllm.serve_helpers import cli_env, free_port, group_members, run_cli

# Starting two vLLMs can outlast pytest-timeout's default on a slow runner; SERVE_TIMEOUT bounds it instead.
pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

API_KEY = "sk-serve-test-7f3a9c"
SERVE_TIMEOUT = 300.0


def _state(state_dir: Path) -> dict[int, dict[str, Any]]:
    path = state_dir / "servers.json"
    if not path.exists():
        return {}
    return {entry["port"]: entry for entry in json.loads(path.read_text())["servers"]}


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- start-up failures (no server comes up) ----------------------------------------------------------------


def test_startup_crash_fails_fast_with_the_cause_first(
    cli: Callable[..., subprocess.CompletedProcess[str]], vllm_command: str, tiny_model: Path, tmp_path: Path
) -> None:
    port = free_port()

    started = time.monotonic()
    args = ["serve", "--model", str(tiny_model), "--port", str(port), "--vllm-command", vllm_command]
    result = cli([*args, "--serve-timeout", "900", "--", "--tensor-paralel-size", "1"])  # a typo vLLM refuses
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert elapsed < 450, "waited for the timeout instead of noticing that vLLM exited"
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "vLLM exited with code 2" in first and "unrecognized arguments: --tensor-paralel-size" in first
    assert "misspelled or unknown to this vLLM version" in result.stderr
    assert "[--tensor-parallel-size" not in result.stderr  # vLLM's long usage text stays in the log
    assert "rerun by hand" in result.stderr and "vllm.entrypoints.openai.api_server" in result.stderr
    assert "Traceback (most recent call last)" not in result.stderr
    assert _state(tmp_path / "state") == {}


def test_a_context_longer_than_the_model_allows_is_named_in_the_first_line(
    cli: Callable[..., subprocess.CompletedProcess[str]], vllm_command: str, tiny_model: Path, tmp_path: Path
) -> None:
    args = ["serve", "--model", str(tiny_model), "--port", str(free_port()), "--vllm-command", vllm_command]

    result = cli([*args, "--max-model-len", "100000"])  # the tiny model has 2048 positions

    assert result.returncode == 1
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    # vLLM's pydantic error puts the reason on the line after "1 validation error for ModelConfig".
    assert "validation error for ModelConfig: " in first and "max_model_len (100000)" in first
    assert _state(tmp_path / "state") == {}


def test_a_folder_that_is_not_a_model_fails_at_once(
    cli: Callable[..., subprocess.CompletedProcess[str]], vllm_command: str, tmp_path: Path
) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "README.md").write_text("no config.json here\n")
    args = ["serve", "--model", str(not_a_model), "--port", str(free_port()), "--vllm-command", vllm_command]

    result = cli(args)
    missing = cli(["serve", "--model", str(tmp_path / "no-such-model"), "--vllm-command", vllm_command])

    assert result.returncode == 1 and "is a folder without config.json" in result.stderr
    assert missing.returncode == 1 and "no-such-model: no such file or folder" in missing.stderr
    assert not (tmp_path / "state" / "logs").exists()  # vLLM was never started


def test_port_in_use_starts_nothing(
    cli: Callable[..., subprocess.CompletedProcess[str]], vllm_command: str, tiny_model: Path, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli(["serve", "--model", str(tiny_model), "--port", str(port), "--vllm-command", vllm_command])

    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert _state(tmp_path / "state") == {}
    assert not (tmp_path / "state" / "logs").exists()  # no vLLM was launched


# --- two servers started at once by two `collect serve` commands ------------------------------------------


@dataclass
class Started:
    """Two servers started in parallel: `keyed` needs API_KEY, `plain` needs no key."""

    state_dir: Path
    base: Path
    keyed_port: int
    plain_port: int
    results: dict[int, subprocess.CompletedProcess[str]]
    seconds: float


@pytest.fixture(scope="module")
def started(vllm_command: str, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """`collect serve` twice at the same time (one with --api-key via COLLECT_API_KEY); all stopped after."""
    base = tmp_path_factory.mktemp("serve")
    state_dir = base / "state"
    keyed_port = free_port()
    plain_port = free_port()
    while plain_port == keyed_port:
        plain_port = free_port()
    commands = {}
    for port in (keyed_port, plain_port):
        args = ["serve", "--model", str(tiny_model), "--port", str(port), "--vllm-command", vllm_command]
        args += ["--max-model-len", str(MAX_MODEL_LEN), "--serve-timeout", str(SERVE_TIMEOUT)]
        args += ["--", "--served-model-name", SERVED_NAME, "--max-num-seqs", "8"]
        extra_env = {"COLLECT_API_KEY": API_KEY} if port == keyed_port else {}
        commands[port] = subprocess.Popen(
            [sys.executable, "-m", "llmrouter_collect", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(state_dir, **extra_env),
            cwd=base,
        )
    began = time.monotonic()
    results: dict[int, subprocess.CompletedProcess[str]] = {}
    try:
        for port, process in commands.items():
            # communicate() returns only once the pipes close: the detached server must not hold them.
            out, err = process.communicate(timeout=SERVE_TIMEOUT + 60)
            results[port] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
        yield Started(state_dir, base, keyed_port, plain_port, results, time.monotonic() - began)
    finally:
        for process in commands.values():
            if process.poll() is None:
                process.kill()
        run_cli(["serve", "stop", "--all", "--grace", "10"], cli_env(state_dir), base, timeout=120)
        for entry in _state(state_dir).values():  # only if stop failed: never leave a server behind
            with_group = group_members(entry["pgid"])
            if with_group:
                os.killpg(entry["pgid"], signal.SIGKILL)


def test_both_servers_start_and_are_recorded(started: Started) -> None:
    for port, result in started.results.items():
        assert result.returncode == 0, f"port {port}:\n{result.stderr[-4000:]}"
        assert f"vLLM is ready: http://127.0.0.1:{port}/v1" in result.stdout
        assert f"(model {SERVED_NAME})" in result.stdout

    state = _state(started.state_dir)
    assert set(state) == {started.keyed_port, started.plain_port}
    for port, entry in state.items():
        assert entry["url"] == f"http://127.0.0.1:{port}/v1"
        assert entry["pgid"] == entry["pid"]  # its own process group
        assert entry["served_models"] == [SERVED_NAME]
        argv = entry["argv"]
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
        assert argv[argv.index("--max-model-len") + 1] == str(MAX_MODEL_LEN)
        assert "--enforce-eager" in argv
        assert argv[-4:] == ["--served-model-name", SERVED_NAME, "--max-num-seqs", "8"]  # passed unchanged
        assert Path(entry["log"]).exists()
        assert group_members(entry["pgid"])
    assert state[started.keyed_port]["api_key_set"] is True
    assert state[started.plain_port]["api_key_set"] is False

    # The key never lands in the state file, the logs, the output or the server's command line.
    keyed = state[started.keyed_port]
    assert API_KEY not in (started.state_dir / "servers.json").read_text()
    assert API_KEY not in Path(keyed["log"]).read_text(errors="replace")
    assert all(API_KEY not in r.stdout + r.stderr for r in started.results.values())
    assert API_KEY not in Path(f"/proc/{keyed['pid']}/cmdline").read_bytes().decode(errors="replace")


def test_the_suggested_infer_command_works_as_printed(started: Started, tmp_path: Path) -> None:
    ready = started.results[started.plain_port].stdout
    line = next(line for line in ready.splitlines() if line.startswith("next: collect infer "))
    assert f"--max-tokens {MAX_MODEL_LEN // 2}" in line  # infer's default 4096 would not fit the context
    output = tmp_path / "next.jsonl"
    args = shlex.split(line.removeprefix("next: collect "))
    args += ["--dataset", "sample", "--num-problems", "2", "--k", "1", "--output-file", str(output)]

    result = run_cli(args, cli_env(started.state_dir), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    assert len(records) == 2 and all(r["responses"][0]["error"] is None for r in records)


def test_status_and_logs(started: Started) -> None:
    env = cli_env(started.state_dir)
    status = run_cli(["serve", "status"], env, started.base)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if "running" in line]
    assert {line.split()[0] for line in lines} == {str(started.keyed_port), str(started.plain_port)}

    logs = run_cli(["serve", "logs", "--port", str(started.plain_port), "--lines", "400"], env, started.base)
    assert logs.returncode == 0, logs.stderr
    assert "GET /v1/models" in logs.stdout  # vLLM's access log of the readiness checks

    ambiguous = run_cli(["serve", "logs"], env, started.base)
    assert ambiguous.returncode == 1 and "choose one with --port" in ambiguous.stderr


def test_second_server_on_a_recorded_port_is_refused(started: Started, tiny_model: Path, vllm_command: str) -> None:
    result = run_cli(
        ["serve", "--model", str(tiny_model), "--port", str(started.plain_port), "--vllm-command", vllm_command],
        cli_env(started.state_dir),
        started.base,
    )
    assert result.returncode == 1
    assert f"already runs on port {started.plain_port}" in result.stderr
    assert len(_state(started.state_dir)) == 2


def test_api_key_protects_the_server(started: Started) -> None:
    url = f"http://127.0.0.1:{started.keyed_port}/v1/models"
    assert httpx.get(url, timeout=10).status_code == 401
    answer = httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert answer.status_code == 200
    assert [model["id"] for model in answer.json()["data"]] == [SERVED_NAME]


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_infer_against_the_served_model(started: Started, endpoint: str, tmp_path: Path) -> None:
    output = tmp_path / f"results-{endpoint}.jsonl"
    args = ["infer", "--dataset", "sample", "--num-problems", "3", "--k", "2", "--max-tokens", "16"]
    args += ["--temperature", "1.0", "--api-base", f"http://127.0.0.1:{started.keyed_port}/v1"]
    args += ["--model", SERVED_NAME, "--endpoint", endpoint, "--output-file", str(output)]
    result = run_cli(
        args,
        cli_env(started.state_dir, COLLECT_API_KEY=API_KEY),  # the same key the server was started with
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    records = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    assert len(records) == 3
    assert len({record["unique_id"] for record in records}) == 3
    for record in records:
        assert record["model"] == SERVED_NAME
        assert record["endpoint"] == endpoint
        assert len(record["responses"]) == 2
        for response in record["responses"]:
            assert response["error"] is None
            assert isinstance(response["full_response"], str)
            assert response["obtained_via"] == "n=2"  # vLLM answered both samples in one request
    assert API_KEY not in output.read_text()


def test_infer_with_max_tokens_beyond_the_context_stops_early_and_says_why(started: Started, tmp_path: Path) -> None:
    output = tmp_path / "too-long.jsonl"
    args = ["infer", "--dataset", "sample", "--num-problems", "30", "--k", "2", "--max-tokens", str(4 * MAX_MODEL_LEN)]
    args += ["--api-base", f"http://127.0.0.1:{started.plain_port}/v1", "--model", SERVED_NAME]
    result = run_cli([*args, "--output-file", str(output)], cli_env(started.state_dir), tmp_path)

    assert result.returncode == 1
    assert "--max-tokens" in result.stderr and str(MAX_MODEL_LEN) in result.stderr  # names the flag and the limit
    assert "Traceback" not in result.stderr
    written = output.read_text().splitlines() if output.exists() else []
    assert len(written) < 30  # it stopped instead of failing every problem


def test_stop_of_a_server_that_died(started: Started) -> None:
    entry = _state(started.state_dir)[started.plain_port]
    os.killpg(entry["pgid"], signal.SIGKILL)  # it dies behind collect's back
    assert _wait_group_gone(entry["pgid"])
    env = cli_env(started.state_dir)

    status = run_cli(["serve", "status"], env, started.base)
    assert any(line.startswith(str(started.plain_port)) and "exited" in line for line in status.stdout.splitlines())

    stop = run_cli(["serve", "stop", "--port", str(started.plain_port)], env, started.base)
    assert stop.returncode == 0, stop.stderr
    assert "had already exited" in stop.stderr
    assert started.plain_port not in _state(started.state_dir)
    assert started.keyed_port in _state(started.state_dir)  # the other server is untouched
    assert group_members(_state(started.state_dir)[started.keyed_port]["pgid"])


def test_stop_leaves_no_process(started: Started) -> None:
    entry = _state(started.state_dir)[started.keyed_port]
    assert len(group_members(entry["pgid"])) >= 2  # the API server and its engine process

    stop = run_cli(["serve", "stop"], cli_env(started.state_dir), started.base)  # the only one left

    assert stop.returncode == 0, stop.stderr
    assert f"stopped the server on port {started.keyed_port}" in stop.stderr
    assert group_members(entry["pgid"]) == []
    assert _state(started.state_dir) == {}
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", started.keyed_port))  # the port is free again
    again = run_cli(["serve", "stop"], cli_env(started.state_dir), started.base)
    assert again.returncode == 0 and "no server is running: nothing to stop" in again.stderr  # clean-up scripts go on
