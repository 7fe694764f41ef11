"""What reading shard files together costs: the overlap check of `collect report` and of `collect extract`.

Usage: .venv/bin/python bench/bench_shards.py [--problems 6000] [--k 5] [--shards 3] [--repeats 3]

Builds, in a temp directory, one model's graded results split into N shard files (records carry `"shard"`), and
the same records without the field (split the same way: three plain files of one model), then times in one run,
alternating the two:
  report   `report.loader.load` of the shard files (the overlap check on every record) against the plain files
  extract  `check_shard_overlaps` (the pre-check `collect extract DIR` runs before grading shard files) against
           grading the same files (`runner.grade_file` on each, what the CLI runs next)
Medians over the repeats; the figures that matter are the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from llmrouter_collect.extract.runner import check_shard_overlaps, grade_file
from llmrouter_collect.report.loader import load
from llmrouter_collect.shards import shard_number

TEXT = "Let me think step by step about the options. " * 30


def record(uid: str, k: int, graded: bool, shard: str | None) -> dict[str, Any]:
    responses = []
    for index in range(k):
        response: dict[str, Any] = {
            "index": index, "full_response": TEXT + f"The answer is ({'ABCD'[index % 4]}).",
            "reasoning_content": None, "finish_reason": "stop",
            "usage": {"prompt_tokens": 100, "completion_tokens": 300, "reasoning_tokens": 0},
            "latency_s": 1.0, "obtained_via": f"n={k}", "created_at": "2026-01-01T00:00:00+00:00", "error": None,
        }  # fmt: skip
        if graded:
            correct = index % 4 == 1
            response |= {"extracted_answer": "ABCD"[index % 4], "is_correct": correct,
                         "outcome": "correct" if correct else "wrong", "extraction_rule": "answer_is"}  # fmt: skip
        responses.append(response)
    out: dict[str, Any] = {
        "schema_version": 1, "unique_id": uid, "problem": "Which one?", "is_mcq": True,
        "choices": ["a", "b", "c", "d"], "choice_index_correct": 1, "explanation_correct": None,
        "answer_correct": "b", "category": f"cat{int(uid.split('/')[1]) % 7}", "dataset": "bench",
        "model": "bench-model", "endpoint": "chat", "k_requested": k, "attempts": 0, "responses": responses,
    }  # fmt: skip
    if shard is not None:
        out["shard"] = shard
    if graded:
        out["extractor_version"] = "bench"
    return out


def write_files(directory: Path, problems: int, k: int, count: int, *, graded: bool, sharded: bool) -> list[Path]:
    directory.mkdir(parents=True)
    handles = {}
    paths = []
    for index in range(1, count + 1):
        suffix = ".graded.jsonl" if graded else ".jsonl"
        path = directory / f"bench-model_bench.shard-{index}-of-{count}{suffix}"
        handles[index] = path.open("wb")
        paths.append(path)
    for n in range(problems):
        uid = f"bench/{n}"
        index = shard_number(uid, count)
        line = record(uid, k, graded, f"{index}/{count}" if sharded else None)
        handles[index].write(orjson.dumps(line) + b"\n")
    for handle in handles.values():
        handle.close()
    return paths


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=6000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        root = Path(tmp)
        graded_shards = write_files(root / "gs", args.problems, args.k, args.shards, graded=True, sharded=True)
        graded_plain = write_files(root / "gp", args.problems, args.k, args.shards, graded=True, sharded=False)
        raw_shards = write_files(root / "rs", args.problems, args.k, args.shards, graded=False, sharded=True)
        size = sum(path.stat().st_size for path in raw_shards) / 1e6
        print(f"{args.problems} problems × k={args.k} in {args.shards} shard files ({size:.0f} MB ungraded)")

        def load_shards() -> None:
            assert sum(len(m.problems) for m in load(graded_shards).models.values()) == args.problems

        def load_plain() -> None:
            assert sum(len(m.problems) for m in load(graded_plain).models.values()) == args.problems

        def grade_all() -> None:
            for path in raw_shards:
                grade_file(path, root / "out" / path.name)

        report_shards, report_plain, check, grade = [], [], [], []
        for repeat in range(args.repeats):
            order = [(load_shards, report_shards), (load_plain, report_plain)]
            for action, times in order if repeat % 2 == 0 else order[::-1]:
                times.append(timed(action))
            check.append(timed(lambda: check_shard_overlaps(raw_shards)))
            grade.append(timed(grade_all))
    med = statistics.median
    print(f"report load, shard files (overlap check): {med(report_shards):.2f} s")
    print(f"report load, plain files (no check):      {med(report_plain):.2f} s")
    print(f"  ratio shard / plain: {med(report_shards) / med(report_plain):.3f}")
    print(f"extract pre-check of the shard files:     {med(check):.2f} s")
    print(f"extract grading of the same files:        {med(grade):.2f} s")
    print(f"  ratio pre-check / grading: {med(check) / med(grade):.3f}")


if __name__ == "__main__":
    main()
