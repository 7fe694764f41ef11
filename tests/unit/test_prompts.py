"""Prompt templates: golden output, user templates, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.prompts import (
    Templates,
    build_completion_prompt,
    build_messages,
    format_choices,
    load_templates,
    render_prompt,
)
from llmrouter_collect.records import Problem

MCQ = Problem(
    unique_id="q1",
    question="Which gas do plants take in?",
    answer_correct="Carbon dioxide",
    category="biology",
    dataset="t",
    choices=("Oxygen", "Carbon dioxide", "Helium"),
    choice_index_correct=1,
)
OPEN = Problem(
    unique_id="q2",
    question="What is $1+\\frac{1}{2}$?",
    answer_correct="\\frac32",
    category="algebra",
    dataset="t",
)


def test_mcq_prompt_golden() -> None:
    text = render_prompt(MCQ, Templates())
    assert text == (
        "The following is a multiple choice question about biology. Think step by step and then finish your "
        'answer with "The answer is (X)" where X is the correct letter choice.\n\n'
        "Question: Which gas do plants take in?\nOptions:\nA. Oxygen\nB. Carbon dioxide\nC. Helium\n\n"
        "Answer: Let's think step by step."
    )


def test_open_prompt_keeps_latex_braces() -> None:
    text = render_prompt(OPEN, Templates())
    assert "\\boxed{}" in text
    assert text.endswith("Problem: What is $1+\\frac{1}{2}$?")


def test_ten_choices_lettered_a_to_j() -> None:
    lines = format_choices(tuple(str(i) for i in range(10))).splitlines()
    assert [line[0] for line in lines] == list("ABCDEFGHIJ")


def test_question_containing_placeholder_is_not_refilled() -> None:
    tricky = Problem(
        unique_id="x", question="literal {choices} here", answer_correct="1", category="c", dataset="t"
    )
    assert "literal {choices} here" in render_prompt(tricky, Templates())


def test_messages_and_completion_prompt_with_system() -> None:
    templates = Templates(system="You are careful.")
    messages = build_messages(OPEN, templates)
    assert messages[0] == {"role": "system", "content": "You are careful."}
    assert messages[1]["role"] == "user"
    assert build_completion_prompt(OPEN, templates).startswith("You are careful.\n\n")
    assert build_messages(OPEN, Templates()) == [
        {"role": "user", "content": render_prompt(OPEN, Templates())}
    ]


def test_template_file_overrides_and_changes_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('open_ended = """Q: {question}\\nPut the answer in \\\\boxed{}."""\n')
    templates = load_templates(path)
    assert render_prompt(OPEN, templates).startswith("Q: What is")
    assert templates.mcq == Templates().mcq
    assert templates.fingerprint() != Templates().fingerprint()
    assert Templates().fingerprint() == Templates().fingerprint()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("mcq = 3", "non-empty string"),
        ('open_ended = "no placeholder"', "{question}"),
        ('mcq = "{question} only"', "{choices}"),
        ('other = "x {question}"', "unknown key"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_template_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_templates(path)


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_templates(tmp_path / "nope.toml")


# --- the benchmarks' own prompts -------------------------------------------------------------------

GSM8K = Problem(
    "gsm8k/test/x", "Janet has 3 apples and buys 2 more. How many?", "5", "GSM8K", "gsm8k",
    answer_kind="number", prompt="gsm8k",
)
MMLU = Problem(
    "mmlu/test/x", "2 + 2 = ?", "4", "elementary_mathematics", "mmlu", ("3", "4"), 1, answer_kind="mcq",
    prompt="mmlu",
)
NUMBER = Problem("n", "How many legs has a cat?", "4", "animals", "mine", answer_kind="number")


def test_benchmark_prompts_golden() -> None:
    assert render_prompt(GSM8K, Templates()) == (
        "Solve the following math word problem. Think step by step, and put your final answer (a number only) "
        "within \\boxed{}.\n\nProblem: Janet has 3 apples and buys 2 more. How many?"
    )
    assert render_prompt(MMLU, Templates()) == (
        "The following is a multiple choice question. Think step by step and then finish your answer with "
        '"The answer is (X)" where X is the correct letter choice.\n\n'
        "Question: 2 + 2 = ?\nOptions:\nA. 3\nB. 4\n\nAnswer: Let's think step by step."
    )
    # a number problem without a benchmark prompt (an hf: dataset mapped with kind = "number")
    assert render_prompt(NUMBER, Templates()).endswith("within \\boxed{}.\n\nProblem: How many legs has a cat?")


def test_a_kind_template_replaces_the_benchmark_prompts_of_that_kind(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('mcq = "Q: {question}\\n{choices}\\nAnswer with a letter."\n')
    templates = load_templates(path)
    assert render_prompt(MMLU, templates) == "Q: 2 + 2 = ?\nA. 3\nB. 4\nAnswer with a letter."
    assert render_prompt(GSM8K, templates) == render_prompt(GSM8K, Templates())  # number prompts unchanged
    path.write_text('gsm8k = "Compute: {question}"\nnumber = "N: {question}"\n')
    templates = load_templates(path)
    assert render_prompt(GSM8K, templates) == "Compute: Janet has 3 apples and buys 2 more. How many?"
    assert render_prompt(NUMBER, templates) == "N: How many legs has a cat?"
    assert render_prompt(MMLU, templates) == render_prompt(MMLU, Templates())


def test_fingerprint_counts_the_templates_the_problems_use(tmp_path: Path) -> None:
    # runs on datasets without benchmark prompts keep the fingerprint they had before these prompts existed
    assert Templates().fingerprint([MCQ, OPEN]) == Templates().fingerprint()
    assert Templates().fingerprint([MCQ, GSM8K]) != Templates().fingerprint([MCQ])
    assert Templates().fingerprint([GSM8K, MMLU]) == Templates().fingerprint([MMLU, GSM8K, GSM8K])
    path = tmp_path / "p.toml"
    path.write_text('gsm8k = "Compute: {question}"\n')
    changed = load_templates(path)
    assert changed.fingerprint([GSM8K]) != Templates().fingerprint([GSM8K])
    assert changed.fingerprint([MMLU]) == Templates().fingerprint([MMLU])


def test_benchmark_template_needs_its_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('winogrande = "{question} only"\n')
    with pytest.raises(ConfigError, match=r"`winogrande` has no \{choices\}"):
        load_templates(path)
    path.write_text('colour = "{question}"\n')
    with pytest.raises(ConfigError) as info:
        load_templates(path)
    assert info.value.hint is not None and "gsm8k" in info.value.hint and "number" in info.value.hint
