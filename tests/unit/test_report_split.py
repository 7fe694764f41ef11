"""The router train/test split: independent of the `--num-problems` subset, stable, and flagged when too small."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from llmrouter_collect.benchmarks import map_math500_row, map_mmlu_pro_row, select_subset
from llmrouter_collect.records import Problem
from llmrouter_collect.report.metrics import MIN_SPLIT_PROBLEMS, assign_split, split_warning
from llmrouter_collect.report.run import run_report

MATH_SUBJECTS = ["Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
                 "Prealgebra", "Precalculus"]
MMLU_CATEGORIES = ["biology", "business", "chemistry", "computer science", "economics", "engineering", "health",
                   "history", "law", "math", "other", "philosophy", "physics", "psychology"]


def quickstart_problems() -> list[Problem]:
    """MATH-500 and MMLU-Pro as the README quickstart loads them (ids shaped like the real ones), via the real
    row mappers of dataset.py."""
    problems = []
    for n in range(500):
        subject = MATH_SUBJECTS[n % len(MATH_SUBJECTS)]
        folder = subject.lower().replace(" & ", "_and_").replace(" ", "_")
        problems.append(map_math500_row({"unique_id": f"test/{folder}/{7 * n + 3}.json", "problem": f"p{n}",
                                         "answer": str(n), "subject": subject}))
    per_category = 12_032 // len(MMLU_CATEGORIES)
    for n in range(12_032):  # real question ids come in blocks per category, from 70 on
        category = MMLU_CATEGORIES[min(n // per_category, len(MMLU_CATEGORIES) - 1)]
        problems.append(map_mmlu_pro_row({"question_id": 70 + n, "question": f"q{n}", "options": ["a", "b", "c"],
                                          "answer": "B", "category": category}))
    return problems


@pytest.mark.parametrize(("n", "tolerance"), [(200, 0.07), (1000, 0.04), (5000, 0.02)])
def test_a_num_problems_subset_is_split_near_the_test_fraction(n: int, tolerance: float) -> None:
    # Before: the subset took the lowest SHA-256(unique_id) per category and the split put the same low hashes
    # in test — 193 of 200 problems (612 of 1,000) in test.
    subset = select_subset(quickstart_problems(), n)
    assert len(subset) == n
    test = sum(assign_split(problem.unique_id, 0.2) == "test" for problem in subset)
    assert abs(test / n - 0.2) <= tolerance, f"{test} of {n} in test"
    assert split_warning(n - test, test, 0.2) is None


def test_the_split_is_a_salted_sha256_stable_across_runs_and_machines() -> None:
    for uid in ("test/algebra/1098.json", "mmlu_pro/test/70", "ünïcode/1"):
        position = int.from_bytes(hashlib.sha256(f"router-split:{uid}".encode()).digest()[:8], "big") / 2.0**64
        assert assign_split(uid, 0.2) == ("test" if position < 0.2 else "train")
        assert assign_split(uid, position + 1e-9) == "test" and assign_split(uid, position - 1e-9) == "train"


@pytest.mark.parametrize(
    ("train", "test", "fraction", "side"),
    [
        (7, 193, 0.2, "train"),  # the quickstart before the fix
        (388, 612, 0.2, "train"),  # 1,000 problems before the fix: train under half the 80 % asked
        (190, 10, 0.2, "test"),  # too few test problems to mean anything
        (8, 2, 0.2, "test"),  # a tiny set
        (900, 19, 0.02, "test"),  # fewer than MIN_SPLIT_PROBLEMS even when the share is right
        (160, 40, 0.2, None),
        (78, 22, 0.2, None),
        (10, 0, 0.0, None),  # one side only, as asked
        (0, 10, 1.0, None),
        (0, 0, 0.2, None),
    ],
)
def test_split_warning(train: int, test: int, fraction: float, side: str | None) -> None:
    warning = split_warning(train, test, fraction)
    if side is None:
        assert warning is None
    else:
        assert warning is not None and warning.startswith(f"the {side} split has only ")
        assert "\n" not in warning
    assert MIN_SPLIT_PROBLEMS == 20


def _graded(model: str, uid: str, correct: bool) -> dict[str, Any]:
    outcome = "correct" if correct else "wrong"
    return {
        "schema_version": 1, "unique_id": uid, "problem": "p", "is_mcq": False, "choices": None,
        "answer_correct": "1", "category": "algebra", "dataset": "math500", "model": model, "k_requested": 1,
        "extractor_version": "1.3",
        "responses": [{"index": 0, "full_response": "\\boxed{1}", "finish_reason": "stop", "error": None,
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}, "extracted_answer": "1",
                       "is_correct": correct, "outcome": outcome, "extraction_rule": "boxed"}],
    }


def _write_models(directory: Path, problems: int) -> Path:
    directory.mkdir()
    for model in ("small", "large"):
        lines = [json.dumps(_graded(model, f"test/algebra/{i}.json", (i % 3 == 0) == (model == "small")))
                 for i in range(problems)]
        (directory / f"{model}.graded.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_a_tiny_set_is_flagged_in_the_router_view_and_the_export(tmp_path: Path) -> None:
    warnings: list[str] = []
    result = run_report([_write_models(tmp_path / "graded", 12)], export_dir=tmp_path / "export",
                        warn=warnings.append)
    assert result.report.router.split_warning is not None
    assert "split has only" in result.report.router.split_warning
    assert [w for w in warnings if w.startswith("--export: the ") and "split has only" in w]
    assert (tmp_path / "export" / "wide.parquet").exists()
    assert not [p for p in (tmp_path / "export").iterdir() if p.name.startswith(".")]  # no temp file left


def test_enough_problems_give_no_split_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    result = run_report([_write_models(tmp_path / "graded", 400)], export_dir=tmp_path / "export",
                        warn=warnings.append)
    assert result.report.router.split_warning is None
    assert result.report.router.held_out is not None
    assert result.report.router.held_out.train_problems + result.report.router.held_out.test_problems == 400
    assert not [w for w in warnings if "split" in w]
