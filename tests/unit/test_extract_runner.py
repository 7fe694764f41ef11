"""Grading whole files: streaming merge, torn lines, directories, atomic output, time limits and the cache."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from llmrouter_collect.errors import GradeError
from llmrouter_collect.extract import EXTRACTOR_VERSION, GRADER_PACKAGES, grader_versions
from llmrouter_collect.extract.runner import (
    Change,
    FileFailure,
    FileSummary,
    check_file,
    grade_file,
    grade_path,
    plan,
)

CHOICES = ["$218.40", "$220.00", "$234.00", "$210.00"]


def mcq_record(uid: str, texts: list[str | None], *, category: str = "business", **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1, "unique_id": uid, "problem": "How much tax?", "is_mcq": True, "choices": CHOICES,
        "choice_index_correct": 0, "explanation_correct": None, "answer_correct": "$218.40", "category": category,
        "dataset": "mmlu_pro", "model": "m", "k_requested": len(texts), "attempts": 1,
        "responses": [
            {"index": i, "full_response": text, "finish_reason": "stop" if text is not None else None,
             "error": None if text is not None else {"type": "http", "status": 500, "message": "boom"}}
            for i, text in enumerate(texts)
        ],
        **extra,
    }


def math_record(uid: str, texts: list[str], gold: str = "\\frac{3}{4}", category: str = "Algebra") -> dict[str, Any]:
    return {
        "unique_id": uid, "problem": "p", "is_mcq": False, "choices": None, "choice_index_correct": None,
        "explanation_correct": None, "answer_correct": gold, "category": category,
        "responses": [{"full_response": text} for text in texts],  # the older, simpler format
    }


def write(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + tail, encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_is_graded_beside_the_input_which_stays_untouched(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [
        mcq_record("q1", ["The answer is (A).", "The answer is (B).", None]),
        math_record("m1", ["So $\\boxed{0.75}$.", "#### 4", "no idea"]),
    ])
    before = source.read_bytes()
    [summary] = list(grade_path(source, workers=1))
    assert isinstance(summary, FileSummary)
    assert summary.output == tmp_path / "run.graded.jsonl"
    assert source.read_bytes() == before
    graded = read(summary.output)
    assert [r["extractor_version"] for r in graded] == [EXTRACTOR_VERSION] * 2
    outcomes = [[resp["outcome"] for resp in record["responses"]] for record in graded]
    assert outcomes == [["correct", "wrong", "error"], ["correct", "wrong", "unparsed"]]
    first = graded[0]["responses"][0]
    assert (first["extracted_answer"], first["is_correct"], first["extraction_rule"]) == ("A", True, "answer_is")
    assert graded[0]["responses"][2]["is_correct"] is False
    assert summary.counts == {"correct": 2, "wrong": 2, "error": 1, "unparsed": 1}
    assert summary.accuracy == pytest.approx(2 / 6)
    assert summary.answered_accuracy == pytest.approx(2 / 4)
    assert set(summary.by_category) == {"business", "Algebra"}
    assert not list(tmp_path.glob("*.tmp"))


def test_file_being_written_merges_fragments_and_skips_the_torn_line(tmp_path: Path) -> None:
    # A run in progress: problem q1 has two lines (a failed request, then a good one), the last line is torn.
    first = mcq_record("q1", [None])
    first["k_requested"] = 1
    second = mcq_record("q1", ["The answer is (A)."])
    torn = json.dumps(mcq_record("q2", ["The answer is (A)."]))[:40]
    source = write(tmp_path / "live.jsonl", [first, second, mcq_record("q3", ["Answer: C"])], tail=torn)
    before = source.read_bytes()
    summary = grade_file(source, tmp_path / "out.jsonl", workers=1)
    assert summary.torn_line == 4
    assert source.read_bytes() == before
    graded = read(tmp_path / "out.jsonl")
    assert [r["unique_id"] for r in graded] == ["q1", "q3"]
    assert [resp["outcome"] for resp in graded[0]["responses"]] == ["correct"]  # the error was replaced
    assert summary.counts == {"correct": 1, "wrong": 1}


def test_directory_mode_grades_every_results_file(tmp_path: Path) -> None:
    runs = tmp_path / "inference_results"
    runs.mkdir()
    write(runs / "a.jsonl", [mcq_record("q1", ["The answer is (A)."])])
    write(runs / "b.jsonl", [math_record("m1", ["\\boxed{3/4}"])])
    write(runs / "a.graded.jsonl", [mcq_record("q1", ["The answer is (B)."], extractor_version="1.0")])  # earlier
    write(runs / "renamed.jsonl", [mcq_record("q1", ["Answer: B"], extractor_version="1.0")])  # graded: skipped
    (runs / "notes.txt").write_text("not results")
    results = list(grade_path(runs, workers=1))
    assert all(isinstance(result, FileSummary) for result in results)
    # the same rule as for one file: X.jsonl → X.graded.jsonl beside it (an earlier output replaced)
    assert not (tmp_path / "processed_results").exists()
    assert sorted(path.name for path in runs.glob("*.graded.jsonl")) == ["a.graded.jsonl", "b.graded.jsonl"]
    assert read(runs / "b.graded.jsonl")[0]["responses"][0]["outcome"] == "correct"
    assert read(runs / "a.graded.jsonl")[0]["responses"][0]["extracted_answer"] == "A"
    assert [result.output for result in results] == [runs / "a.graded.jsonl", runs / "b.graded.jsonl"]


def test_directory_with_a_bad_file_still_grades_the_others(tmp_path: Path) -> None:
    write(tmp_path / "good.jsonl", [mcq_record("q1", ["The answer is (A)."])])
    (tmp_path / "dataset.jsonl").write_text(json.dumps({"unique_id": "x", "question": "q?"}) + "\n")
    results = list(grade_path(tmp_path, tmp_path / "graded", workers=1))
    failures = [result for result in results if isinstance(result, FileFailure)]
    assert len(failures) == 1 and "is a dataset, not a results file" in failures[0].error.message
    assert (tmp_path / "graded" / "good.graded.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("id,question\n1,what\n", "line 1 is not JSON"),
        (json.dumps({"unique_id": "x", "question": "q"}) + "\n", "is a dataset, not a results file"),
        # MATH-500 in its Hugging Face schema: `problem`, no `question`
        (json.dumps({"unique_id": "test/algebra/1.json", "problem": "p", "answer": "1"}) + "\n", "is a dataset"),
        (json.dumps([1, 2]) + "\n", "not a results file"),
    ],
)
def test_not_a_results_file(tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text(content)
    with pytest.raises(GradeError, match=message):
        list(grade_path(source))


def test_paths_that_would_lose_data_are_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [mcq_record("q1", ["Answer: A"])])
    with pytest.raises(GradeError, match="is the input file"):
        plan(source, source)
    with pytest.raises(GradeError, match="input not found"):
        plan(tmp_path / "missing.jsonl", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradeError, match="no results files"):
        plan(tmp_path / "empty", None)
    assert plan(source, tmp_path) == [(source, tmp_path / "run.graded.jsonl")]


def test_pathological_answer_finishes_within_the_time_limit(tmp_path: Path) -> None:
    source = write(tmp_path / "p.jsonl", [math_record("m1", [
        "\\boxed{9^{9^{9^{9}}}}",
        "\\boxed{10^{10^{10}} - 10^{10^{10}} + \\frac{3}{4}}",
        "\\boxed{\\frac{3}{4}}",
    ])])
    started = time.monotonic()
    summary = grade_file(source, tmp_path / "out.jsonl", workers=2, timeout=0.5)
    assert time.monotonic() - started < 15
    assert summary.timeouts >= 1
    responses = read(tmp_path / "out.jsonl")[0]["responses"]
    outcomes = [resp["outcome"] for resp in responses]
    assert outcomes[0] == "wrong" and outcomes[2] == "correct"
    timed_out = [resp["check_timed_out"] for resp in responses]
    assert sum(timed_out) == summary.timeouts and timed_out[2] is False  # marked in the file, not only counted


def test_identical_pairs_are_checked_once(tmp_path: Path) -> None:
    texts = ["The result is $\\boxed{\\sqrt{2}/2}$."] * 4
    source = write(tmp_path / "c.jsonl", [math_record("m1", texts, gold="\\frac{\\sqrt{2}}{2}"),
                                           math_record("m2", texts, gold="\\frac{\\sqrt{2}}{2}")])
    summary = grade_file(source, tmp_path / "out.jsonl", workers=2)
    assert summary.symbolic_checks == 1
    assert summary.cache_hits == 7
    assert summary.counts == {"correct": 8}


def test_an_existing_file_that_extract_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [mcq_record("q1", ["Answer: A"])])
    other_run = write(tmp_path / "other.jsonl", [mcq_record("q9", ["Answer: B"])])  # another model's results
    meta = tmp_path / "run.jsonl.meta.json"
    meta.write_text('{"schema_version": 1}\n')
    for target in (other_run, meta):
        before = target.read_bytes()
        with pytest.raises(GradeError, match="exists and is not a graded results file"):
            list(grade_path(source, target, workers=1))
        assert target.read_bytes() == before
    # An earlier output of extract (and an empty file) may be replaced.
    [first] = list(grade_path(source, tmp_path / "out.jsonl", workers=1))
    [again] = list(grade_path(source, tmp_path / "out.jsonl", workers=1))
    assert isinstance(first, FileSummary) and isinstance(again, FileSummary)
    (tmp_path / "empty.jsonl").write_text("")
    assert plan(source, tmp_path / "empty.jsonl") == [(source, tmp_path / "empty.jsonl")]


def test_an_output_name_ending_in_a_slash_is_a_directory(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [mcq_record("q1", ["Answer: A"])])
    [summary] = list(grade_path(source, f"{tmp_path}/graded/", workers=1))
    assert isinstance(summary, FileSummary)
    assert (tmp_path / "graded").is_dir()
    assert summary.output == tmp_path / "graded" / "run.graded.jsonl"
    assert read(summary.output)[0]["responses"][0]["outcome"] == "correct"


@pytest.mark.parametrize("content", [b"\x8f\x12garbage without a newline", b"\n\n", b'{"unique_id": "q1", "resp'])
def test_a_file_without_one_complete_record_is_an_error_and_writes_nothing(tmp_path: Path, content: bytes) -> None:
    source = tmp_path / "run.jsonl"
    source.write_bytes(content)
    with pytest.raises(GradeError, match="no complete results record"):
        list(grade_path(source, workers=1))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.jsonl"]


def test_a_directory_input_with_a_file_name_as_output_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    write(runs / "a.jsonl", [mcq_record("q1", ["Answer: A"])])
    with pytest.raises(GradeError, match="names a file, but the input is a directory"):
        plan(runs, tmp_path / "all.jsonl")
    assert not (tmp_path / "all.jsonl").exists()


def test_a_directory_of_graded_outputs_only_says_so(tmp_path: Path) -> None:
    write(tmp_path / "a.graded.jsonl", [mcq_record("q1", ["Answer: A"], extractor_version="1.0")])
    with pytest.raises(GradeError, match=r"only 1 graded output\(s\)") as info:
        plan(tmp_path, None)
    assert "graded again when named" in str(info.value.hint)


def test_a_symlink_planted_at_the_old_predictable_temp_name_is_never_followed(tmp_path: Path) -> None:
    """The temp file was `.X.graded.jsonl.<pid>.tmp`; a link planted there redirected the write. Now the temp name
    is fresh (fileio.atomic_open)."""
    source = write(tmp_path / "run.jsonl", [mcq_record("q1", ["The answer is (A)."])])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / f".run.graded.jsonl.{os.getpid()}.tmp").symlink_to(victim)
    summary = grade_file(source, tmp_path / "run.graded.jsonl", workers=1)
    assert victim.read_text() == "keep me"
    assert [r["outcome"] for r in read(summary.output)[0]["responses"]] == ["correct"]


def test_a_failed_grading_leaves_the_earlier_output_and_no_temp_file(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [mcq_record("q1", ["The answer is (A)."])])
    target = tmp_path / "run.graded.jsonl"
    grade_file(source, target, workers=1)
    before = target.read_bytes()
    write(source, [], tail="\n\n")  # no complete record: an error, nothing written
    with pytest.raises(GradeError, match="no complete results record"):
        grade_file(source, target, workers=1)
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.graded.jsonl", "run.jsonl"]


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (task / "children").read_text().split()]
    return pids


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the worker processes")
def test_a_worker_killed_mid_file_costs_no_grade(tmp_path: Path) -> None:
    """As the OOM killer would: the batch it held is split and graded again; nothing is lost or marked failed."""
    texts = ["The answer is (A).", "The answer is (B).", "no idea"] * 400  # 1,200 responses: a batch per record
    source = write(tmp_path / "run.jsonl", [mcq_record(f"q{i}", texts) for i in range(4)])
    killed: list[int] = []

    def kill_workers(records: int) -> None:
        if records == 1:
            for pid in _children():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

    summary = grade_file(source, tmp_path / "out.jsonl", workers=1, on_record=kill_workers)
    assert killed
    assert summary.records == 4 and summary.grader_errors == 0
    assert summary.counts == {"correct": 1600, "wrong": 1600, "unparsed": 1600}


def test_a_graded_file_says_what_graded_it(tmp_path: Path) -> None:
    source = write(tmp_path / "run.jsonl", [math_record("m1", ["So $\\boxed{0.75}$."])])
    summary = grade_file(source, tmp_path / "run.graded.jsonl", workers=1)
    [record] = read(summary.output)
    assert record["grader"] == grader_versions()
    assert set(record["grader"]) == {"extractor", *GRADER_PACKAGES}
    assert record["grader"]["extractor"] == EXTRACTOR_VERSION
    assert all(isinstance(value, str) and value for value in record["grader"].values())


def test_check_lists_the_verdicts_a_grader_upgrade_would_change(tmp_path: Path) -> None:
    # Graded by an older extractor that did not read the JSON answer field: unparsed then, correct now.
    graded = mcq_record("q1", ['```json\n{"reasoning": "7,800 / 100 x 2.80", "answer": "A"}\n```', "Answer: B"],
                        extractor_version="1.4")
    graded["responses"][0].update(extracted_answer=None, is_correct=False, outcome="unparsed", extraction_rule=None)
    graded["responses"][1].update(extracted_answer="B", is_correct=False, outcome="wrong", extraction_rule="answer_is")
    path = write(tmp_path / "old.graded.jsonl", [graded])
    before = path.read_bytes()
    summary = check_file(path, workers=1)
    assert path.read_bytes() == before  # an audit writes nothing
    assert summary.responses == 2
    assert summary.old_graders == {"extractor 1.4"}
    assert summary.changes == [Change("m", "q1", 0, "unparsed", None, "correct", "A")]


def test_check_refuses_a_file_that_is_not_graded(tmp_path: Path) -> None:
    path = write(tmp_path / "run.jsonl", [mcq_record("q1", ["Answer: A"])])
    with pytest.raises(GradeError, match="not a graded file"):
        check_file(path, workers=1)
