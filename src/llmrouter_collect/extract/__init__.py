"""Grading: turn one response into a verdict (extracted answer, outcome, rule) for MCQ and math problems."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import GradeError
from .math import Found, answers_equal, extract_math_answer, quick_equal
from .mcq import extract_choice, gold_letter
from .number import extract_number, numbers_equal
from .reasoning import final_text

EXTRACTOR_VERSION = "1.5"
"""Written into every graded record; bump it whenever a rule changes, so two gradings can be compared."""

GRADER_PACKAGES = ("math-verify", "sympy", "latex2sympy2_extended")
"""The packages whose versions decide math verdicts (math-verify parses LaTeX with latex2sympy2_extended into
sympy); their versions are written beside `extractor_version` in every graded record."""


@functools.cache
def grader_versions() -> dict[str, str]:
    """What grades: the extractor version and the installed versions of GRADER_PACKAGES ("missing" if absent).

    Written into every graded record as `grader`, so a graded file says exactly what graded it.
    """
    from importlib.metadata import PackageNotFoundError, version

    found = {"extractor": EXTRACTOR_VERSION}
    for package in GRADER_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


Outcome = Literal["correct", "wrong", "unparsed", "truncated", "error"]
OUTCOMES: tuple[Outcome, ...] = ("correct", "wrong", "unparsed", "truncated", "error")
GRADER_ERROR = "grader_error"
"""`extraction_rule` of a response the grader itself failed on (an exception, or extraction running out of time,
or a symbolic check that raised): its outcome is `unparsed`, never `wrong`, and `collect extract` counts them."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The grade of one response.

    Attributes:
        extracted_answer: the final answer found (MCQ: a letter), or None.
        outcome: correct, wrong, unparsed (no final answer, or the grader failed on it), truncated (cut at the
            token limit with no final answer) or error (the request failed).
        extraction_rule: the rule that found the answer (or that made it unreadable, e.g. `several_answers`, or
            `grader_error` when the grader itself failed on the response).
        check_timed_out: the symbolic equivalence check ran out of time (graded wrong, but unproven).
    """

    extracted_answer: str | None
    outcome: Outcome
    extraction_rule: str | None
    check_timed_out: bool = False

    @property
    def is_correct(self) -> bool:
        """True only for the outcome `correct`."""
        return self.outcome == "correct"

    def fields(self) -> dict[str, Any]:
        """The fields a graded response gains."""
        return {
            "extracted_answer": self.extracted_answer,
            "is_correct": self.is_correct,
            "outcome": self.outcome,
            "extraction_rule": self.extraction_rule,
            "check_timed_out": self.check_timed_out,
        }


@dataclass(frozen=True, slots=True)
class Task:
    """What grading one record needs: its kind and its reference answer."""

    is_mcq: bool
    gold: str
    choices: list[str] | None
    number: bool = False
    """The record's `answer_kind` is `number` (GSM8K, AIME): graded by `number.py`."""


def task_of(record: dict[str, Any], *, where: str = "") -> Task:
    """Read the kind and reference answer of a results record.

    Raises:
        GradeError: the record has no responses list or no usable reference answer.
    """
    label = f"{where}{record.get('unique_id')!r}"
    if not isinstance(record.get("responses"), list):
        raise GradeError(
            f"{label}: no `responses` list — not an inference results file",
            hint="`collect extract` reads files written by `collect infer` (see docs/records.md)",
        )
    choices = record.get("choices")
    is_mcq = bool(record.get("is_mcq")) or isinstance(choices, list)
    if is_mcq:
        letter = gold_letter(record)
        if letter is None:
            raise GradeError(
                f"{label}: multiple-choice problem without a usable `choice_index_correct` or `answer_correct`",
                hint="set choice_index_correct (0-based) in the dataset and rerun `collect infer`, or fix the line",
            )
        clean = [str(option) for option in choices] if isinstance(choices, list) else None
        return Task(True, letter, clean)
    gold = record.get("answer_correct")
    if not isinstance(gold, str | int | float) or isinstance(gold, bool) or not str(gold).strip():
        raise GradeError(
            f"{label}: open-ended problem without `answer_correct`",
            hint="every problem needs its reference answer in answer_correct",
        )
    return Task(False, str(gold), None, record.get("answer_kind") == "number")


def failed(response: dict[str, Any]) -> bool:
    """A response whose request failed: it has an error, or neither text nor a finish reason.

    A null text with a finish reason is an answer the server gave without content (e.g. a reasoning model cut
    at the token limit while still in its separate `reasoning_content`): it is graded as empty text.
    """
    if response.get("error") is not None:
        return True
    return not isinstance(response.get("full_response"), str) and not response.get("finish_reason")


def prepare(task: Task, response: Any) -> Verdict | Found:
    """Grade a response as far as possible without symbolic math.

    Returns a Verdict, or — for a math answer that needs a symbolic comparison — the Found answer, to be
    compared with `task.gold` (by `math.symbolic_equal`, with a time limit).
    """
    if not isinstance(response, dict):  # null, a number or a list where a response object belongs
        return grader_failure()
    if failed(response):
        return Verdict(None, "error", None)
    cut = response.get("finish_reason") == "length"
    text = response.get("full_response")
    final = final_text(text if isinstance(text, str) else "")
    if final.text is None:  # stopped inside its reasoning
        return Verdict(None, "truncated" if cut else "unparsed", "unclosed_reasoning")
    if task.is_mcq:
        choice = extract_choice(final.text, task.choices)
        if choice is None:
            return Verdict(None, "truncated" if cut else "unparsed", None)
        if choice.letter is None:
            return Verdict(None, "unparsed", choice.rule)
        outcome: Outcome = "correct" if choice.letter == task.gold else "wrong"
        return Verdict(choice.letter, outcome, choice.rule)
    if task.number:
        number = extract_number(final.text, allow_last_sentence=not cut)
        if number is None:
            return Verdict(None, "truncated" if cut else "unparsed", None)
        return Verdict(number.text, "correct" if numbers_equal(number.value, task.gold) else "wrong", number.rule)
    found = extract_math_answer(final.text, allow_last_sentence=not cut)
    if found is None:
        return Verdict(None, "truncated" if cut else "unparsed", None)
    quick = quick_equal(found.answer, task.gold)
    if quick is None:
        return found
    return Verdict(found.answer, "correct" if quick else "wrong", found.rule)


def grader_failure() -> Verdict:
    """The verdict of a response the grader could not grade: unparsed, rule `grader_error` (never wrong)."""
    return Verdict(None, "unparsed", GRADER_ERROR)


def prepare_safely(task: Task, response: Any) -> Verdict | Found:
    """`prepare`, but an unexpected exception on this one response gives `grader_failure()` instead of
    stopping the file: one strange response never costs the others their grades."""
    try:
        return prepare(task, response)
    except Exception:  # a grader bug on one response is data (counted and reported), not a crash of the run
        return grader_failure()


def grade_response(record: dict[str, Any], response: dict[str, Any]) -> Verdict:
    """Grade one response of a results record, in this process and without a time limit.

    For whole files use `runner.grade_file`, which runs symbolic checks in worker processes with a hard time
    limit and caches repeated (answer, reference) pairs. A grader exception gives `grader_failure()`.
    """
    task = task_of(record)
    result = prepare_safely(task, response)
    if isinstance(result, Verdict):
        return result
    try:
        equal = answers_equal(result.answer, task.gold)
    except Exception:
        return grader_failure()
    return Verdict(result.answer, "correct" if equal else "wrong", result.rule)


__all__ = [
    "EXTRACTOR_VERSION",
    "GRADER_ERROR",
    "GRADER_PACKAGES",
    "OUTCOMES",
    "Outcome",
    "Task",
    "Verdict",
    "grade_response",
    "grader_failure",
    "grader_versions",
    "prepare",
    "prepare_safely",
    "task_of",
]
