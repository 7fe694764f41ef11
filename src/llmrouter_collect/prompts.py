"""Prompts: a Problem becomes chat messages or a completion prompt, from built-in or user templates (pure)."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
NUMBER_TEMPLATE = (
    "Solve the following problem. Think step by step, and put your final answer (a number only) within "
    "\\boxed{}.\n"
    "\n"
    "Problem: {question}"
)
_LETTER_ANSWER = (
    'Think step by step and then finish your answer with "The answer is (X)" where X is the correct letter choice.'
)
BENCHMARK_TEMPLATES: dict[str, tuple[str, str]] = {
    # name: (kind, template). Zero-shot chain of thought, ending in the answer format the grader reads.
    "gsm8k": (
        "number",
        "Solve the following math word problem. Think step by step, and put your final answer (a number only) "
        "within \\boxed{}.\n\nProblem: {question}",
    ),
    "aime": (
        "number",
        "Solve the following AIME problem. Think step by step, and put your final answer within \\boxed{}. "
        "The answer is an integer from 0 to 999.\n\nProblem: {question}",
    ),
    "mmlu": (
        "mcq",
        f"The following is a multiple choice question. {_LETTER_ANSWER}\n\n"
        "Question: {question}\nOptions:\n{choices}\n\nAnswer: Let's think step by step.",
    ),
    "arc": (
        "mcq",
        f"The following is a multiple choice science question. {_LETTER_ANSWER}\n\n"
        "Question: {question}\nOptions:\n{choices}\n\nAnswer: Let's think step by step.",
    ),
    "gpqa": (
        "mcq",
        "Answer the following multiple choice question. The last line of your response should be of the "
        "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of the option letters. Think "
        "step by step before answering.\n\n{question}\n\n{choices}",
    ),
    "winogrande": (
        "mcq",
        f"Fill in the blank (_) in the sentence below with the option that fits best. {_LETTER_ANSWER}\n\n"
        "Sentence: {question}\nOptions:\n{choices}\n\nAnswer: Let's think step by step.",
    ),
    "hellaswag": (
        "mcq",
        f"Choose the most plausible continuation of the text below. {_LETTER_ANSWER}\n\n"
        "Text: {question}\nEndings:\n{choices}\n\nAnswer: Let's think step by step.",
    ),
}
"""The catalogue benchmarks' own prompts (`Problem.prompt` names one). A user template file replaces one by its
name, and `mcq`/`open_ended`/`number` there replace every built-in benchmark prompt of that kind."""
_KIND_KEYS = {"mcq": "mcq", "math": "open_ended", "number": "number"}
PLACEHOLDERS = ("{question}", "{choices}", "{category}")
"""The only brace groups a template fills in; every other brace (LaTeX such as \\boxed{}) is left as written."""


@dataclass(frozen=True, slots=True)
class Templates:
    """The prompt templates of a run; `system` is an optional system message (chat only)."""

    mcq: str = MCQ_TEMPLATE
    open_ended: str = OPEN_ENDED_TEMPLATE
    system: str | None = None
    number: str = NUMBER_TEMPLATE
    named: Mapping[str, str] = field(default_factory=lambda: {k: t for k, (_, t) in BENCHMARK_TEMPLATES.items()})
    """The benchmarks' own templates by name; a problem whose `prompt` is missing here uses its kind's template."""

    def template_key(self, problem: Problem) -> str:
        """Which template a problem is asked with: its benchmark's name, or `mcq`, `open_ended`, `number`."""
        if problem.prompt is not None and problem.prompt in self.named:
            return problem.prompt
        if problem.is_mcq:
            return "mcq"
        return "number" if problem.answer_kind == "number" else "open_ended"

    def template(self, key: str) -> str:
        """The text of a template by key."""
        return {"mcq": self.mcq, "open_ended": self.open_ended, "number": self.number}.get(key) or self.named[key]

    def fingerprint(self, problems: Iterable[Problem] = ()) -> str:
        """A short hash of the templates, stored with results so that changed prompts are not mixed.

        `mcq`, `open_ended` and `system` always count; the other templates count when `problems` use them (so
        runs on datasets that use none of them keep the fingerprint they had before those templates existed).
        """
        data: dict[str, str | None] = {"mcq": self.mcq, "open_ended": self.open_ended, "system": self.system}
        for key in sorted({self.template_key(problem) for problem in problems} - set(data)):
            data[key] = self.template(key)
        return "sha256:" + hashlib.sha256(orjson.dumps(data)).hexdigest()[:16]


def load_templates(path: Path | None) -> Templates:
    """Built-in templates, with the keys of a TOML file replacing them.

    Keys: `mcq`, `open_ended`, `number`, `system`, and the benchmark prompts' names (`gsm8k`, `mmlu`, ...: see
    BENCHMARK_TEMPLATES). `mcq`, `open_ended` or `number` also replaces the built-in benchmark prompts of its kind,
    so a file that only sets `mcq` is used for every multiple-choice benchmark.

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
    allowed = {"mcq", "open_ended", "number", "system", *BENCHMARK_TEMPLATES}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"prompt template file {path}: unknown key(s) {', '.join(unknown)}",
            hint=f"allowed keys: {', '.join(sorted(allowed))}",
        )
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"prompt template file {path}: `{key}` must be a non-empty string")
        if key != "system" and "{question}" not in value:
            raise ConfigError(
                f"prompt template file {path}: `{key}` has no {{question}} placeholder",
                hint="placeholders: {question}, {choices} (MCQ), {category}",
            )
    mcq_keys = ["mcq", *(name for name, (kind, _) in BENCHMARK_TEMPLATES.items() if kind == "mcq")]
    for key in mcq_keys:
        if key in data and "{choices}" not in data[key]:
            raise ConfigError(f"prompt template file {path}: `{key}` has no {{choices}} placeholder")
    named = {
        name: data.get(name, text)
        for name, (kind, text) in BENCHMARK_TEMPLATES.items()
        if name in data or _KIND_KEYS[kind] not in data
    }
    return Templates(
        mcq=data.get("mcq", MCQ_TEMPLATE),
        open_ended=data.get("open_ended", OPEN_ENDED_TEMPLATE),
        system=data.get("system"),
        number=data.get("number", NUMBER_TEMPLATE),
        named=named,
    )


def format_choices(choices: tuple[str, ...]) -> str:
    """Options as lines `A. text`, `B. text`, ..."""
    return "\n".join(f"{choice_letter(i)}. {text}" for i, text in enumerate(choices))


def render_prompt(problem: Problem, templates: Templates) -> str:
    """The user prompt text for a problem."""
    template = templates.template(templates.template_key(problem))
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
