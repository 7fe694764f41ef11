"""Grading speed of `collect extract` on this machine: MCQ and math responses per second.

Usage: .venv/bin/python bench/bench_extract.py [--responses 100000] [--symbolic 2000] [--data DIR]

Builds results files in a temp directory and grades them with `runner.grade_file` (what the CLI runs):
  mcq       N responses replicated from the MMLU-Pro dev outputs (every response is extracted; no cache applies)
  math      N responses replicated from the math dev outputs (repeated (answer, reference) pairs hit the cache)
  symbolic  M math responses whose answers are all different and all need sympy (the cache-free worst case),
            graded with 1 worker and with all cores
  distinct  the dev outputs as they are (MMLU-Pro + math, mostly distinct answers: no replication for the cache
            to hide), graded by the whole command (`python -m llmrouter_collect extract`, start-up included), and
            the math file beside math-verify's own parse + verify of the same responses (one process, no start-up)
Without the shared data, generated responses in the same formats are used.

`--only distinct` runs the last set alone; `--compare-src DIR` also times the whole command with the package
found in DIR (e.g. an older checkout's `src`), in the same run, so the ratio holds under the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llmrouter_collect.extract.pool import default_workers
from llmrouter_collect.extract.runner import FileSummary, grade_file

DEFAULT_DATA = Path("/work/shared/data/outputs")


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _generated_mcq() -> list[dict[str, Any]]:
    rng = random.Random(0)
    records = []
    for i in range(200):
        letters = "ABCDEFGHIJ"
        texts = [
            f"We refer to Wikipedia for help. Option {rng.choice(letters)} is tempting but " * 8
            + f"the answer is ({rng.choice(letters)}).",
            "Let's think step by step. " * 20 + f"Answer: {rng.choice(letters)}",
            "The patient has a history of smoking. " * 60,
            f"<think>{'maybe (B). ' * 40}</think>\n**{rng.choice(letters)}**",
            f"The answer is ({rng.choice(letters)}) and ({rng.choice(letters)}).",
        ]
        records.append({"unique_id": f"g/{i}", "is_mcq": True, "choices": [f"o{j}" for j in range(10)],
                        "choice_index_correct": rng.randrange(10), "answer_correct": "o0", "category": "gen",
                        "responses": [{"full_response": text} for text in texts]})
    return records


def _generated_math() -> list[dict[str, Any]]:
    rng = random.Random(1)
    records = []
    for i in range(200):
        gold = rng.randrange(1, 500)
        texts = [
            f"First we compute {gold} - 3 = {gold - 3}. " * 10 + f"So the answer is $\\boxed{{{gold}}}$.",
            "Step by step... " * 30 + f"#### {gold + rng.choice([0, 1])}",
            f"Thus the result is \\(\\frac{{{2 * gold}}}{{2}}\\).",
            f"The final answer is $\\boxed{{{gold}\\sqrt{{2}}}}$. I hope it is correct.",
        ]
        records.append({"unique_id": f"m/{i}", "is_mcq": False, "choices": None, "choice_index_correct": None,
                        "answer_correct": str(gold), "category": "gen",
                        "responses": [{"full_response": text} for text in texts]})
    return records


def _replicate(records: list[dict[str, Any]], responses: int, path: Path) -> int:
    """Write copies of `records` (new unique_ids) until `responses` responses are in the file."""
    written = 0
    copy = 0
    with path.open("w", encoding="utf-8") as out:
        while written < responses:
            for record in records:
                take = record["responses"][: responses - written]
                if not take:
                    break
                out.write(json.dumps({**record, "unique_id": f"{record['unique_id']}#{copy}",
                                      "responses": take}) + "\n")
                written += len(take)
            copy += 1
    return written


def _symbolic(count: int, path: Path) -> int:
    """Distinct answers that all need the symbolic check (radicals, pi, expressions), half of them equal."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            k = i + 2
            if i % 2:
                pred, gold = f"\\frac{{\\sqrt{{{k}}}}}{{{k}}}", f"\\frac{{1}}{{\\sqrt{{{k}}}}}"
            else:
                pred, gold = f"(x+{k})^2", f"x^2+{2 * k}x+{k * k + 1}"
            out.write(json.dumps({"unique_id": f"s/{i}", "is_mcq": False, "choices": None,
                                  "choice_index_correct": None, "answer_correct": gold, "category": "sym",
                                  "responses": [{"full_response": f"Hence $\\boxed{{{pred}}}$."}]}) + "\n")
    return count


def _timed(source: Path, workers: int | None) -> tuple[float, FileSummary]:
    started = time.perf_counter()
    summary = grade_file(source, source.with_name(source.stem + ".out.jsonl"), workers=workers)
    return time.perf_counter() - started, summary


def _command(source: Path, src: Path | None = None) -> float:
    """Wall time of the whole `extract` command (a new process: start-up, imports and workers included)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    target = source.with_name(source.stem + ".cmd.graded.jsonl")
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "llmrouter_collect", "extract", "-i", str(source), "-o", str(target)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _math_verify_alone(records: list[dict[str, Any]]) -> tuple[float, int]:
    """math-verify's parse of the reference and of each whole response, then verify: its own grading path."""
    import logging

    from math_verify import parse, verify  # type: ignore[import-untyped]

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    count = 0
    started = time.perf_counter()
    for record in records:
        gold = parse("$" + str(record["answer_correct"]) + "$")
        for response in record["responses"]:
            verify(gold, parse(response["full_response"]))
            count += 1
    return time.perf_counter() - started, count


def _distinct(
    mcq: list[dict[str, Any]], math: list[dict[str, Any]], root: Path, compare: Path | None, repeats: int
) -> None:
    mixed, math_file = root / "mixed.jsonl", root / "math_distinct.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in [*mcq, *math]), encoding="utf-8")
    math_file.write_text("".join(json.dumps(r) + "\n" for r in math), encoding="utf-8")
    n_mixed = sum(len(r["responses"]) for r in [*mcq, *math])
    n_math = sum(len(r["responses"]) for r in math)
    _command(mixed)  # warm the disk cache and the bytecode
    # Best of `repeats`, the trees alternating, so a burst of other work on the machine hits both alike.
    best: dict[tuple[str, Path | None], float] = {}
    for _ in range(repeats):
        for src in (None, compare) if compare is not None else (None,):
            for name, path in (("mixed", mixed), ("math", math_file)):
                seconds = _command(path, src)
                best[(name, src)] = min(best.get((name, src), seconds), seconds)
    rows = [("mixed, whole command", n_mixed, best[("mixed", None)]),
            ("math, whole command", n_math, best[("math", None)])]
    if compare is not None:
        rows += [(f"mixed, whole command ({compare})", n_mixed, best[("mixed", compare)]),
                 (f"math, whole command ({compare})", n_math, best[("math", compare)])]
    mv_seconds, mv_count = min(_math_verify_alone(math) for _ in range(repeats))
    rows.append(("math, math-verify parse+verify alone", mv_count, mv_seconds))
    title = f"distinct answers (not replicated), best of {repeats}"
    print(f"\n{title:48} {'responses':>9} {'seconds':>8} {'resp/s':>8}")
    for name, count, seconds in rows:
        print(f"{name:48} {count:9d} {seconds:8.2f} {count / seconds:8.0f}")
    print(f"\nmath: the whole command is {mv_seconds / rows[1][2]:.2f}x faster than math-verify alone"
          + (f"; this tree / {compare}: mixed {rows[2][2] / rows[0][2]:.2f}x, math {rows[3][2] / rows[1][2]:.2f}x "
             "(above 1 = this tree is faster)" if compare is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000, help="responses in the mcq and math files")
    parser.add_argument("--symbolic", type=int, default=2_000, help="distinct symbolic math responses")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=["distinct"], default=None, help="run only the distinct-answers set")
    parser.add_argument("--compare-src", type=Path, default=None, help="also time the command with this package src")
    parser.add_argument("--repeats", type=int, default=3, help="distinct set: best of this many runs")
    args = parser.parse_args()
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores (using {default_workers()}), python {sys.version.split()[0]}, "
          f"load average before the run {load} (other work on the machine slows every figure)")
    have_data = (args.data / "mmlu_pro_dev.jsonl").exists() and (args.data / "math_dev.jsonl").exists()
    mcq = _load(args.data / "mmlu_pro_dev.jsonl") if have_data else _generated_mcq()
    math = _load(args.data / "math_dev.jsonl") if have_data else _generated_math()
    print(f"responses from: {args.data if have_data else 'generated text (shared data not found)'}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only == "distinct":
            _distinct(mcq, math, root, args.compare_src, args.repeats)
            return
        rows = []
        n = _replicate(mcq, args.responses, root / "mcq.jsonl")
        seconds, summary = _timed(root / "mcq.jsonl", None)
        rows.append(("mcq (replicated real)", n, seconds, summary))
        n = _replicate(math, args.responses, root / "math.jsonl")
        seconds, summary = _timed(root / "math.jsonl", None)
        rows.append(("math (replicated real)", n, seconds, summary))
        n = _symbolic(args.symbolic, root / "sym.jsonl")
        seconds_one, summary_one = _timed(root / "sym.jsonl", 1)
        rows.append(("math symbolic, 1 worker", n, seconds_one, summary_one))
        seconds_all, summary_all = _timed(root / "sym.jsonl", None)
        rows.append((f"math symbolic, {default_workers()} workers", n, seconds_all, summary_all))
        _distinct(mcq, math, root, args.compare_src, args.repeats)
    print(f"\n{'set':28} {'responses':>9} {'seconds':>8} {'resp/s':>9} {'sympy checks':>12} {'cache hits':>10} "
          f"{'timeouts':>8}")
    for name, count, seconds, summary in rows:
        print(f"{name:28} {count:9d} {seconds:8.2f} {count / seconds:9.0f} {summary.symbolic_checks:12d} "
              f"{summary.cache_hits:10d} {summary.timeouts:8d}")
    print(f"\nparallel speed-up on distinct symbolic checks: {seconds_one / seconds_all:.2f}x "
          f"with {default_workers()} workers")


if __name__ == "__main__":
    main()
