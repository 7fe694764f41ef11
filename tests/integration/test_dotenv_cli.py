"""A `.env` in the working directory, through the real CLI: named on stderr, chosen or skipped with
COLLECT_ENV_FILE, and never a way to send the key from the user's environment somewhere else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.openai_server import OpenAIServer

REMOTE = "http://collect-test.invalid/v1"  # never resolves: a request that was sent shows as "unreachable"


def collect(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("COLLECT_")}
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, "COLUMNS": "200", "NO_COLOR": "1", "COLLECT_STATE_DIR": str(cwd / "state"), **env},
        timeout=120,
    )


def test_every_command_names_the_dotenv_it_read_once(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COLLECT_MODEL=m\nCOLLECT_API_KEY=sk-dotenv-secret\nCOLLECT_WORKERS=1\n")
    expected = f"read {tmp_path / '.env'}: sets COLLECT_MODEL, COLLECT_API_KEY, COLLECT_WORKERS"

    status = collect(["serve", "status"], tmp_path)
    extract = collect(["extract", "--input", str(tmp_path / "none.jsonl")], tmp_path)

    assert status.returncode == 0, status.stderr
    assert status.stderr.splitlines()[0] == expected and status.stderr.count("read ") == 1
    assert extract.stderr.splitlines()[0] == expected
    assert "sk-dotenv-secret" not in status.stderr + status.stdout + extract.stderr + extract.stdout
    skipped = collect(["serve", "status"], tmp_path, COLLECT_ENV_FILE="none")
    assert skipped.returncode == 0 and ".env" not in skipped.stderr
    missing = collect(["serve", "status"], tmp_path, COLLECT_ENV_FILE="nope.env")
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "error: COLLECT_ENV_FILE=nope.env: no such file",
        "point COLLECT_ENV_FILE at a .env file, or set COLLECT_ENV_FILE=none to read none",
    ]


def test_infer_refuses_to_send_the_exported_key_to_a_dotenv_api_base(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"COLLECT_API_BASE={REMOTE}\n")
    args = ["infer", "--dataset", "sample", "--num-problems", "1", "--k", "1", "--max-retries", "0"]

    refused = collect(args, tmp_path, COLLECT_API_KEY="sk-mine-0451")

    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert lines[0] == f"warning: read {tmp_path / '.env'}: sets COLLECT_API_BASE={REMOTE}"
    assert f"error: COLLECT_API_BASE={REMOTE} comes only from {tmp_path / '.env'}, and would receive your API key" in (
        refused.stderr
    )
    assert f"confirm with --api-base {REMOTE}" in refused.stderr
    assert "unreachable" not in refused.stderr.lower() and "Traceback" not in refused.stderr
    assert "sk-mine-0451" not in refused.stderr + refused.stdout

    confirmed = collect([*args, "--api-base", REMOTE], tmp_path, COLLECT_API_KEY="sk-mine-0451")

    assert confirmed.returncode != 0 and "comes only from" not in confirmed.stderr  # it tried: the host is unknown


def test_a_dotenv_api_base_on_this_machine_gets_the_key(tmp_path: Path, openai_server: OpenAIServer) -> None:
    (tmp_path / ".env").write_text(f"COLLECT_API_BASE={openai_server.url}\n")
    args = ["infer", "--dataset", "sample", "--num-problems", "1", "--k", "1"]

    result = collect(args, tmp_path, COLLECT_API_KEY="sk-local")

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith(f"warning: read {tmp_path / '.env'}: sets COLLECT_API_BASE=")
