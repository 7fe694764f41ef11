"""`collect --help` stays fast: importing the CLI loads typer and the option types, not what commands need to run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "httpx", "pydantic_settings", "datasets", "numpy", "matplotlib")


def _loaded_after(statement: str) -> dict[str, bool]:
    code = f"import json, sys\n{statement}\nprint(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, bool] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "module",
    [
        "llmrouter_collect.cli",
        "llmrouter_collect.cli.serve",
        "llmrouter_collect.cli.infer",
        "llmrouter_collect.cli.extract",
        "llmrouter_collect.cli.report",
        "llmrouter_collect.cli.datasets",
        "llmrouter_collect.cli.show",
        "llmrouter_collect.server",
        "llmrouter_collect.console",
    ],
)
def test_importing_the_cli_loads_nothing_heavy(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert [name for name, present in loaded.items() if present] == []


def test_help_loads_nothing_heavy() -> None:
    statement = (
        "from typer.testing import CliRunner\n"
        "from llmrouter_collect.cli import app\n"
        "for args in ([], ['serve'], ['serve', 'status']):\n"
        "    assert CliRunner().invoke(app, [*args, '--help']).exit_code == 0"
    )
    loaded = _loaded_after(statement)
    assert [name for name, present in loaded.items() if present] == []


def test_every_public_name_of_the_package_resolves() -> None:
    import llmrouter_collect

    for name in llmrouter_collect.__all__:
        assert getattr(llmrouter_collect, name) is not None, name
