"""`collect serve` with a stand-in for vLLM: a small Python program that serves /v1/models, crashes or hangs.

These run the real CLI as a subprocess (as a user or a Colab cell would) and check the process groups it
creates; the same flows against a real vLLM are in tests/vllm.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.vllm.serve_helpers import cli_env, free_port, group_members, run_cli, sigint_default  # noqa: E402

STANDIN = r"""
import argparse, json, os, signal, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("mode")
parser.add_argument("model", nargs="?")
parser.add_argument("--model", dest="model_flag")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
parser.add_argument("--served-model-name")
for flag in ("--max-model-len", "--gpu-memory-utilization", "--dtype", "--tensor-parallel-size"):
    parser.add_argument(flag)
parser.add_argument("--enforce-eager", action="store_true")
args, rest = parser.parse_known_args()
devices = os.environ.get("CUDA_VISIBLE_DEVICES")
print("devices", devices, flush=True)
print("stand-in started with", json.dumps(sys.argv[1:]), flush=True)
if os.environ.get("STANDIN_MARKER"):
    Path(os.environ["STANDIN_MARKER"]).write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0)}))
if os.environ.get("STANDIN_MARKER_DIR"):  # one marker per replica, by port
    marker = Path(os.environ["STANDIN_MARKER_DIR"]) / f"{args.port}.json"
    marker.write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0)}))
if devices is not None and devices == os.environ.get("STANDIN_CRASH_DEVICES"):  # one replica of a set fails
    args.mode = "crash"
if args.mode == "crash":  # like vLLM: the cause, then a generic error pointing back at it
    time.sleep(0.5)

    def load():
        raise ValueError("Invalid repository ID or local directory: 'not-a-model'")

    try:
        load()
    except ValueError as err:
        raise RuntimeError("Engine core initialization failed. See root cause above.") from err
if args.mode == "strict":  # an unknown flag: argparse prints its usage and exits 2
    parser.parse_args()
# A second process in the same group, like vLLM's engine core.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
# Never outlive a broken test run by long.
threading.Timer(300, os._exit, args=(0,)).start()
if args.mode in ("stubborn", "stubborn-hang"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if args.mode in ("hang", "stubborn-hang"):
    time.sleep(300)
key = os.environ.get("VLLM_API_KEY")
name = args.served_model_name or args.model or args.model_flag


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self.send_response(401)
            self.end_headers()
            return
        model = {"id": name, "object": "model"}
        if args.max_model_len:
            model["max_model_len"] = int(args.max_model_len)  # as vLLM lists it
        body = json.dumps({"object": "list", "data": [model]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


time.sleep(3.0 if args.mode == "slow" else 0.3)  # "loading": the first readiness checks find nothing
ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
"""


@pytest.fixture
def standin(tmp_path: Path) -> str:
    """The `--vllm-command` prefix that runs the stand-in (its first argument is the mode)."""
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    return f"{sys.executable} {script}"


@pytest.fixture
def serve(tmp_path: Path, standin: str) -> Iterator[Callable[..., Any]]:
    """`serve(args, mode="serve", **env)` runs `collect serve` with the stand-in; every server is stopped after."""
    state_dir = tmp_path / "state"

    def run(args: list[str], mode: str = "serve", **extra_env: str) -> Any:
        command = ["serve", "--vllm-command", f"{standin} {mode}", *args]
        return run_cli(command, cli_env(state_dir, **extra_env), tmp_path, timeout=120)

    yield run
    _stop_everything(state_dir, tmp_path)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`cli(args, **env)`: any `collect` command with the same state directory as `serve`; stops what it started."""
    state_dir = tmp_path / "state"
    yield lambda args, **extra_env: run_cli(args, cli_env(state_dir, **extra_env), tmp_path, timeout=120)
    _stop_everything(state_dir, tmp_path)


def _stop_everything(state_dir: Path, cwd: Path) -> None:
    """After a test: stop every server it left recorded (through the CLI, then SIGKILL if that failed)."""
    try:
        servers = _state(state_dir)
    except ValueError:  # a test may leave a broken state file on purpose
        return
    if servers:
        run_cli(["serve", "stop", "--all", "--grace", "2"], cli_env(state_dir), cwd, timeout=60)
    for entry in servers.values():
        if group_members(entry["pgid"]):
            os.killpg(entry["pgid"], signal.SIGKILL)


def _state(state_dir: Path) -> dict[int, dict[str, Any]]:
    path = state_dir / "servers.json"
    if not path.exists():
        return {}
    return {entry["port"]: entry for entry in json.loads(path.read_text())["servers"]}


def _wait_gone(pgid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_serve_returns_once_ready_and_stop_ends_the_whole_group(
    serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    result = serve(["--model", "org/some-model", "--port", str(port)])

    assert result.returncode == 0, result.stderr
    assert f"vLLM is ready: http://127.0.0.1:{port}/v1  (model org/some-model)" in result.stdout
    assert f"collect serve stop --port {port}" in result.stdout
    entry = _state(tmp_path / "state")[port]
    assert entry["model"] == "org/some-model"
    assert entry["pgid"] == entry["pid"]
    assert entry["served_models"] == ["org/some-model"]
    members = group_members(entry["pgid"])
    assert entry["pid"] in members and len(members) == 2  # the stand-in and its child kept running
    assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200
    log = Path(entry["log"]).read_text()
    assert "# collect serve:" in log and "stand-in started with" in log

    stop = cli(["serve", "stop", "--port", str(port)])

    assert stop.returncode == 0, stop.stderr
    assert f"stopped the server on port {port}" in stop.stderr
    assert _wait_gone(entry["pgid"], timeout=1.0)  # stop returns only once the group is gone
    assert _state(tmp_path / "state") == {}


def test_argv_from_settings_and_extra_args_passed_unchanged(serve: Callable[..., Any], tmp_path: Path) -> None:
    port = free_port()
    extra = ["--served-model-name", "short", "--tensor-parallel-size", "1", "--weird=a b"]
    result = serve(["--model", "m", "--port", str(port), "--max-model-len", "2048", "--gpu-util", "0.5", "--", *extra])

    assert result.returncode == 0, result.stderr
    assert "(model short)" in result.stdout  # the name the server lists, for `collect infer --model`
    argv = _state(tmp_path / "state")[port]["argv"]
    assert argv[argv.index("serve") + 1 :] == [
        "m",  # positional, as `vllm serve MODEL` wants
        *["--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048"],
        *["--gpu-memory-utilization", "0.5", "--enforce-eager", *extra],
    ]


def test_model_as_flag_when_the_command_does_not_end_in_serve(
    cli: Callable[..., Any], standin: str, tmp_path: Path
) -> None:
    port = free_port()
    # `python -m vllm.entrypoints.openai.api_server` takes --model; so does a command not ending in `serve`.
    command = ["serve", "--model", "m", "--port", str(port), "--vllm-command", f"{standin} api_server"]
    result = cli([*command, "--no-enforce-eager"])

    assert result.returncode == 0, result.stderr
    argv = _state(tmp_path / "state")[port]["argv"]
    assert argv[argv.index("api_server") + 1 : argv.index("api_server") + 3] == ["--model", "m"]
    assert "--enforce-eager" not in argv


def test_gemma_gets_bfloat16_unless_a_dtype_is_given(serve: Callable[..., Any], tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    assert serve(["--model", "google/gemma-3-4b-it", "--port", str(first)]).returncode == 0
    assert serve(["--model", "google/gemma-3-4b-it", "--port", str(second), "--", "--dtype", "float32"]).returncode == 0

    state = _state(tmp_path / "state")
    assert state[first]["argv"][-2:] == ["--dtype", "bfloat16"]
    assert state[second]["argv"].count("--dtype") == 1 and state[second]["argv"][-2:] == ["--dtype", "float32"]


def test_startup_crash_is_reported_at_once_with_the_log_tail(serve: Callable[..., Any], tmp_path: Path) -> None:
    marker = tmp_path / "standin.json"
    started = time.monotonic()
    result = serve(
        ["--model", "not-a-model", "--port", str(free_port()), "--serve-timeout", "600"],
        mode="crash",
        STANDIN_MARKER=str(marker),
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert elapsed < 60, "waited for the timeout instead of noticing the exit"
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    # The first line states the cause (not the generic error that points back at it) ...
    assert first.startswith("error: vLLM exited with code 1 during start-up")
    assert first.endswith("ValueError: Invalid repository ID or local directory: 'not-a-model'")
    # ... and the log tail below it leaves out the traceback frames (the log keeps them).
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr
    assert "rerun by hand" in result.stderr and "standin.py crash" in result.stderr
    assert _state(tmp_path / "state") == {}
    assert group_members(json.loads(marker.read_text())["pgid"]) == []


def test_an_unknown_vllm_flag_is_named_without_the_usage_text(serve: Callable[..., Any], tmp_path: Path) -> None:
    result = serve(["--model", "m", "--port", str(free_port()), "--", "--tensor-paralel-size", "1"], mode="strict")

    assert result.returncode == 1
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "vLLM exited with code 2" in first and "unrecognized arguments: --tensor-paralel-size 1" in first
    assert "a flag after `--` is misspelled or unknown to this vLLM version" in result.stderr
    assert "usage:" not in result.stderr
    assert _state(tmp_path / "state") == {}


def test_timeout_stops_the_half_started_server(serve: Callable[..., Any], tmp_path: Path) -> None:
    marker = tmp_path / "standin.json"
    result = serve(
        ["--model", "m", "--port", str(free_port()), "--serve-timeout", "2"], mode="hang", STANDIN_MARKER=str(marker)
    )

    assert result.returncode == 1
    assert "did not answer" in result.stderr and "within 2s" in result.stderr
    assert "--serve-timeout" in result.stderr
    assert _state(tmp_path / "state") == {}
    assert group_members(json.loads(marker.read_text())["pgid"]) == []  # leader and child both gone


def test_port_in_use_starts_nothing(serve: Callable[..., Any], tmp_path: Path) -> None:
    marker = tmp_path / "standin.json"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = serve(["--model", "m", "--port", str(port)], STANDIN_MARKER=str(marker))

    assert result.returncode == 1
    assert f"port {port} is already in use (by pid {os.getpid()}: " in result.stderr  # who holds it
    assert "--port" in result.stderr  # says how to fix it
    assert not marker.exists()
    assert _state(tmp_path / "state") == {}


def test_a_second_serve_on_a_recorded_port_is_refused(serve: Callable[..., Any], tmp_path: Path) -> None:
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)]).returncode == 0
    marker = tmp_path / "second.json"

    again = serve(["--model", "other", "--port", str(port)], STANDIN_MARKER=str(marker))

    assert again.returncode == 1
    assert f"already runs on port {port}" in again.stderr and "collect serve stop --port" in again.stderr
    assert not marker.exists()
    assert list(_state(tmp_path / "state")) == [port]


def test_stop_of_a_server_that_already_died(serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path) -> None:
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)]).returncode == 0
    entry = _state(tmp_path / "state")[port]
    os.killpg(entry["pgid"], signal.SIGKILL)
    assert _wait_gone(entry["pgid"])

    status = cli(["serve", "status"])
    assert status.returncode == 0
    assert any(line.startswith(str(port)) and "exited" in line for line in status.stdout.splitlines())

    stop = cli(["serve", "stop"])
    assert stop.returncode == 0, stop.stderr
    assert "had already exited" in stop.stderr and entry["log"] in stop.stderr
    assert _state(tmp_path / "state") == {}


def test_stop_kills_a_server_that_ignores_sigterm(
    serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)], mode="stubborn").returncode == 0
    entry = _state(tmp_path / "state")[port]

    stop = cli(["serve", "stop", "--port", str(port), "--grace", "1"])

    assert stop.returncode == 0, stop.stderr
    assert group_members(entry["pgid"]) == []
    assert _state(tmp_path / "state") == {}


def test_stop_with_nothing_running_succeeds(serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path) -> None:
    # A notebook's clean-up cell or a `set -e` script calls stop whether or not a server runs.
    for args in ([], ["--all"], ["--port", "8123"]):
        stop = cli(["serve", "stop", *args])
        assert stop.returncode == 0, stop.stderr
        assert "no server is running" in stop.stderr and "nothing to stop" in stop.stderr
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)]).returncode == 0
    other = cli(["serve", "stop", "--port", str(port + 1 if port < 65535 else port - 1)])
    assert other.returncode == 0 and f"collect's servers are on port {port}" in other.stderr
    assert list(_state(tmp_path / "state")) == [port]  # the one running is left alone
    assert cli(["serve", "stop", "--port", str(port)]).returncode == 0
    again = cli(["serve", "stop"])
    assert again.returncode == 0 and "no server is running" in again.stderr


def test_stop_all_and_status(serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path) -> None:
    ports = sorted([free_port(), free_port()])
    for port in ports:
        assert serve(["--model", f"model-{port}", "--port", str(port)]).returncode == 0
    status = cli(["serve", "status"])
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    assert [(row[0], row[3], row[4]) for row in rows] == [(str(p), "running", f"model-{p}") for p in ports]

    ambiguous = cli(["serve", "stop"])
    assert ambiguous.returncode == 1 and "choose one with --port" in ambiguous.stderr

    stop = cli(["serve", "stop", "--all"])
    assert stop.returncode == 0
    assert all(f"stopped the server on port {port}" in stop.stderr for port in ports)
    assert _state(tmp_path / "state") == {}
    assert "no servers started by collect" in cli(["serve", "status"]).stderr


def test_logs_shows_the_tail(serve: Callable[..., Any], cli: Callable[..., Any]) -> None:
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)]).returncode == 0

    logs = cli(["serve", "logs", "--lines", "50"])

    assert logs.returncode == 0
    assert "stand-in started with" in logs.stdout and "GET /v1/models" in logs.stdout
    unknown = cli(["serve", "logs", "--port", "1"])
    assert unknown.returncode == 1 and f"known ports: {port}" in unknown.stderr


def test_api_key_reaches_the_server_but_no_file(serve: Callable[..., Any], tmp_path: Path) -> None:
    key = "sk-standin-0b1d2e"
    port = free_port()

    result = serve(["--model", "m", "--port", str(port)], COLLECT_API_KEY=key)

    assert result.returncode == 0, result.stderr  # the readiness check sent the key the server requires
    url = f"http://127.0.0.1:{port}/v1/models"
    assert httpx.get(url, timeout=5).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code == 200
    entry = _state(tmp_path / "state")[port]
    assert entry["api_key_set"] is True
    assert key not in (tmp_path / "state" / "servers.json").read_text()
    assert key not in Path(entry["log"]).read_text()
    assert key not in result.stdout + result.stderr
    assert key not in Path(f"/proc/{entry['pid']}/cmdline").read_bytes().decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "9"], "no model to serve"),
        (["--model", "m", "--", "--port", "9000"], "--port after `--` is set by `collect serve` itself"),
        (["--model", "m", "--", "--api-key=abc"], "--api-key after `--`"),
        (["--model", "m", "--gpu-util", "1.5"], "--gpu-util"),
        (["--model", "m", "--vllm-command", ""], "--vllm-command"),
        (["--model", "m", "--vllm-command", "/no/such/vllm serve"], "cannot run the vLLM command '/no/such/vllm'"),
        (["--model", "/no/such/model-folder"], "--model /no/such/model-folder: no such file or folder"),
        (["--model", "./models/qwen-typo"], "--model ./models/qwen-typo: no such file or folder"),
        (["--model", "m", "--host", "no-such-host.invalid"], "cannot use --host no-such-host.invalid"),
        (["--model", "m", "--state-dir", "/proc/no-state-here"], "cannot use the state directory /proc/no-state-here"),
    ],
)
def test_bad_input_is_one_clear_error(cli: Callable[..., Any], args: list[str], message: str, tmp_path: Path) -> None:
    result = cli(["serve", "--port", str(free_port()), *args] if "--port" not in args else ["serve", *args])

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "abc" not in result.stderr
    assert _state(tmp_path / "state") == {}


def test_a_folder_that_is_not_a_model_fails_before_vllm_starts(cli: Callable[..., Any], tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "README.md").write_text("no config.json here\n")

    result = cli(["serve", "--model", str(folder), "--port", str(free_port())])

    assert result.returncode == 1
    assert f"--model {folder} is a folder without config.json" in result.stderr
    assert "Hugging Face id" in result.stderr  # the hint
    assert not (tmp_path / "state" / "logs").exists()  # nothing was launched


def test_a_model_path_for_a_container_is_not_checked_here(
    cli: Callable[..., Any], standin: str, tmp_path: Path
) -> None:
    docker = tmp_path / "bin" / "docker"  # stands in for `docker run ... vllm/vllm-openai`: paths are the container's
    docker.parent.mkdir()
    docker.write_text(f'#!/bin/sh\nshift\nexec {standin} api_server "$@"\n')  # shift drops `run`
    docker.chmod(0o755)
    port = free_port()

    result = cli(["serve", "--model", "/models/in-the-image", "--port", str(port), "--vllm-command", f"{docker} run"])

    assert result.returncode == 0, result.stderr
    assert "(model /models/in-the-image)" in result.stdout


def test_start_options_before_a_sub_command_are_refused(cli: Callable[..., Any]) -> None:
    result = cli(["serve", "--port", "8001", "stop"])

    assert result.returncode == 2
    assert "collect serve stop --port 8001" in result.stderr


def test_a_broken_state_file_is_named(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "servers.json").write_text("{not json")

    result = cli(["serve", "status"])

    assert result.returncode == 1
    assert "servers.json is not valid" in result.stderr and "delete it" in result.stderr


def test_two_commands_racing_for_one_port_start_one_server(standin: str, tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(port)]
    args += ["--vllm-command", f"{standin} serve"]
    env = cli_env(tmp_path / "state")
    racers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    try:
        outcomes = [(racer.wait(timeout=60), racer.stderr.read() if racer.stderr else "") for racer in racers]
        codes = sorted(code for code, _ in outcomes)
        assert codes == [0, 1], outcomes
        loser = next(err for code, err in outcomes if code == 1)
        assert f"already runs on port {port}" in loser or f"port {port} is already in use" in loser
        state = _state(tmp_path / "state")
        assert list(state) == [port] and group_members(state[port]["pgid"])
    finally:
        run_cli(["serve", "stop", "--all", "--grace", "2"], env, tmp_path, timeout=60)


def start_hanging_serve(standin: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """Start `collect serve` on a stand-in that never gets ready; return the command and the server's group."""
    marker = tmp_path / "standin.json"
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(free_port())]
    args += ["--vllm-command", f"{standin} hang"]
    env = cli_env(tmp_path / "state", STANDIN_MARKER=str(marker))
    command = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=sigint_default
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the marker is written first thing; let the stand-in start its child too
    return command, json.loads(marker.read_text())["pgid"]


def test_ctrl_c_while_waiting_stops_the_half_started_server(standin: str, tmp_path: Path) -> None:
    command, pgid = start_hanging_serve(standin, tmp_path)

    command.send_signal(signal.SIGINT)
    _, err = command.communicate(timeout=30)

    assert command.returncode == 130
    assert "the server being started was stopped" in err
    assert group_members(pgid) == []
    assert _state(tmp_path / "state") == {}


def _wait_until_open(pid: int, path: Path, timeout: float = 60.0) -> None:
    """Wait until process `pid` holds `path` open (it got past its imports, however loaded the machine is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} did not open {path} within {timeout:.0f}s")


def test_logs_follow_prints_new_lines_until_ctrl_c(serve: Callable[..., Any], tmp_path: Path) -> None:
    assert serve(["--model", "m", "--port", str(free_port())]).returncode == 0
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "logs", "--follow", "--lines", "0"]
    env = cli_env(tmp_path / "state")
    follower = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=sigint_default
    )
    try:
        log = Path(next(iter(_state(tmp_path / "state").values()))["log"])
        _wait_until_open(follower.pid, log)
        time.sleep(0.5)  # let it reach the end of the log
        with log.open("a") as handle:
            handle.write("a line written after `logs --follow` started\n")
        time.sleep(1.0)
        follower.send_signal(signal.SIGINT)
        out, _ = follower.communicate(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()

    assert follower.returncode == 0
    assert "a line written after `logs --follow` started" in out
    assert "stand-in started with" not in out  # --lines 0: only what came after


def test_a_relative_state_dir_is_recorded_by_full_path(cli: Callable[..., Any], standin: str, tmp_path: Path) -> None:
    port = free_port()
    command = ["serve", "--model", "m", "--port", str(port), "--vllm-command", f"{standin} serve"]
    try:
        assert cli([*command, "--state-dir", "rel-state"]).returncode == 0
        entry = _state(tmp_path / "rel-state")[port]
        assert Path(entry["log"]).is_absolute() and Path(entry["log"]).exists()
    finally:
        cli(["serve", "stop", "--all", "--state-dir", str(tmp_path / "rel-state")])


def test_a_server_whose_api_server_died_shows_as_broken_and_stop_ends_the_rest(
    serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    assert serve(["--model", "m", "--port", str(port)]).returncode == 0
    entry = _state(tmp_path / "state")[port]
    os.kill(entry["pid"], signal.SIGKILL)  # the API server dies; its engine (the child) keeps running
    deadline = time.monotonic() + 10
    while entry["pid"] in group_members(entry["pgid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(entry["pgid"])

    status = cli(["serve", "status"])
    assert status.returncode == 0
    assert any(line.startswith(str(port)) and " broken " in line for line in status.stdout.splitlines())
    assert f"end them: collect serve stop --port {port}" in status.stderr
    again = serve(["--model", "m", "--port", str(port)])
    assert again.returncode == 1 and "died, but processes of its group still run" in again.stderr

    stop = cli(["serve", "stop", "--port", str(port)])
    assert stop.returncode == 0, stop.stderr
    assert f"stopped what was left of the server on port {port}" in stop.stderr
    assert group_members(entry["pgid"]) == []
    assert _state(tmp_path / "state") == {}


def test_status_while_starting_and_a_second_ctrl_c_during_the_clean_up(
    cli: Callable[..., Any], standin: str, tmp_path: Path
) -> None:
    marker = tmp_path / "standin.json"
    port = free_port()
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(port)]
    args += ["--vllm-command", f"{standin} stubborn-hang"]  # loads forever and ignores SIGTERM, as vLLM may
    env = cli_env(tmp_path / "state", STANDIN_MARKER=str(marker))
    command = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=sigint_default
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        pgid = json.loads(marker.read_text())["pgid"]
        status = cli(["serve", "status"])
        assert any(line.startswith(str(port)) and " starting " in line for line in status.stdout.splitlines())

        command.send_signal(signal.SIGINT)
        time.sleep(0.5)  # it is now waiting for the group to go after SIGTERM
        command.send_signal(signal.SIGINT)  # an impatient second Ctrl-C
        _, err = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()

    assert command.returncode == 130
    assert err.index("stopping the server being started") < err.index("the server being started was stopped")
    assert "Traceback" not in err
    assert group_members(pgid) == []  # SIGKILL after the short grace, despite the second Ctrl-C
    assert _state(tmp_path / "state") == {}


def test_status_names_the_served_model_and_the_key_flag_gets_a_reminder(
    serve: Callable[..., Any], cli: Callable[..., Any]
) -> None:
    port = free_port()
    key = "sk-standin-flag-51c0"

    args = ["--model", "org/long-name", "--port", str(port), "--api-key", key]
    result = serve([*args, "--", "--served-model-name", "s"])

    assert result.returncode == 0, result.stderr
    assert "give collect infer the same one" in result.stdout  # infer would otherwise get 401
    assert key not in result.stdout + result.stderr
    rows = [line.split() for line in cli(["serve", "status"]).stdout.splitlines()[1:]]
    assert [(row[0], row[3], row[4]) for row in rows] == [(str(port), "running", "s")]  # what infer --model needs


def test_rerunning_the_same_serve_reuses_the_running_server(serve: Callable[..., Any], tmp_path: Path) -> None:
    port = free_port()
    args = ["--model", "m", "--port", str(port), "--max-model-len", "2048"]
    assert serve(args, COLLECT_API_KEY="sk-standin-a").returncode == 0
    entry = _state(tmp_path / "state")[port]

    again = serve(args, COLLECT_API_KEY="sk-standin-a")  # a notebook run from the top

    assert again.returncode == 0, again.stderr
    assert f"the same server already runs on port {port}" in again.stderr
    assert f"vLLM is ready: http://127.0.0.1:{port}/v1" in again.stdout
    assert _state(tmp_path / "state") == {port: entry}  # the same process, not a second one
    other_key = serve(args, COLLECT_API_KEY="sk-standin-b")  # infer with this key would get 401
    other_len = serve(["--model", "m", "--port", str(port), "--max-model-len", "4096"], COLLECT_API_KEY="sk-standin-a")
    assert other_key.returncode == 1 and f"already runs on port {port}" in other_key.stderr
    assert other_len.returncode == 1 and f"already runs on port {port}" in other_len.stderr


def test_the_model_may_come_first_as_in_vllm_serve(cli: Callable[..., Any], standin: str, tmp_path: Path) -> None:
    port = free_port()

    result = cli(["serve", "org/first", "--port", str(port), "--vllm-command", f"{standin} serve"])
    typo = cli(["serve", "statu"])

    assert result.returncode == 0, result.stderr
    assert "(model org/first)" in result.stdout
    assert _state(tmp_path / "state")[port]["model"] == "org/first"
    assert typo.returncode == 2 and "Did you mean 'status'?" in typo.stderr  # a near-miss is no model


def test_sigterm_while_starting_stops_the_half_started_server(standin: str, tmp_path: Path) -> None:
    command, pgid = start_hanging_serve(standin, tmp_path)
    try:
        command.send_signal(signal.SIGTERM)  # `timeout 600 collect serve ...`, a cancelled CI job
        _, err = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()

    assert command.returncode == 128 + signal.SIGTERM
    assert "the server being started was stopped" in err
    assert group_members(pgid) == []
    assert _state(tmp_path / "state") == {}


def test_a_server_whose_collect_serve_was_killed_shows_running_once_it_answers(
    cli: Callable[..., Any], standin: str, tmp_path: Path
) -> None:
    marker = tmp_path / "standin.json"
    port = free_port()
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(port)]
    args += ["--vllm-command", f"{standin} slow"]
    env = cli_env(tmp_path / "state", STANDIN_MARKER=str(marker))
    command = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    command.kill()  # SIGKILL: no clean-up, the server starts on without anyone recording that it is ready
    command.wait(timeout=10)
    status = cli(["serve", "status"])
    assert any(line.startswith(str(port)) and " starting " in line for line in status.stdout.splitlines())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)

    status = cli(["serve", "status"])

    assert any(line.startswith(str(port)) and " running " in line for line in status.stdout.splitlines())


def test_the_suggested_infer_command_fits_the_context(serve: Callable[..., Any]) -> None:
    short, long = free_port(), free_port()

    small = serve(["--model", "m", "--port", str(short), "--max-model-len", "1024"])
    large = serve(["--model", "m", "--port", str(long), "--max-model-len", "32768"])

    assert small.returncode == 0 and large.returncode == 0
    # infer's default --max-tokens 4096 would not fit in 1024 tokens: every request would be refused.
    assert f"next: collect infer --api-base http://127.0.0.1:{short}/v1 --model m --max-tokens 512\n" in small.stdout
    assert "context 1024 tokens" in small.stdout
    assert f"next: collect infer --api-base http://127.0.0.1:{long}/v1 --model m\n" in large.stdout


def test_logs_follow_ends_when_the_server_exits(serve: Callable[..., Any], tmp_path: Path) -> None:
    assert serve(["--model", "m", "--port", str(free_port())]).returncode == 0
    entry = next(iter(_state(tmp_path / "state").values()))
    args = [sys.executable, "-m", "llmrouter_collect", "serve", "logs", "--follow", "--lines", "0"]
    env = cli_env(tmp_path / "state")
    follower = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=sigint_default
    )
    try:
        _wait_until_open(follower.pid, Path(entry["log"]))
        os.killpg(entry["pgid"], signal.SIGKILL)  # the server dies (out of memory, say)
        _, err = follower.communicate(timeout=30)  # without the fix it follows forever
    finally:
        if follower.poll() is None:
            follower.kill()

    assert follower.returncode == 0
    assert "is no longer running; its log ends here" in err


def test_plain_progress_names_the_log_and_what_vllm_is_doing(serve: Callable[..., Any], tmp_path: Path) -> None:
    # Away from a terminal (a Colab cell, a CI log) a line comes every 15 s: it says where vLLM is.
    result = serve(["--model", "m", "--port", str(free_port()), "--serve-timeout", "16"], mode="hang")

    assert result.returncode == 1  # the stand-in never answers
    assert f"(log: {tmp_path / 'state' / 'logs'}" in result.stderr.splitlines()[0]
    still = next(line for line in result.stderr.splitlines() if "still starting" in line)
    assert "· stand-in started with" in still  # the last line of its log


def test_a_python_without_vllm_is_named_with_the_fix(cli: Callable[..., Any], tmp_path: Path) -> None:
    # This project's own Python has no vLLM (it lives in an environment of its own).
    command = f"{sys.executable} -m vllm.entrypoints.openai.api_server"

    result = cli(["serve", "--model", "m", "--port", str(free_port()), "--vllm-command", command])

    assert result.returncode == 1
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "No module named 'vllm'" in first
    assert "this Python has no vLLM: point --vllm-command" in result.stderr
    assert "# collect serve:" not in result.stderr  # the command is in the hint once, not in the tail too
    assert _state(tmp_path / "state") == {}


def test_a_server_killed_while_starting_is_reported_as_killed(standin: str, tmp_path: Path) -> None:
    command, pgid = start_hanging_serve(standin, tmp_path)
    try:
        os.killpg(pgid, signal.SIGKILL)  # the out-of-memory killer, or a `kill -9` by hand
        _, err = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()

    assert command.returncode == 1
    assert "vLLM was killed by SIGKILL during start-up" in err
    assert "or the system ran out of memory" in err
    assert _state(tmp_path / "state") == {}


# --- a .env naming the vLLM command; signals at any moment of start-up; the state file ----------------------


def test_a_dotenv_vllm_command_is_named_before_it_runs(cli: Callable[..., Any], standin: str, tmp_path: Path) -> None:
    marker = tmp_path / "standin.json"
    (tmp_path / ".env").write_text(f"COLLECT_VLLM_COMMAND={standin} serve\nCOLLECT_MODEL=m\n")
    port = free_port()

    result = cli(["serve", "--port", str(port)], STANDIN_MARKER=str(marker))

    assert result.returncode == 0, result.stderr
    named = f"warning: read {tmp_path / '.env'}: sets COLLECT_VLLM_COMMAND='{standin} serve', COLLECT_MODEL"
    lines = result.stderr.splitlines()
    assert lines[0] == named  # the first thing said, before anything is started
    assert marker.exists() and _state(tmp_path / "state")[port]["argv"][:3] == [*standin.split(), "serve"]


def _unrecorded_survivors(script: str, port: int, state_dir: Path) -> tuple[list[int], list[int]]:
    """(pids of live stand-ins for `port` whose group the state file does not hold, recorded groups)."""
    recorded = [entry["pgid"] for entry in _state(state_dir).values()]
    survivors = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if script in argv and str(port) in argv and fields[0] != "Z" and int(fields[2]) not in recorded:
            survivors.append(int(entry.name))
    return survivors, recorded


def _kill_groups(pgids: list[int]) -> None:
    for pgid in pgids:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_sigterm_at_random_moments_of_start_up_leaves_no_unrecorded_server(standin: str, tmp_path: Path) -> None:
    import random

    script = standin.split()[1]
    failures = []
    for trial in range(10):
        state_dir = tmp_path / f"state-{trial}"
        port = free_port()
        args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(port)]
        args += ["--vllm-command", f"{standin} slow"]  # answers after ~3 s
        command = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(state_dir),
            preexec_fn=sigint_default,
        )
        try:
            if trial % 2:  # any moment, from the imports to the wait
                time.sleep(random.uniform(0.0, 4.0))
            else:  # around the launch: its log file is created just before vLLM is
                deadline = time.monotonic() + 60
                while not list(state_dir.glob("logs/*.log")) and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(random.uniform(0.0, 0.03))
            command.send_signal(signal.SIGTERM)
            _, err = command.communicate(timeout=60)
        finally:
            if command.poll() is None:
                command.kill()
        survivors, recorded = _unrecorded_survivors(script, port, state_dir)
        _kill_groups(recorded + survivors)
        ended = command.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM) or (command.returncode == 0 and recorded)
        if survivors or not ended or "Traceback" in err:
            failures.append((trial, command.returncode, survivors, err[-500:]))
    assert failures == []


@pytest.fixture
def parent_killer(tmp_path: Path, standin: str) -> str:
    """A vLLM command that SIGTERMs `collect serve` the instant it is launched (before it can record it)."""
    wrapper = tmp_path / "kill-parent-then-serve"
    wrapper.write_text(f'#!/bin/sh\nkill -TERM $PPID\nexec {standin} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_sigterm_the_instant_vllm_is_launched_stops_it(parent_killer: str, standin: str, tmp_path: Path) -> None:
    script = standin.split()[1]
    failures = []
    for trial in range(5):
        state_dir = tmp_path / f"state-{trial}"
        port = free_port()
        args = [sys.executable, "-m", "llmrouter_collect", "serve", "--model", "m", "--port", str(port)]
        command = subprocess.run(
            [*args, "--vllm-command", f"{parent_killer} slow"],
            capture_output=True,
            text=True,
            env=cli_env(state_dir),
            timeout=60,
        )
        time.sleep(0.3)  # a stand-in that outlived the command would have exec'd by now
        survivors, recorded = _unrecorded_survivors(script, port, state_dir)
        _kill_groups(recorded + survivors)
        if survivors or recorded or command.returncode != 128 + signal.SIGTERM:
            failures.append((trial, command.returncode, survivors, recorded, command.stderr[-500:]))
        elif "the server being started was stopped" not in command.stderr:
            failures.append((trial, "no message", command.stderr[-500:]))
    assert failures == []


START_FROM_PYTHON = """
import sys
from pathlib import Path
from llmrouter_collect.server import start_server
from llmrouter_collect.settings import load_settings

port, command, state_dir = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
settings = load_settings(model="m", port=port, vllm_command=command, state_dir=state_dir, serve_timeout=60)
in_thread = len(sys.argv) > 4
if in_thread:  # signal handlers cannot be set here: it must still work
    import threading
    result = []
    worker = threading.Thread(target=lambda: result.append(start_server(settings)))
    worker.start()
    worker.join()
    print("ready", result[0].pid)
else:
    start_server(settings)
    print("ready")
"""


def test_the_python_api_stops_the_server_on_sigterm_then_ends_as_sigterm_asks(
    parent_killer: str, standin: str, tmp_path: Path
) -> None:
    program = tmp_path / "start.py"
    program.write_text(START_FROM_PYTHON)
    state_dir = tmp_path / "state"
    port = free_port()

    result = subprocess.run(
        [sys.executable, str(program), str(port), f"{parent_killer} slow", str(state_dir)],
        capture_output=True,
        text=True,
        env=cli_env(state_dir),
        timeout=60,
    )
    time.sleep(0.3)
    survivors, recorded = _unrecorded_survivors(standin.split()[1], port, state_dir)
    _kill_groups(recorded + survivors)

    assert result.returncode == -signal.SIGTERM, result.stderr  # the signal kept its meaning ...
    assert survivors == [] and recorded == []  # ... once the half-started server was stopped and forgotten
    assert "ready" not in result.stdout


def test_the_python_api_works_outside_the_main_thread(cli: Callable[..., Any], standin: str, tmp_path: Path) -> None:
    program = tmp_path / "start.py"
    program.write_text(START_FROM_PYTHON)
    state_dir = tmp_path / "state"
    port = free_port()

    result = subprocess.run(
        [sys.executable, str(program), str(port), f"{standin} serve", str(state_dir), "thread"],
        capture_output=True,
        text=True,
        env=cli_env(state_dir),
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ready") and _state(state_dir)[port]["ready_at"]


def test_the_state_file_is_replaced_atomically_not_through_a_planted_temp_file(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "servers.json.tmp").symlink_to(victim)  # the old fixed temp name, planted
    port = free_port()

    assert serve(["--model", "m", "--port", str(port)]).returncode == 0

    assert victim.read_text() == "untouched\n"
    assert list(_state(tmp_path / "state")) == [port]
    assert not [p.name for p in (tmp_path / "state").iterdir() if p.name.startswith(".servers.json")]


def test_a_state_file_that_cannot_be_written_stops_the_launched_server(
    serve: Callable[..., Any], standin: str, tmp_path: Path
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "servers.json").symlink_to(tmp_path / "no-such-folder" / "servers.json")  # dangling
    port = free_port()

    result = serve(["--model", "m", "--port", str(port)], mode="slow")

    assert result.returncode == 1
    assert "cannot use the state directory" in result.stderr and "Traceback" not in result.stderr
    assert list((tmp_path / "state" / "logs").glob(f"vllm-{port}-*.log"))  # it was launched before the write failed
    assert _unrecorded_survivors(standin.split()[1], port, tmp_path / "state")[0] == []  # and stopped


# --- replica sets: `collect serve --replicas N` -----------------------------------------------------------------


def free_ports(count: int) -> int:
    """The first of `count` consecutive TCP ports on 127.0.0.1 that are all free right now."""
    for _ in range(100):
        first = free_port()
        if first + count - 1 > 65535:
            continue
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError(f"no {count} consecutive free ports found")


def _group_members_of(marker_dir: Path) -> dict[int, list[int]]:
    """Live members of each replica's process group, by port (from the markers the stand-ins wrote)."""
    return {
        int(path.stem): group_members(json.loads(path.read_text())["pgid"])
        for path in sorted(marker_dir.glob("*.json"))
    }


def test_replicas_run_on_consecutive_ports_with_their_own_gpus_and_act_as_a_set(
    serve: Callable[..., Any], cli: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_ports(2)
    args = ["--model", "m", "--port", str(port), "--replicas", "2", "--gpus-per-replica", "2"]

    result = serve(args, CUDA_VISIBLE_DEVICES="4,5,6,7")

    assert result.returncode == 0, result.stderr
    urls = [f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port + 1}/v1"]
    lines = result.stdout.splitlines()
    assert lines[-2:] == [
        f"api bases: --api-base {urls[0]} --api-base {urls[1]}",
        f'endpoints = ["{urls[0]}", "{urls[1]}"]',  # a fleet file's TOML line
    ]
    state = _state(tmp_path / "state")
    assert sorted(state) == [port, port + 1]
    for index, (replica_port, devices) in enumerate([(port, "4,5"), (port + 1, "6,7")]):
        entry = state[replica_port]
        assert (entry["replica"], entry["replicas"], entry["group"], entry["devices"]) == (index, 2, port, devices)
        assert f"devices {devices}\n" in Path(entry["log"]).read_text()  # the process got its slice
        assert httpx.get(f"{urls[index]}/models", timeout=5).status_code == 200
        assert len(group_members(entry["pgid"])) == 2
    assert state[port]["pgid"] != state[port + 1]["pgid"]  # each its own process group

    rows = [line.split() for line in cli(["serve", "status"]).stdout.splitlines()[1:]]
    assert [(row[0], row[3], row[6], row[7]) for row in rows] == [
        (str(port), "running", "0/2", "4,5"),
        (str(port + 1), "running", "1/2", "6,7"),
    ]
    both = cli(["serve", "logs", "-n", "5"])  # the only set: no --port needed
    assert both.returncode == 0, both.stderr
    assert f"==> replica 0 (port {port})" in both.stdout and f"==> replica 1 (port {port + 1})" in both.stdout
    one = cli(["serve", "logs", "--port", str(port), "--replica", "1", "-n", "50"])
    assert f'"--port", "{port + 1}"' in one.stdout and f'"--port", "{port}"' not in one.stdout
    follow = cli(["serve", "logs", "--follow"])
    assert follow.returncode == 1 and "add --replica I (0 to 1)" in follow.stderr
    again = serve(args, CUDA_VISIBLE_DEVICES="4,5,6,7")  # a notebook run from the top reuses the set
    assert again.returncode == 0 and f"the same 2 replicas already run on ports {port}-{port + 1}" in again.stderr

    stop = cli(["serve", "stop", "--port", str(port + 1)])  # any port of the set stops all of it

    assert stop.returncode == 0, stop.stderr
    assert (
        f"stopped the server on port {port} " in stop.stderr
        and f"stopped the server on port {port + 1} " in stop.stderr
    )
    assert all(group_members(entry["pgid"]) == [] for entry in state.values())
    assert _state(tmp_path / "state") == {}


def test_a_busy_port_of_the_set_starts_no_replica(serve: Callable[..., Any], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    port = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port + 1))
        holder.listen()
        result = serve(["--model", "m", "--port", str(port), "--replicas", "2"], STANDIN_MARKER_DIR=str(markers))

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: port {port + 1} is already in use (by pid {os.getpid()}: {errors[0].split(': ', 2)[2]}"]
    assert f"--replicas 2 uses ports {port}-{port + 1}" in result.stderr
    assert list(markers.iterdir()) == []  # not even the replica whose port was free
    assert _state(tmp_path / "state") == {}


def test_one_replica_failing_to_start_stops_the_others(serve: Callable[..., Any], tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    port = free_ports(3)

    result = serve(
        ["--model", "m", "--port", str(port), "--replicas", "3", "--serve-timeout", "120"],
        CUDA_VISIBLE_DEVICES="0,1,2",
        STANDIN_CRASH_DEVICES="1",  # replica 1 fails as vLLM does; replicas 0 and 2 come up
        STANDIN_MARKER_DIR=str(markers),
    )

    assert result.returncode == 1
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert first.startswith(f"error: replica 1 (port {port + 1}): vLLM exited with code 1 during start-up")
    assert "all 3 replicas were stopped; the log of replica 1" in result.stderr
    assert f"log: {tmp_path / 'state' / 'logs'}/vllm-{port + 1}-" in result.stderr  # its log, to read
    assert "rerun by hand to see more: CUDA_VISIBLE_DEVICES=1 " in result.stderr
    members = _group_members_of(markers)
    assert sorted(members) == [port, port + 1, port + 2]  # all three were launched ...
    assert all(alive == [] for alive in members.values()), members  # ... and none is left
    assert _state(tmp_path / "state") == {}
