"""Regenerate docs/settings.md and .env.example from the Settings model (`--check`: fail if they are stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from llmrouter_collect.settings import ENV_FILE_VAR, RISKY_FIELDS, Settings

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
    flags = cli_flags()
    for name, field in Settings.model_fields.items():
        env = "COLLECT_" + name.upper()
        default = _default(name)
        shown = f"`{default}`" if default else "(unset)"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {flags.get(name, '(none)')} | `{env}` | {shown} | {description} |")
    lines.append("")
    lines.append(
        "Not every command takes every flag; `collect COMMAND --help` lists a command's own. A setting whose flag"
    )
    lines.append("is (none) is set through its environment variable or `.env` key only.")
    lines += ["", *DOTENV_SECTION.format(env_file=ENV_FILE_VAR, risky=_risky()).splitlines()]
    return "\n".join(lines) + "\n"


def cli_flags() -> dict[str, str]:
    """Setting name -> the flag(s) the CLI really has for it, as Markdown: `--name`, or `--no-name` for a switch
    that only turns a setting off (read from the Typer app, so the table cannot name a flag that does not exist)."""
    import typer

    from llmrouter_collect.cli import app

    options: dict[str, list[str]] = {}
    pending = [typer.main.get_command(app)]
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            if param.param_type_name == "option" and param.name:
                long = [opt for opt in param.opts if opt.startswith("--") and "_" not in opt]
                options.setdefault(param.name, long[:1])
    flags = {}
    for name in Settings.model_fields:
        if options.get(name):
            flags[name] = f"`{options[name][0]}`"
        elif options.get(f"no_{name}"):
            flags[name] = f"`{options['no_' + name][0]}` (turns it off)"
    return flags


def _risky() -> str:
    return " and ".join(f"`COLLECT_{name.upper()}`" for name in RISKY_FIELDS)


DOTENV_SECTION = """\
## The `.env` file

A `.env` file is not always your own: a cloned repository can bring one. It could point
`COLLECT_API_BASE` at a server of its author's, which would then receive the key you exported, or set
the `COLLECT_VLLM_COMMAND` that `collect serve` runs. So `collect` reads it openly:

- **Which file.** `./.env` in the current directory, if it exists (not a parent's). The environment
  variable `{env_file}` names another file, and `{env_file}=none` (or empty) reads none. It is an
  environment variable only, never a flag or a `.env` key, since it decides where settings come from.
  A file it names that does not exist is an error.
- **What it set.** Every command that reads one prints one line on stderr before it does anything else:
  `read /abs/path/.env: sets COLLECT_MODEL, COLLECT_API_BASE=https://…`. It lists the names of the keys
  that took effect and the values of {risky} only (the risky ones; a value with
  control characters is shown escaped), never a value of `COLLECT_API_KEY`. Keys the environment or a
  flag override, and `COLLECT_*` keys that name no setting (typos), are named after a `;`. The line is a
  warning when the file sets either of those two. In Python, `load_settings` logs the same line on the
  `llmrouter_collect.settings` logger (INFO, or WARNING for those two).
- **Your key stays yours.** When the API key comes from the environment or `--api-key` and
  `COLLECT_API_BASE` comes only from the `.env` file, `collect infer` (and `run_infer`) refuses to
  send the key there: `error: COLLECT_API_BASE=https://… comes only from /abs/path/.env, and would
  receive your API key (…)`. Confirm by passing the same `--api-base` (or exporting
  `COLLECT_API_BASE`), or skip the file with `{env_file}=none`. An address on this machine
  (`localhost`, `127.0.0.1`, `::1`) is allowed, and so is a key that comes from the same file.
- **The vLLM command.** `collect serve` runs `COLLECT_VLLM_COMMAND` (split like a shell line, never
  through a shell). When a `.env` sets it, the line above names the command before it runs. It is
  not refused: a `.env` naming the project's vLLM is the point of the file. Read a `.env` you did not
  write before running `collect serve` next to it, or use `{env_file}=none`.
"""


def env_example() -> str:
    lines = [
        "# Copy to .env and edit. Every key is optional; flags override these, and these override defaults.",
        "# Secrets (COLLECT_API_KEY) stay empty here: fill them only in your own .env, never commit it.",
        f"# collect names the .env it reads and what it sets; {ENV_FILE_VAR} (environment only) picks another file,",
        f"# {ENV_FILE_VAR}=none reads none. See docs/settings.md, 'The .env file'.",
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
