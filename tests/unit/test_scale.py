"""What makes a million problems fit: the streamed ProblemSet equals the old list, and an unchanged results file
is neither read again nor rewritten by compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_dataset import MATH500_ROWS, MMLU_PRO_ROWS, UNIFIED_ROWS, write_jsonl

from llmrouter_collect.benchmarks import dataset_fingerprint, field_digest, load_problems, open_problems
from llmrouter_collect.errors import DatasetError, StoreError
from llmrouter_collect.infer import changed_ids, changed_problems, count_plan, iter_runs
from llmrouter_collect.records import Problem
from llmrouter_collect.shards import parse_shard, select_shard
from llmrouter_collect.store import ResultsWriter, compact, iter_records, scan


def datasets(tmp_path: Path) -> list[str]:
    many = [
        {**row, "unique_id": f"{row['unique_id']}-{n}", "category": f"c{n % 3}"}
        for n in range(7)
        for row in UNIFIED_ROWS
    ]
    return [
        str(write_jsonl(tmp_path / "math.jsonl", MATH500_ROWS)),
        str(write_jsonl(tmp_path / "mmlu.jsonl", MMLU_PRO_ROWS)),
        str(write_jsonl(tmp_path / "many.jsonl", many)),
    ]


@pytest.mark.parametrize("num_problems", ["all", 1, 5, 17, 10_000])
def test_the_problem_set_yields_what_load_problems_returns(tmp_path: Path, num_problems: Any) -> None:
    specs = [*datasets(tmp_path), "sample"]
    listed = load_problems(specs, num_problems)
    problem_set = open_problems(specs, num_problems)
    assert list(problem_set) == listed
    assert list(problem_set) == listed  # read again: the same
    assert problem_set.ids == [p.unique_id for p in listed]
    assert len(problem_set) == len(listed)
    assert problem_set.fingerprint() == dataset_fingerprint(listed)
    assert [problem_set.digest(i) for i in range(len(listed))] == [field_digest(p) for p in listed]
    shapes = {(p.prompt, p.is_mcq, p.answer_kind) for p in listed}
    assert {(p.prompt, p.is_mcq, p.answer_kind) for p in problem_set.shapes} == shapes
    assert len(problem_set.shapes) == len(shapes)


def test_a_streamed_jsonl_reads_as_before_bom_blank_lines_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    body = b"\n".join(__import__("orjson").dumps(row) for row in UNIFIED_ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + body.replace(b"\n", b"\n\n", 1) + b"\n")
    assert list(open_problems([str(path)])) == load_problems([str(path)])
    assert len(load_problems([str(path)])) == len(UNIFIED_ROWS)
    path.write_bytes(body + b"\n{not json\n")
    with pytest.raises(DatasetError, match=rf"line {len(UNIFIED_ROWS) + 1}: not valid JSON"):
        open_problems([str(path)])


def test_a_dataset_edited_during_the_run_is_refused_not_mixed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", UNIFIED_ROWS)
    problem_set = open_problems([str(path)])
    edited = [dict(row) for row in UNIFIED_ROWS]
    edited[1]["question"] = "a different question"
    write_jsonl(path, edited)
    with pytest.raises(DatasetError, match="changed while the run was reading it"):
        list(problem_set)
    write_jsonl(path, UNIFIED_ROWS[:-1])  # a row went missing
    with pytest.raises(DatasetError, match="changed while the run was reading it"):
        list(problem_set)


def test_counts_agree_with_the_lazy_runs(tmp_path: Path) -> None:
    problems = load_problems(["sample"])
    out = tmp_path / "r.jsonl"
    records = [
        record(problems[0], ["a", "b", "c"]),
        record(problems[1], [None, None], attempts=3),
        record(problems[2], ["a"]),
    ]
    write(out, records)
    state = scan(out)
    counts = count_plan([p.unique_id for p in problems], state, k=3, max_attempts=3)
    lazy = list(iter_runs(problems, state, k=3, max_attempts=3))
    assert [(r.problem, r.need, r.next_index) for r in lazy] == [
        (problems[2], 2, 1),
        *((p, 3, 0) for p in problems[3:]),
    ]
    assert (counts.skipped_done, counts.skipped_exhausted, counts.to_ask) == (1, 1, len(problems) - 2)
    assert counts.to_ask == len(lazy) and counts.responses_to_ask == sum(r.need for r in lazy)
    assert counts.responses_held == 4 and counts.most_held == 3
    assert counts.first_to_ask == problems[2].unique_id


def test_changed_ids_agrees_with_changed_problems(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", UNIFIED_ROWS)
    problems = load_problems([str(path)])
    out = tmp_path / "r.jsonl"
    old = record(problems[2], ["x"])
    del old["explanation_correct"]  # a line from an older version: compared field by field
    write(out, [record(problems[0], ["x"]), {**record(problems[1], ["x"]), "problem": "edited"}, old])
    state = scan(out)
    expected = [p.unique_id for p in changed_problems(problems, state)]
    assert changed_ids(open_problems([str(path)]), state) == expected == [problems[1].unique_id]


def record(problem: Problem, texts: list[str | None], attempts: int = 1) -> dict[str, Any]:
    responses = [
        {"index": i, "full_response": text, "error": None if text else {"type": "http", "status": 500, "message": "x"}}
        for i, text in enumerate(texts)
    ]
    return {**problem.to_record_fields(), "model": "m", "k_requested": 3, "attempts": attempts, "responses": responses}


def write(path: Path, records: list[dict[str, Any]]) -> None:
    with ResultsWriter(path, sync_every=1) as writer:
        for line in records:
            writer.append(line)


def identity(path: Path) -> tuple[int, int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, path.read_bytes()


def test_an_unchanged_file_is_left_alone_unread(tmp_path: Path) -> None:
    problems = load_problems(["sample"])
    out = tmp_path / "r.jsonl"
    write(out, [record(p, ["a", "b"]) for p in problems[:4]])
    state = scan(out)
    before = identity(out)
    assert compact(out, known=state) is False
    assert identity(out) == before  # same inode, size, mtime and bytes
    with out.open("r+b") as handle:  # break the first line in place: only a compaction that reads it notices
        handle.write(b"x")
    assert compact(out, known=state) is False
    with pytest.raises(StoreError, match="line 1: not valid JSON"):
        compact(out)  # without what the scan knew, the whole file is read


def test_new_problems_appended_once_each_need_no_rewrite(tmp_path: Path) -> None:
    problems = load_problems(["sample"])
    out = tmp_path / "r.jsonl"
    write(out, [record(p, ["a", "b"]) for p in problems[:3]])
    state = scan(out)
    with ResultsWriter(out, sync_every=1) as writer:
        for p in problems[3:6]:
            writer.append(record(p, ["c"]))
    before = identity(out)
    assert compact(out, known=state) is False
    assert identity(out) == before


@pytest.mark.parametrize("case", ["top-up", "two lines of a new problem"])
def test_a_resume_that_adds_results_still_compacts(tmp_path: Path, case: str) -> None:
    problems = load_problems(["sample"])
    out = tmp_path / "r.jsonl"
    write(out, [record(p, ["a"]) for p in problems[:3]])
    state = scan(out)
    second = [{"index": 1, "full_response": "b", "error": None}]
    grown = problems[1] if case == "top-up" else problems[5]
    with ResultsWriter(out, sync_every=1) as writer:
        if case != "top-up":
            writer.append(record(grown, ["a"]))
        writer.append({**record(grown, ["b"]), "responses": second})
    merged = list(iter_records(out))
    assert compact(out, known=state) is True
    assert list(iter_records(out)) == merged
    assert len(out.read_bytes().splitlines()) == len(merged)
    [grown_record] = [r for r in merged if r["unique_id"] == grown.unique_id]
    assert [r["full_response"] for r in grown_record["responses"]] == ["a", "b"]
    assert compact(out, known=scan(out)) is False


@pytest.mark.parametrize("num_problems", ["all", 5, 17])
def test_one_shard_of_the_problem_set_is_the_shard_of_the_list(tmp_path: Path, num_problems: Any) -> None:
    specs = [*datasets(tmp_path), "sample"]
    listed = load_problems(specs, num_problems)
    whole = open_problems(specs, num_problems)
    seen: list[str] = []
    for index in (1, 2, 3):
        spec = parse_shard(f"{index}/3")
        part = whole.only(spec.holds)
        assert list(part) == select_shard(listed, spec)  # read again: the shard's problems, in order
        assert part.ids == [p.unique_id for p in select_shard(listed, spec)]
        assert [part.digest(i) for i in range(len(part))] == [field_digest(p) for p in select_shard(listed, spec)]
        assert part.shapes == whole.shapes  # one prompt fingerprint for every shard
        seen += part.ids
    assert sorted(seen) == sorted(whole.ids)
