"""Generated docs stay in step with the code: docs/settings.md and .env.example list every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llmrouter_collect.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_env_example_lists_every_setting_and_no_secret() -> None:
    text = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"COLLECT_{name.upper()}=" in text
    assert "COLLECT_API_KEY=\n" in text


def test_the_dotenv_rules_are_documented() -> None:
    settings = (ROOT / "docs" / "settings.md").read_text()
    assert "## The `.env` file" in settings
    for fact in ("COLLECT_ENV_FILE=none", "read /abs/path/.env: sets", "comes only from", "COLLECT_VLLM_COMMAND"):
        assert fact in settings
    assert "COLLECT_ENV_FILE" in (ROOT / ".env.example").read_text()
    assert "COLLECT_ENV_FILE=none" in (ROOT / "docs" / "serve.md").read_text()


def test_every_flag_the_settings_table_names_exists() -> None:
    import re

    import typer

    from llmrouter_collect.cli import app

    real: set[str] = set()
    pending = [typer.main.get_command(app)]
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        real.update(opt for param in command.params for opt in param.opts)
    table = [line for line in (ROOT / "docs" / "settings.md").read_text().splitlines() if line.startswith("| ")]
    named = {flag for line in table for flag in re.findall(r"`(--[a-z-]+)`", line.split("|")[1])}
    assert named and named <= real, named - real
    assert "--no-default-stop" in named and "--default-stop" not in named
