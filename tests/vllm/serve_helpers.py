"""Helpers for tests of `collect serve`: free ports, the CLI as a subprocess, process-group members."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def sigint_default() -> None:
    """`preexec_fn` for a child the test will Ctrl-C: SIGINT's default handler, even when the test run itself was
    started with SIGINT ignored (`pytest … &`, `nohup`, some CI runners), which every child would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a `collect` subprocess: no COLLECT_* from the developer, vLLM on CPU and offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLLECT_")}
    env.update(
        {
            "COLLECT_STATE_DIR": str(state_dir),
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "HF_HUB_OFFLINE": "1",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `collect` CLI (`python -m llmrouter_collect`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members
