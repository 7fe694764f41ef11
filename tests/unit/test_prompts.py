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
