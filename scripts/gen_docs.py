"""Regenerate docs/settings.md and .env.example from the Settings model (`--check`: fail if they are stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from llmrouter_collect.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"api_key"}


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value is PydanticUndefined:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Every option is a command-line flag, an environment variable and a `.env` key (in the working directory).",
        "Precedence: defaults < `.env` < environment < flags. Old underscore spellings (`--k_responses`,",
        "`--api_base`, ...) work beside the dashed ones. Lists (`stop`) are comma-separated in the environment.",
        "",
        "| flag | environment variable | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = "COLLECT_" + name.upper()
        default = _default(name)
        shown = f"`{default}`" if default else "(unset)"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{flag}` | `{env}` | {shown} | {description} |")
    lines.append("")
    lines.append("Not every command takes every flag; `collect COMMAND --help` lists a command's own.")
    return "\n".join(lines) + "\n"


def env_example() -> str:
    lines = [
        "# Copy to .env and edit. Every key is optional; flags override these, and these override defaults.",
        "# Secrets (COLLECT_API_KEY) stay empty here: fill them only in your own .env, never commit it.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").splitlines()[0] if field.description else ""
        lines.append(f"# {description}")
        value = "" if name in SECRETS else _default(name)
        lines.append(f"COLLECT_{name.upper()}={value}")
    return "\n".join(lines) + "\n"


COMMANDS = (["infer"], ["extract"], ["serve"], ["serve", "status"], ["serve", "logs"], ["serve", "stop"], ["report"])


def cli_markdown() -> str:
    """Every command's --help, as plain text (no colour, 100 columns)."""
    from typer.testing import CliRunner

    from llmrouter_collect.cli import app

    runner = CliRunner()
    parts = ["# Command reference", "", "Generated from `--help` by `scripts/gen_docs.py`; do not edit by hand.", ""]
    for command in [[], *COMMANDS]:
        result = runner.invoke(
            app, [*command, "--help"], env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100"}, terminal_width=100
        )
        text = "\n".join(line.rstrip() for line in result.output.splitlines()).strip("\n")
        parts += [f"## collect {' '.join(command)}".rstrip(), "", "```text", text, "```", ""]
    return "\n".join(parts)


def main() -> int:
    targets = {
        ROOT / "docs" / "settings.md": settings_markdown(),
        ROOT / ".env.example": env_example(),
        ROOT / "docs" / "cli.md": cli_markdown(),
    }
    stale = [path for path, text in targets.items() if not path.exists() or path.read_text() != text]
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `python scripts/gen_docs.py`")
        return 1 if stale else 0
    for path, text in targets.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
