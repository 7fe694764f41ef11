"""`collect serve --replicas 2` against a real vLLM (CPU build): two servers on two ports, one infer over both,
one stop.

No GPU is needed to test the process handling: each replica still gets its own CUDA_VISIBLE_DEVICES (ignored by
the CPU build) and its own process group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.vllm.conftest import MAX_MODEL_LEN, SERVED_NAME
from tests.vllm.serve_helpers import free_port, group_members

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SERVE_TIMEOUT = 400.0


def _state(state_dir: Path) -> dict[int, dict[str, Any]]:
    path = state_dir / "servers.json"
    if not path.exists():
        return {}
    return {entry["port"]: entry for entry in json.loads(path.read_text())["servers"]}


def _two_free_ports() -> int:
    """The first of two consecutive free ports on 127.0.0.1."""
    for _ in range(100):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two consecutive free ports")


def test_two_replicas_serve_on_two_ports_infer_uses_each_and_stop_ends_both(
    cli: Callable[..., subprocess.CompletedProcess[str]], vllm_command: str, tiny_model: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    port = _two_free_ports()
    args = ["serve", "--model", str(tiny_model), "--port", str(port), "--replicas", "2"]
    args += ["--vllm-command", vllm_command, "--max-model-len", str(MAX_MODEL_LEN)]
    args += ["--serve-timeout", str(SERVE_TIMEOUT), "--", "--served-model-name", SERVED_NAME, "--max-num-seqs", "4"]
    try:
        result = cli(args, timeout=SERVE_TIMEOUT + 120)

        assert result.returncode == 0, result.stderr[-4000:]
        urls = [f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port + 1}/v1"]
        assert f"api bases: --api-base {urls[0]} --api-base {urls[1]}" in result.stdout
        assert f'endpoints = ["{urls[0]}", "{urls[1]}"]' in result.stdout
        state = _state(state_dir)
        assert sorted(state) == [port, port + 1]
        assert state[port]["pgid"] != state[port + 1]["pgid"]
        for index, url in enumerate(urls):
            entry = state[port + index]
            assert (entry["replica"], entry["replicas"], entry["group"]) == (index, 2, port)
            assert entry["devices"] == str(index)
            assert len(group_members(entry["pgid"])) >= 2  # the API server and its engine process
            models = httpx.get(f"{url}/models", timeout=30)
            assert [model["id"] for model in models.json()["data"]] == [SERVED_NAME]
            completion = httpx.post(
                f"{url}/completions", json={"model": SERVED_NAME, "prompt": "1 + 1 =", "max_tokens": 4}, timeout=120
            )
            assert completion.status_code == 200, completion.text
            assert completion.json()["choices"][0]["finish_reason"] in ("length", "stop")

        # one infer over both endpoints, as `serve` printed them: the requests are spread over the two replicas
        output = tmp_path / "replicas.jsonl"
        infer = ["infer", "--dataset", "sample", "--num-problems", "8", "--k", "1", "--max-tokens", "16"]
        infer += ["--api-base", urls[0], "--api-base", urls[1], "--model", SERVED_NAME, "--output-file", str(output)]
        infer += ["--max-concurrent", "2"]
        ran = cli(infer, timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        records = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
        assert len(records) == 8 and all(r["responses"][0]["error"] is None for r in records)
        assert {r["api_base"] for r in records} == set(urls)  # both replicas answered
        for url in urls:
            assert f"endpoint {url}: " in ran.stderr  # the summary's line per endpoint

        status = cli(["serve", "status"])
        rows = [line.split() for line in status.stdout.splitlines()[1:]]
        assert [(row[0], row[3], row[6]) for row in rows] == [
            (str(port), "running", "0/2"),
            (str(port + 1), "running", "1/2"),
        ]

        stop = cli(["serve", "stop", "--port", str(port)])  # the set stops as a whole

        assert stop.returncode == 0, stop.stderr
        assert all(group_members(entry["pgid"]) == [] for entry in state.values())
        assert _state(state_dir) == {}
        for replica_port in (port, port + 1):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", replica_port))  # the port is free again
    finally:
        cli(["serve", "stop", "--all", "--grace", "10"], timeout=120)
        for entry in _state(state_dir).values():  # only if stop failed: never leave a server behind
            if group_members(entry["pgid"]):
                os.killpg(entry["pgid"], signal.SIGKILL)
