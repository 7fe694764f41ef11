"""Number answers (GSM8K, AIME): table-driven extraction and grading, and the `answer_kind` wiring in grading."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from llmrouter_collect.extract import grade_response
from llmrouter_collect.extract.number import canonical, extract_number, numbers_equal, parse_number

# (response, reference, extracted, correct): responses as models write them to the GSM8K / AIME prompts.
CASES: list[tuple[str, str, str | None, bool]] = [
    (
        "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs are left.\n"
        "She sells them at $2 each: 9 * 2 = 18.\n\nThe final answer is \\boxed{18}.",
        "18", "18", True,
    ),
    ("So she makes \\boxed{\\$18} every day.", "18", "18", True),
    ("Total: 9 × $2 = $18.00 per day.\n#### 18.00", "18", "18", True),
    ("The research cost 1,000,000 + 450,000 = 1,450,000.\n\n**Final Answer:** $1,450,000", "1450000", "1450000", True),
    ("He pays \\boxed{1{,}450{,}000} dollars.", "1450000", "1450000", True),
    ("That is 1 450 000 dollars in total.\nAnswer: 1 450 000", "1450000", "1450000", True),
    ("The temperature is -48 + 21 - 3 = -30, and averaged over 3: -30 / 3 = -10.\n\n\\boxed{-10}", "-10", "-10", True),
    ("The average is \\boxed{−10}°F.", "-10", "-10", True),
    ("So there are \\boxed{5 \\text{ apples}} left.", "5", "5", True),
    ("The answer is 25%.", "25", "25", True),
    ("Therefore the probability is $\\boxed{25\\%}$.", "25", "25", True),
    ("m + n = 45, so the answer is \\boxed{045}.", "45", "45", True),  # AIME answers are written with 3 digits
    ("Hence the requested remainder is $\\boxed{33}$.", "033", "33", True),  # and the reference may be padded
    ("x = 204, so the walk takes \\boxed{x = 204} minutes.", "204", "204", True),
    ("The speed is 2.5 km/h.\n\nFinal answer: 2.50", "2.5", "2.5", True),
    ("The answer is \\boxed{\\frac{3}{4}}.", "0.75", "0.75", True),
    # the final answer, not the last number of the reasoning
    ("\\boxed{18}\n\nCheck: 9 eggs * $2 = $18, plus 3 eaten = 21 eggs in the morning.", "18", "18", True),
    ("#### 20\n\nNote: I first thought 16 + 4 = 20 was wrong, but 5 * 4 = 20 confirms it.", "20", "20", True),
    ("She has 16 - 3 - 4 = 9 eggs and sells them for 9 * 2 = 18 dollars, so she makes $18.", "18", "18", True),
    # a JSON answer field is the commitment; a sentence in it states its number
    ('```json\n{"reasoning": "The answer is 12 bags, so 12 * 25 = 300.", "answer": "The chef spent $300 on '
     'onions."}\n```', "300", "300", True),
    ('{"reasoning": "2,650 * 12 = 31,800", "answer": "John pays $31,800 per year for driving."}', "31800", "31800",
     True),
    ('{"reasoning": "...", "answer": "1,360 - 142 = 1,218"}', "1218", "1218", True),
    ('{"reasoning": "She starts at 1:40 and walks 30 minutes.", "answer": "2:10 pm"}', "2", "2:10 pm", False),
    ("So, the answer is:\n{\"reasoning\": \"4 + 5\", \"answer\": \"9\"}", "9", "9", True),
    # wrong answers stay wrong
    ("9 eggs at $2 is \\boxed{16}.", "18", "16", False),
    ("The answer is \\boxed{180}.", "18", "180", False),
    ("\\boxed{18 or 20}", "18", "18 or 20", False),
    ("The answer is \\boxed{\\sqrt{2}}.", "18", "\\sqrt{2}", False),
]


@pytest.mark.parametrize(("response", "gold", "extracted", "correct"), CASES)
def test_number_answers(response: str, gold: str, extracted: str | None, correct: bool) -> None:
    found = extract_number(response)
    assert found is not None
    assert found.text == extracted
    assert numbers_equal(found.value, gold) is correct


def test_no_final_answer() -> None:
    assert extract_number("Let me think about the eggs first.") is None
    assert extract_number("So the total is 9 * 2 =", allow_last_sentence=False) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("\\$1,450,000.00", Fraction(1450000)),
        ("033", Fraction(33)),
        ("18.0", Fraction(18)),
        ("-\\frac{3}{4}", Fraction(-3, 4)),
        ("3/4", Fraction(3, 4)),
        ("about 18 per day", Fraction(18)),
        ("x = -3", Fraction(-3)),
        ("18 or 20", None),
        ("\\sqrt{2}", None),
        ("", None),
    ],
)
def test_parse_number(text: str, value: Fraction | None) -> None:
    assert parse_number(text) == value


def test_canonical_form() -> None:
    assert [canonical(Fraction(v)) for v in ("18", "-3", "2.5", "1/3")] == ["18", "-3", "2.5", "1/3"]


def record(**fields: Any) -> dict[str, Any]:
    return {
        "unique_id": "gsm8k/test/1",
        "problem": "How many?",
        "is_mcq": False,
        "choices": None,
        "choice_index_correct": None,
        "answer_correct": "1450000",
        "category": "GSM8K",
        "responses": [],
        **fields,
    }


def response(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"full_response": text, "finish_reason": finish_reason, "error": None}


def test_grading_uses_the_number_grader_for_answer_kind_number() -> None:
    number = record(answer_kind="number")
    verdict = grade_response(number, response("So the research cost **$1,450,000**.\n\n#### 1,450,000"))
    assert (verdict.extracted_answer, verdict.outcome, verdict.extraction_rule) == ("1450000", "correct", "hashes")
    cut = grade_response(number, response("First, 1,000,000 + 450,000 = 1,450,000 and then", "length"))
    assert cut.outcome == "truncated"
    assert grade_response(number, response("I am not sure.")).outcome == "unparsed"


def test_records_without_answer_kind_are_graded_as_math() -> None:
    old = record()  # a results line written before answer_kind existed
    verdict = grade_response(old, response("The answer is \\boxed{1,450,000}."))
    assert verdict.outcome == "correct" and verdict.extracted_answer == "1,450,000"  # the math grader's text


@pytest.mark.parametrize(
    ("choices", "text", "gold_index", "letter", "outcome"),
    [
        (["Sarah", "Maria"], "Maria got the easier cases, so the answer is (B).", 1, "B", "correct"),
        (["Sarah", "Maria"], "The answer is (C).", 0, None, "unparsed"),  # no option C among two
        ([f"option {n}" for n in range(26)], "Only the last option works. The answer is (Z).", 25, "Z", "correct"),
        (["slower", "faster", "at the same speed"], "Answer: A", 0, "A", "correct"),
    ],
)
def test_mcq_grading_for_two_to_twenty_six_options(
    choices: list[str], text: str, gold_index: int, letter: str | None, outcome: str
) -> None:
    mcq = record(is_mcq=True, choices=choices, choice_index_correct=gold_index, answer_correct=choices[gold_index])
    verdict = grade_response({**mcq, "answer_kind": "mcq"}, response(text))
    assert (verdict.extracted_answer, verdict.outcome) == (letter, outcome)
