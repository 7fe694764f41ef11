"""Outcome labels per response: failed requests, truncation, reasoning blocks, and which text is graded."""

from __future__ import annotations

from typing import Any

import pytest

from llmrouter_collect.errors import GradeError
from llmrouter_collect.extract import grade_response, task_of
from llmrouter_collect.extract.reasoning import final_text

MCQ = {
    "unique_id": "mmlu_pro/test/107", "is_mcq": True, "choices": ["$218.40", "$220.00", "$234.00", "$210.00"],
    "choice_index_correct": 0, "answer_correct": "$218.40", "category": "business", "responses": [],
}
MATH = {
    "unique_id": "test/algebra/1098.json", "is_mcq": False, "choices": None, "choice_index_correct": None,
    "answer_correct": "\\frac{3}{4}", "category": "Algebra", "responses": [],
}


def response(text: str | None, *, finish: str | None = "stop", error: dict[str, Any] | None = None,
             reasoning: str | None = None) -> dict[str, Any]:
    return {"index": 0, "full_response": text, "finish_reason": finish, "error": error,
            "reasoning_content": reasoning}


CASES = [
    # failed requests are errors, never wrong answers
    (MCQ, response(None, finish=None, error={"type": "http", "status": 500, "message": "boom"}), "error", None,
     None),
    (MCQ, response("The answer is (A).", error={"type": "timeout", "status": None, "message": "t"}), "error",
     None, None),
    (MATH, response(None, finish=None), "error", None, None),
    # cut at the token limit with no final answer → truncated; with one → graded
    (MCQ, response("Let me compute 7800 / 100 = 78, then 78 x 2.80 = ", finish="length"), "truncated", None,
     None),
    (MATH, response("First, 3/4 of the cake ... so far we have", finish="length"), "truncated", None, None),
    (MATH, response("So \\boxed{\\frac{3}{4}}. Let me double check this by", finish="length"), "correct",
     "\\frac{3}{4}", "boxed"),
    # no answer without truncation → unparsed
    (MCQ, response("I cannot answer this question."), "unparsed", None, None),
    (MCQ, response("The answer is (A) or (B)."), "unparsed", None, "several_answers"),
    # correct / wrong
    (MCQ, response("78 x $2.80 = $218.40. The answer is (A)."), "correct", "A", "answer_is"),
    (MCQ, response("The answer is (C)."), "wrong", "C", "answer_is"),
    (MATH, response("Hence the probability is $\\boxed{0.75}$."), "correct", "0.75", "boxed"),
    (MATH, response("#### 3/5"), "wrong", "3/5", "hashes"),
    # reasoning models: only the text after </think> is graded
    (MCQ, response("<think>Maybe the answer is (C)? No: 78 x 2.80 = 218.40.</think>\nThe answer is (A)."),
     "correct", "A", "answer_is"),
    (MCQ, response("Maybe (C)... 78 x 2.80 = 218.40.</think>\n\nThe answer is (A)."), "correct", "A",
     "answer_is"),  # the template opened <think> in the prompt
    (MCQ, response("<think>The answer is (A), since 78 x 2.80 = 218.40. Let me verify", finish="length"),
     "truncated", None, "unclosed_reasoning"),
    (MATH, response("<think>so x = 3/4, the answer is \\boxed{\\frac{3}{4}} unless", finish="length"),
     "truncated", None, "unclosed_reasoning"),
    (MATH, response("<think>Hmm, \\boxed{\\frac{3}{4}}?", finish="stop"), "unparsed", None, "unclosed_reasoning"),
    (MATH, response("[THINK]try 1/2[/THINK]The answer is $\\boxed{\\frac34}$"), "correct", "\\frac34", "boxed"),
    # no content but a finish reason: the server answered (e.g. cut while in a separate reasoning field)
    (MATH, response(None, finish="length", reasoning="so x = 3/4 and then we"), "truncated", None, None),
    (MCQ, response(None, finish="stop", reasoning="The answer is (A)."), "unparsed", None, None),
    # a separate reasoning field is never graded
    (MCQ, response("", reasoning="The answer is (A)."), "unparsed", None, None),
    (MATH, response("\\boxed{\\frac{1}{2}}", reasoning="\\boxed{\\frac{3}{4}}"), "wrong", "\\frac{1}{2}", "boxed"),
]


@pytest.mark.parametrize(("record", "resp", "outcome", "answer", "rule"), CASES)
def test_outcome(record: dict[str, Any], resp: dict[str, Any], outcome: str, answer: str | None,
                 rule: str | None) -> None:
    verdict = grade_response(record, resp)
    assert (verdict.outcome, verdict.extracted_answer, verdict.extraction_rule) == (outcome, answer, rule)
    assert verdict.is_correct is (outcome == "correct")
    assert verdict.fields()["is_correct"] is (outcome == "correct")


@pytest.mark.parametrize(
    ("text", "final", "had"),
    [
        ("plain answer", "plain answer", False),
        ("<think>a</think>b<think>c</think>d", "d", True),
        ("<think>a</think>b<think>c", None, True),
        ("<|begin_of_thought|>x<|end_of_thought|><|begin_of_solution|>y<|end_of_solution|>", "\ny\n", True),
        ("<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>final<|message|>y", "\ny", True),
    ],
)
def test_final_text(text: str, final: str | None, had: bool) -> None:
    result = final_text(text)
    assert (result.text, result.had_reasoning) == (final, had)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"unique_id": "a", "question": "q"}, "no `responses` list"),
        ({**MCQ, "choice_index_correct": None, "answer_correct": "nothing like it"}, "without a usable"),
        ({**MATH, "answer_correct": ""}, "without `answer_correct`"),
    ],
)
def test_bad_record_is_a_grade_error(record: dict[str, Any], message: str) -> None:
    with pytest.raises(GradeError, match=message):
        task_of(record)


def test_old_format_gold_letter_and_numbers() -> None:
    old = {**MCQ, "choice_index_correct": None, "answer_correct": "A"}
    assert task_of(old).gold == "A"
    assert task_of({**MATH, "answer_correct": 18}).gold == "18"
