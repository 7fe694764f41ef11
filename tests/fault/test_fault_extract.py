"""`collect extract` on hostile responses: huge numbers, a megabyte of text, 10,000 nested braces, NUL bytes,
a null, number, list or object where text is expected. Extract exits 0, every response comes out graded
(or marked unparsed/error), none takes the file down, and the input is left as it was.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fault.harness import Trials, make_rows, run_collect

OUTCOMES = {"correct", "wrong", "unparsed", "truncated", "error"}


def _text(rng: random.Random) -> str:
    words = ["the", "answer", "is", "maybe", "\\frac{1}{2}", "(B)", "boxed", "{", "}", "$x$", "\\\\"]
    return " ".join(rng.choice(words) for _ in range(2000))


HOSTILE: dict[str, Callable[[random.Random], Any]] = {
    "4301 nines": lambda rng: "The final answer is \\boxed{" + "9" * 4301 + "}.",
    "1 MB of text": lambda rng: (_text(rng) * (1_000_000 // len(_text(rng)) + 1))[:1_000_000],
    "1 MB ending boxed": lambda rng: "x " * 500_000 + "\\boxed{7}",
    "10,000 nested braces": lambda rng: "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "10,000 unclosed braces": lambda rng: "\\boxed{" + "{" * 10_000 + "1",
    "nested fracs": lambda rng: "\\boxed{" + "\\frac{1}{" * 3000 + "2" + "}" * 3000 + "}",
    "power tower": lambda rng: "\\boxed{9^{9^{9^{9^{9^{9}}}}}}",
    "NUL bytes": lambda rng: "The answer is (A)\x00\x00 \\boxed{4\x00}\x00",
    "many answer phrases": lambda rng: "The answer is (" * 50_000,
    "many boxes": lambda rng: "\\boxed{1} " * 20_000,
    "null text": lambda rng: None,
    "number text": lambda rng: 42,
    "float text": lambda rng: 1e308,
    "list text": lambda rng: ["The answer is (A)", "\\boxed{2}"],
    "object text": lambda rng: {"content": "The answer is (A)"},
    "bool text": lambda rng: True,
}
NOT_TEXT = {"null text", "number text", "float text", "list text", "object text", "bool text"}


def response(index: int, text: Any, rng: random.Random) -> dict[str, Any]:
    return {
        "index": index,
        "full_response": text,
        "reasoning_content": rng.choice([None, "", ["not", "text"], 3]),
        "finish_reason": rng.choice(["stop", "length", None, 7]),
        "usage": rng.choice([None, {"prompt_tokens": 3, "completion_tokens": 5, "reasoning_tokens": 0}]),
        "latency_s": 0.1,
        "obtained_via": "n=4",
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "error": None,
    }


def good_text(row: dict[str, Any]) -> str:
    if row["choices"] is not None:
        return f"Clearly. The answer is ({'ABCD'[row['choice_index_correct']]})."
    return f"So the total is \\boxed{{{row['answer_correct']}}}."


def test_hostile_responses_are_graded_not_fatal(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        rows = make_rows(12)  # 6 multiple-choice, 6 open-ended: 18 hostile slots each, every kind in both
        decks = {}
        for is_mcq in (True, False):
            deck = list(HOSTILE)
            rng.shuffle(deck)
            decks[is_mcq] = deck + [rng.choice(deck) for _ in range(18 - len(deck))]
        planted: dict[tuple[str, int], str] = {}
        lines = []
        for row in rows:
            responses = []
            for i in range(4):
                if i == 0:  # one normal, correct response per problem: it must still be graded correct
                    responses.append(response(i, good_text(row), rng))
                    continue
                kind = decks[row["choices"] is not None].pop()
                planted[(row["unique_id"], i)] = kind
                responses.append(response(i, HOSTILE[kind](rng), rng))
            record = {
                "schema_version": 1, "unique_id": row["unique_id"], "problem": row["question"],
                "is_mcq": row["choices"] is not None, "choices": row["choices"],
                "choice_index_correct": row["choice_index_correct"], "explanation_correct": None,
                "answer_correct": row["answer_correct"], "category": row["category"], "dataset": "fault",
                "model": "test-model", "api_base": "http://127.0.0.1:9/v1", "endpoint": "chat",
                "generation": {"temperature": 0.7, "top_p": None, "max_tokens": 64, "seed": None, "stop": []},
                "prompt_fingerprint": "sha256:0", "k_requested": 4, "attempts": 0,
                "created_at": "2026-01-01T00:00:00.000+00:00", "updated_at": "2026-01-01T00:00:00.000+00:00",
                "responses": responses,
            }  # fmt: skip
            lines.append(json.dumps(record) + "\n")
        source = directory / "hostile.jsonl"
        source.write_text("".join(lines), encoding="utf-8")
        before = source.read_bytes()
        run = run_collect(["extract", "-i", str(source), "--workers", "2", "--grade-timeout", "2"], timeout=240)
        assert run.returncode == 0, run.brief()
        run.assert_clean_output()
        assert source.read_bytes() == before, "extract modified its input"
        graded = [json.loads(line) for line in (directory / "hostile.graded.jsonl").read_text("utf-8").splitlines()]
        assert [r["unique_id"] for r in graded] == [row["unique_id"] for row in rows], "records lost or reordered"
        for record in graded:
            uid = record["unique_id"]
            assert len(record["responses"]) == 4, f"{uid}: responses lost"
            for i, graded_response in enumerate(record["responses"]):
                kind = planted.get((uid, i), "normal")
                outcome = graded_response.get("outcome")
                assert outcome in OUTCOMES, f"{uid}[{i}] ({kind}): outcome {outcome!r}"
                assert isinstance(graded_response.get("is_correct"), bool), f"{uid}[{i}] ({kind}): no is_correct"
                if kind == "normal":
                    assert outcome == "correct", f"{uid}[{i}]: a normal correct answer graded {outcome}"
                if kind in NOT_TEXT:  # no text: no answer (cut at the token limit, when finish_reason says so)
                    allowed = (
                        {"unparsed", "error", "truncated"}
                        if graded_response["finish_reason"] == "length"
                        else {"unparsed", "error"}
                    )
                    assert outcome in allowed, f"{uid}[{i}] ({kind}): graded {outcome}"
                    assert graded_response.get("extracted_answer") is None, f"{uid}[{i}] ({kind})"

    trials.run(trial)
