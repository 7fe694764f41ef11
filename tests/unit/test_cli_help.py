"""`collect infer --help` shows each default (from the same constants as Settings) and every option name whole."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from llmrouter_collect.cli import app
from llmrouter_collect.settings import Settings


def _help(width: int) -> str:
    result = CliRunner().invoke(
        app, ["infer", "--help"], env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": str(width)}, terminal_width=width
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "field",
    ["dataset", "num_problems", "k_responses", "temperature", "max_tokens", "endpoint", "api_mode", "max_concurrent",
     "batch_size", "max_attempts", "max_retries", "initial_retry_delay", "max_retry_delay", "request_timeout",
     "connect_timeout", "output_dir"],
)
def test_infer_help_shows_the_settings_defaults(field: str) -> None:
    text = " ".join(_help(200).split())  # one line: wrapped help text joins up again
    flat = re.sub(r"\s*│\s*", " ", text)
    default = Settings.model_fields[field].default
    assert f"(default: {default})" in " ".join(flat.split()), field


def test_infer_option_names_are_not_cut_at_80_columns() -> None:
    text = _help(80)
    assert "…" not in text
    command = typer.main.get_command(app).commands["infer"]  # type: ignore[attr-defined]
    for param in command.params:
        for opt in param.opts:
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), opt


def test_old_underscore_spellings_are_accepted_but_not_listed() -> None:
    assert "--k_responses" not in _help(200)
    result = CliRunner().invoke(app, ["infer", "--k_responses", "0"])  # refused by the settings, not the parser
    assert result.exit_code == 1 and "No such option" not in result.output
