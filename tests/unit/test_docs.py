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
