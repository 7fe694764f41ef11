"""Hostile responses (degenerate small models, damaged files): each is graded or unparsed, quickly, never a crash."""

from __future__ import annotations

import time

import pytest

from llmrouter_collect.extract import GRADER_ERROR, Task, Verdict, grade_response, prepare, prepare_safely
from llmrouter_collect.extract.math import Found, extract_math_answer, quick_equal

NINES = "9" * 4301  # one digit over Python's int-string limit (4,300): int(NINES) raises ValueError

HOSTILE_TEXTS: dict[str, str] = {
    "4301 nines boxed": "So the answer is \\boxed{" + NINES + "}",
    "1 MB response": ("Let me add 12 and 30 again. " * 40_000)[:1_000_000] + "\nSo the answer is \\boxed{42}.",
    "10,000 nested braces": "\\boxed{" + "{" * 10_000 + "7" + "}" * 10_000 + "}",
    "10,000 nested boxes": "\\boxed{" * 10_000 + "7" + "}" * 10_000,
    "10,000 unclosed boxes": "\\boxed{" * 10_000,
    "NUL bytes and lone surrogates": "x\x00\x00 \ud800 so \\boxed{4\x00} \udfff\x00",
    "\\frac with 5,000 digits": "\\boxed{\\frac{" + "7" * 5000 + "}{" + "3" * 5000 + "}}",
    "exponent tower": "The answer is \\boxed{9^{9^{9^{9}}}}",
    "exponent of 100 digits": "\\boxed{1e" + "9" * 100 + "}",
    "100,000 digits in the last sentence": "So the answer is " + "9" * 100_000 + ".",
    "200,000 backslashes": "\\" * 200_000,
    "100,000 unclosed think tags": "<think>" * 100_000,
    "worked sum of 100,000 digits": "Answer: " + "9" * 100_000 + " + 1 = " + "1" * 50_000,
    "answer field of 100,000 digits": '{"answer": "' + "9" * 100_000 + ' = 1"}',
    "10,000 answer fields": '{"answer": "A"} ' * 10_000,
    "10,000 continuations": "The answer is (A). Now, let's combine all the answers: " * 10_000,
}
"""Texts degenerate models really produce (or that damaged files hold)."""

NOT_STRINGS = {"null": None, "a number": 12345, "a list": ["\\boxed{4}", "\\boxed{5}"], "an object": {"a": 1}}


@pytest.mark.parametrize(
    ("pred", "gold", "equal"),
    [
        (NINES, "1450000", False),  # raised ValueError (int-string limit) and stopped the whole file
        (NINES, NINES, True),
        (NINES, "9" * 4300 + "8", True),  # within one part in a million, as for any other number
        (NINES, "1" + "0" * 4301, True),
        (NINES + ".5", "1e4301", True),
        ("-" + NINES, NINES, False),
        (NINES + "%", "9" * 4299, True),  # a percentage also matches its value over 100
        ("1" + "0" * 5000, "1e5000", True),
        ("1e" + "9" * 100, "5", None),  # an exponent of 100 digits is not read as a number
        ("\\frac{" + "7" * 5000 + "}{" + "3" * 5000 + "}", "\\frac{7}{3}", True),
        ("\\frac{" + "7" * 5000 + "}{" + "3" * 5000 + "}", "2.3333333", True),
        ("\\frac{" + "7" * 5000 + "}{" + "3" * 4999 + "}", "\\frac{7}{3}", False),
        ("\\frac{1}{" + "0" * 5000 + "}", "1", False),  # division by zero: no number, and too long for sympy
        ("\\frac{1}{0}", "1", None),  # not a number: left to the symbolic check
        ("0.3333333", "\\frac{1}{3}", True),
        ("0.333", "\\frac{1}{3}", False),
        ("0.000", "0", True),
        ("1e-400", "0", False),
    ],
)
def test_huge_numbers_are_compared_without_python_ints(pred: str, gold: str, equal: bool | None) -> None:
    started = time.perf_counter()
    assert quick_equal(pred, gold) is equal
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
@pytest.mark.parametrize(("is_mcq", "gold"), [(False, "1450000"), (False, "x^2+1"), (True, "B")])
def test_hostile_text_is_extracted_quickly_without_raising(name: str, is_mcq: bool, gold: str) -> None:
    task = Task(is_mcq, gold, ["yes", "no", "maybe"] if is_mcq else None)
    started = time.perf_counter()
    result = prepare(task, {"full_response": HOSTILE_TEXTS[name], "finish_reason": "stop", "error": None})
    assert time.perf_counter() - started < 3.0  # nested and unclosed boxes took 50-160 s (a scan per box)
    assert isinstance(result, Verdict | Found)
    if isinstance(result, Verdict):
        assert result.outcome in ("correct", "wrong", "unparsed")


def test_nested_boxes_give_the_innermost_answer_not_a_list_of_every_level() -> None:
    found = extract_math_answer("\\boxed{\\boxed{\\boxed{7}}}")
    assert found == Found("7", "boxed")
    assert extract_math_answer("\\boxed{2} and \\boxed{5}") == Found("2, 5", "boxed")


def test_4301_nines_are_graded_wrong_or_right_not_crashing() -> None:
    record = {"unique_id": "u", "answer_correct": "1450000", "responses": []}
    wrong = grade_response(record, {"full_response": HOSTILE_TEXTS["4301 nines boxed"], "finish_reason": "stop"})
    assert (wrong.outcome, wrong.extracted_answer) == ("wrong", NINES)
    record["answer_correct"] = NINES
    right = grade_response(record, {"full_response": HOSTILE_TEXTS["4301 nines boxed"], "finish_reason": "stop"})
    assert right.outcome == "correct"


@pytest.mark.parametrize("name", list(NOT_STRINGS))
def test_a_text_that_is_not_a_string_is_graded_as_empty(name: str) -> None:
    verdict = grade_response(
        {"unique_id": "u", "answer_correct": "4", "responses": []},
        {"full_response": NOT_STRINGS[name], "finish_reason": "stop"},
    )
    assert verdict.outcome == "unparsed"


@pytest.mark.parametrize("name", ["null", "a number", "a list"])
def test_a_response_that_is_not_an_object_is_a_grader_error_never_wrong(name: str) -> None:
    task = Task(False, "4", None)
    for grade in (prepare, prepare_safely):
        verdict = grade(task, NOT_STRINGS[name])
        assert isinstance(verdict, Verdict)
        assert (verdict.outcome, verdict.extraction_rule, verdict.is_correct) == ("unparsed", GRADER_ERROR, False)
