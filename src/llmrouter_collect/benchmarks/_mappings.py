"""Row mappings: the unified schema, and the Hugging Face schemas of MATH-500 and MMLU-Pro."""

from __future__ import annotations

import re
from typing import Any

from ..records import Problem, choice_letter
from ._fields import (
    RowError,
    _choices,
    _got,
    _index,
    _optional_text,
    _require,
    _show,
    _text,
    _type_name,
)

MMLU_PRO_PADDING = "N/A"
"""MMLU-Pro pads some option lists to 10 entries with this string; the official scripts drop it."""


def map_unified_row(row: dict[str, Any], dataset: str) -> Problem:
    """Check one row in the unified schema and turn it into a Problem.

    `unique_id` may be an int (converted to str). `question` may be called `problem`, as in results files.
    For an MCQ, `answer_correct` may be left out (it is then the correct choice's text) or be that choice's
    letter (it is then replaced by the text); anything else that differs from the correct choice is an error.

    Args:
        row: the row as read from the file.
        dataset: the dataset name recorded in the Problem.

    Returns:
        The Problem.

    Raises:
        RowError: a field is missing, has the wrong type or contradicts another field.
    """
    if not isinstance(row, dict):
        raise RowError("-", f"expected an object with named fields, got {_type_name(row)}")
    uid = _require(row, "unique_id")
    if isinstance(uid, int) and not isinstance(uid, bool):
        uid = str(uid)
    elif not isinstance(uid, str):
        raise RowError("unique_id", f"expected a string, got {_got(uid)}")
    elif not uid.strip():
        raise RowError("unique_id", "empty")
    question = _text(row, "question" if "question" in row or "problem" not in row else "problem")
    category = _text(row, "category", allow_numbers=True)  # e.g. a difficulty level used as the category
    explanation = _optional_text(row, "explanation_correct")
    raw_choices = row.get("choices")
    raw_index = row.get("choice_index_correct")
    if raw_choices is None:
        if raw_index is not None:
            raise RowError("choice_index_correct", f"is {_show(raw_index)} but choices is null (open question)")
        answer = _text(row, "answer_correct", allow_numbers=True)
        return Problem(uid, question, answer, category, dataset, None, None, explanation)
    choices = _choices(raw_choices, "choices")
    if raw_index is None:
        raise RowError("choice_index_correct", "missing: an MCQ (choices given) needs the 0-based correct index")
    index = _index(raw_index, "choice_index_correct")
    if not 0 <= index < len(choices):
        raise RowError("choice_index_correct", f"{index} is out of range for {len(choices)} choices (0-based)")
    correct = choices[index]
    given = row.get("answer_correct")
    if given is not None and given != "":
        if not isinstance(given, str):
            raise RowError("answer_correct", f"expected a string, got {_got(given)}")
        said = given.strip()
        letter = re.fullmatch(r"\(?([A-Za-z])[).]?", said)
        as_letter = letter is not None and letter.group(1).upper() == choice_letter(index)
        other_text = any(said == choice.strip() for choice in choices)  # "b" may be an option's own text
        if said != correct.strip() and not (as_letter and not other_text):
            raise RowError(
                "answer_correct",
                f"{_show(given)} is neither choices[{index}] ({_show(correct)}) nor its letter {choice_letter(index)}",
                hint="for an MCQ, answer_correct is the text of the correct choice (or leave it out)",
            )
    return Problem(uid, question, correct, category, dataset, choices, index, explanation)


def map_math500_row(row: dict[str, Any], dataset: str = "math500") -> Problem:
    """Map a row of Hugging Face `HuggingFaceH4/MATH-500` to a Problem.

    unique_id as is, question = problem, answer_correct = answer, explanation_correct = solution,
    category = subject; `level` is not kept.

    Raises:
        RowError: a field is missing or has the wrong type.
    """
    return Problem(
        unique_id=_text(row, "unique_id"),
        question=_text(row, "problem"),
        answer_correct=_text(row, "answer", allow_numbers=True),
        category=_text(row, "subject"),
        dataset=dataset,
        explanation_correct=_optional_text(row, "solution"),
    )


def map_mmlu_pro_row(row: dict[str, Any], dataset: str = "mmlu_pro") -> Problem:
    """Map a row of Hugging Face `TIGER-Lab/MMLU-Pro` to a Problem.

    unique_id = `mmlu_pro/test/<question_id>`, choices = options without the "N/A" padding,
    choice_index_correct = the correct option's index in those choices, answer_correct = its text,
    explanation_correct = cot_content (None when empty), category = category.

    The correct option is given by the letter `answer`, as in the official MMLU-Pro evaluation, which grades
    against that letter; `answer_index` is used only when the letter is missing or not a valid letter. The two
    disagree in one test question (3983: "C" vs 1), where the letter is the right one.

    Raises:
        RowError: a field is missing or has the wrong type, or the answer points at padding or out of range.
    """
    raw_id = _require(row, "question_id")
    if isinstance(raw_id, str) and raw_id.strip().isdigit():
        raw_id = int(raw_id)  # a CSV copy stores it as text
    question_id = _index(raw_id, "question_id")
    question = _text(row, "question")
    options = _require(row, "options")
    if not isinstance(options, list | tuple):
        raise RowError("options", f"expected a list of strings, got {_got(options)}")
    letter = row.get("answer")
    index: int | None = None
    if isinstance(letter, str) and len(letter.strip()) == 1 and "A" <= letter.strip() <= "Z":
        index = ord(letter.strip()) - ord("A")
        field = "answer"
    else:
        index = _index(_require(row, "answer_index"), "answer_index")
        field = "answer_index"
    if not 0 <= index < len(options):
        raise RowError(field, f"{_show(row.get(field))} is out of range for {len(options)} options")
    if options[index] == MMLU_PRO_PADDING:
        raise RowError(field, f"{_show(row.get(field))} points at an {MMLU_PRO_PADDING!r} padding option")
    kept = [option for option in options if option != MMLU_PRO_PADDING]
    new_index = index - sum(1 for option in options[:index] if option == MMLU_PRO_PADDING)
    choices = _choices(kept, "options")
    return Problem(
        unique_id=f"mmlu_pro/test/{question_id}",
        question=question,
        answer_correct=choices[new_index],
        category=_text(row, "category"),
        dataset=dataset,
        choices=choices,
        choice_index_correct=new_index,
        explanation_correct=_optional_text(row, "cot_content"),
    )
