"""Prompts: a Problem becomes chat messages or a completion prompt, from built-in or user templates (pure)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError
from .records import Problem, choice_letter

MCQ_TEMPLATE = (
    "The following is a multiple choice question about {category}. Think step by step and then finish your "
    'answer with "The answer is (X)" where X is the correct letter choice.\n'
    "\n"
    "Question: {question}\n"
    "Options:\n"
    "{choices}\n"
    "\n"
    "Answer: Let's think step by step."
)
OPEN_ENDED_TEMPLATE = (
    "Solve the following problem. Think step by step, and put your final answer within \\boxed{}.\n"
    "\n"
    "Problem: {question}"
)
PLACEHOLDERS = ("{question}", "{choices}", "{category}")
"""The only brace groups a template fills in; every other brace (LaTeX such as \\boxed{}) is left as written."""


@dataclass(frozen=True, slots=True)
class Templates:
    """The prompt templates of a run; `system` is an optional system message (chat only)."""

    mcq: str = MCQ_TEMPLATE
    open_ended: str = OPEN_ENDED_TEMPLATE
    system: str | None = None

    def fingerprint(self) -> str:
        """A short hash of the templates, stored with results so that changed prompts are not mixed."""
        data = orjson.dumps({"mcq": self.mcq, "open_ended": self.open_ended, "system": self.system})
        return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def load_templates(path: Path | None) -> Templates:
    """Built-in templates, with the keys `mcq`, `open_ended`, `system` of a TOML file replacing them.

    Raises:
        ConfigError: the file is missing, is not TOML, or has unknown keys or non-string values.
    """
    if path is None:
        return Templates()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"prompt template file {path} not found", hint="check --prompt-template") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"prompt template file {path} is not valid TOML: {err}",
            hint='write it as  mcq = """...{question}...{choices}..."""  and/or  open_ended = """..."""',
        ) from None
    allowed = {"mcq", "open_ended", "system"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"prompt template file {path}: unknown key(s) {', '.join(unknown)}",
            hint="allowed keys: mcq, open_ended, system",
        )
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"prompt template file {path}: `{key}` must be a non-empty string")
        if key != "system" and "{question}" not in value:
            raise ConfigError(
                f"prompt template file {path}: `{key}` has no {{question}} placeholder",
                hint="placeholders: {question}, {choices} (MCQ), {category}",
            )
    if "mcq" in data and "{choices}" not in data["mcq"]:
        raise ConfigError(f"prompt template file {path}: `mcq` has no {{choices}} placeholder")
    return Templates(
        mcq=data.get("mcq", MCQ_TEMPLATE),
        open_ended=data.get("open_ended", OPEN_ENDED_TEMPLATE),
        system=data.get("system"),
    )


def format_choices(choices: tuple[str, ...]) -> str:
    """Options as lines `A. text`, `B. text`, ..."""
    return "\n".join(f"{choice_letter(i)}. {text}" for i, text in enumerate(choices))


def render_prompt(problem: Problem, templates: Templates) -> str:
    """The user prompt text for a problem."""
    template = templates.mcq if problem.is_mcq else templates.open_ended
    values = {
        "{question}": problem.question,
        "{choices}": format_choices(problem.choices) if problem.choices is not None else "",
        "{category}": problem.category,
    }
    return _fill(template, values)


def _fill(template: str, values: dict[str, str]) -> str:
    # One left-to-right pass, so a question that itself contains "{choices}" is not filled again.
    out: list[str] = []
    position = 0
    while position < len(template):
        found = [(template.find(key, position), key) for key in values]
        hits = [(index, key) for index, key in found if index >= 0]
        if not hits:
            out.append(template[position:])
            break
        index, key = min(hits)
        out.append(template[position:index])
        out.append(values[key])
        position = index + len(key)
    return "".join(out)


def build_messages(problem: Problem, templates: Templates) -> list[dict[str, str]]:
    """Chat messages for /v1/chat/completions."""
    messages = []
    if templates.system:
        messages.append({"role": "system", "content": templates.system})
    messages.append({"role": "user", "content": render_prompt(problem, templates)})
    return messages


def build_completion_prompt(problem: Problem, templates: Templates) -> str:
    """Prompt text for /v1/completions (base models): the system text, if any, then the user prompt."""
    prompt = render_prompt(problem, templates)
    return f"{templates.system}\n\n{prompt}" if templates.system else prompt
