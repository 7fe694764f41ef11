"""Pure parts of infer: planning a resumed run, settings mismatch, token shares, output names."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson

from llmrouter_collect.infer import (
    META_RUNS_KEPT,
    InferStats,
    changed_problems,
    count_plan,
    identity_mismatch,
    iter_runs,
    output_path,
    split_tokens,
    write_meta,
)
from llmrouter_collect.records import Problem, problem_signature
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
    uids = ["done", "part", "dead", "down", "new"]
    runs = list(iter_runs([problem(u) for u in uids], state, k=5, max_attempts=3))
    counts = count_plan(uids, state, k=5, max_attempts=3)
    assert [(r.problem.unique_id, r.need, r.next_index, r.prior_attempts) for r in runs] == [
        ("part", 3, 2, 1),
        ("down", 5, 0, 0),
        ("new", 5, 0, 0),
    ]
    assert counts.skipped_done == 1 and counts.skipped_exhausted == 1
    bigger = list(iter_runs([problem("done")], state, k=8, max_attempts=3))
    assert [(r.need, r.next_index) for r in bigger] == [(3, 5)]


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


def test_changed_problems_compares_the_fields_the_file_holds() -> None:
    asked = Problem(unique_id="a", question="q", answer_correct="1", category="c", dataset="t")
    record = asked.to_record_fields()
    old_format = {key: value for key, value in record.items() if key not in ("dataset", "explanation_correct")}
    state = FileState(
        problems={
            "a": ProblemState(good=1, lines=1, signature=problem_signature(record)),
            "old": ProblemState(good=1, lines=1, signature=problem_signature(old_format)),
            "mixed": ProblemState(good=1, lines=2, signature=problem_signature(record), mixed=True),
        }
    )
    same = [asked, replace(asked, unique_id="old", dataset="renamed"), replace(asked, unique_id="new")]
    assert changed_problems(same, state) == []  # `old` recorded no dataset, so a new label is no change
    edited = [
        replace(asked, answer_correct="2"),
        replace(asked, unique_id="old", question="q?"),
        replace(asked, unique_id="mixed"),
    ]
    assert [p.unique_id for p in changed_problems(edited, state)] == ["a", "old", "mixed"]


def test_meta_keeps_a_bounded_history_of_runs(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    settings = load_settings(output_dir=tmp_path, k_responses=2)
    identity = {"model": "m", "endpoint": "chat", "generation": {}, "prompt_fingerprint": "sha256:x"}
    problems = [problem("a")]
    meta_path = tmp_path / "r.jsonl.meta.json"
    meta_path.write_text('{"updated_at": "2020-01-01", "k_responses": 1, "collect_version": "0.0.1"}')
    for _ in range(META_RUNS_KEPT + 5):
        write_meta(path, settings, identity, problems)
    meta = orjson.loads(meta_path.read_bytes())
    assert len(meta["runs"]) == META_RUNS_KEPT
    assert meta["runs"][0] == {
        "started_at": "2020-01-01",
        "collect_version": "0.0.1",
        "datasets": None,
        "num_problems": None,
        "dataset_fingerprint": None,
        "k_responses": 1,
    }
    assert all(run["k_responses"] == 2 and run["problems"] == 1 for run in meta["runs"][1:])
    assert meta["k_responses"] == 2 and "api_key" not in meta["settings"]
    warnings: list[str] = []
    meta_path.write_text("{not json")
    write_meta(path, settings, identity, problems, warnings.append)
    assert len(orjson.loads(meta_path.read_bytes())["runs"]) == 1 and "unreadable" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl.meta.json"]


def test_stats_split_failures_into_retryable_and_out_of_attempts() -> None:
    stats = InferStats(problems_failed=5, problems_exhausted=2, problems_not_asked=1, skipped_exhausted=3)
    assert stats.retryable == 4 and stats.out_of_attempts == 5


def test_the_cli_does_not_load_the_engine_to_show_help() -> None:
    code = (
        "import sys, llmrouter_collect.cli\n"
        "heavy = [m for m in ('llmrouter_collect.infer', 'datasets', 'aiohttp') if m in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "llmrouter_collect.infer" not in result.stdout and "datasets" not in result.stdout
