"""Pure parts of infer: planning a resumed run, settings mismatch, token shares, output names."""

from __future__ import annotations

from pathlib import Path

from llmrouter_collect.infer import identity_mismatch, output_path, plan_runs, split_tokens
from llmrouter_collect.records import Problem
from llmrouter_collect.settings import load_settings
from llmrouter_collect.store import FileState, ProblemState


def problem(uid: str) -> Problem:
    return Problem(unique_id=uid, question="q", answer_correct="1", category="c", dataset="t")


def test_plan_skips_done_and_exhausted_and_tops_up() -> None:
    state = FileState(
        problems={
            "done": ProblemState(good=5, attempts=1),
            "part": ProblemState(good=2, errors=3, attempts=1),
            "dead": ProblemState(good=0, errors=5, attempts=3),
            "down": ProblemState(good=0, errors=5, attempts=0),
        }
    )
    plan = plan_runs(
        [problem(u) for u in ["done", "part", "dead", "down", "new"]], state, k=5, max_attempts=3
    )
    assert [(r.problem.unique_id, r.need, r.next_index, r.prior_attempts) for r in plan.runs] == [
        ("part", 3, 2, 1),
        ("down", 5, 0, 0),
        ("new", 5, 0, 0),
    ]
    assert plan.skipped_done == 1 and plan.skipped_exhausted == 1
    bigger = plan_runs([problem("done")], state, k=8, max_attempts=3)
    assert [(r.need, r.next_index) for r in bigger.runs] == [(3, 5)]


def test_identity_mismatch_names_the_field_and_flag() -> None:
    current = {
        "model": "m",
        "endpoint": "chat",
        "generation": {"temperature": 0.7, "top_p": None, "max_tokens": 100, "seed": None, "stop": []},
        "prompt_fingerprint": "sha256:a",
    }
    assert identity_mismatch(None, current) is None
    assert identity_mismatch(dict(current), current) is None
    other_temp = {**current, "generation": {**current["generation"], "temperature": 1.0}}
    assert "--temperature" in (identity_mismatch(other_temp, current) or "")
    assert "--model" in (identity_mismatch({**current, "model": "x"}, current) or "")
    assert "--prompt-template" in (
        identity_mismatch({**current, "prompt_fingerprint": "sha256:b"}, current) or ""
    )
    assert identity_mismatch({"unique_id": "old-format"}, current) is None


def test_split_tokens_sums_exactly() -> None:
    assert split_tokens(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(split_tokens(1001, [5, 17, 300, 2])) == 1001
    assert split_tokens(100, [1, 3]) == [25, 75]
    assert split_tokens(0, [1, 2]) == [0, 0]
    assert split_tokens(5, []) == []


def test_output_path_default_and_given(tmp_path: Path) -> None:
    settings = load_settings(output_dir=tmp_path)
    assert (
        output_path(settings, "google/gemma-3-4b-it")
        == tmp_path / "google_gemma-3-4b-it_MATH_500_MMLU_Pro.jsonl"
    )
    assert output_path(load_settings(output_dir=tmp_path, output_file="x.jsonl"), "m") == tmp_path / "x.jsonl"
    assert output_path(load_settings(output_dir=tmp_path, output_file="sub/x.jsonl"), "m") == Path(
        "sub/x.jsonl"
    )
