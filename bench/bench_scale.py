"""The scale of one `collect infer` process: N problems × k against the fast server, then a resume of the file.

One command:

    .venv/bin/python bench/bench_scale.py                        # N=1,000,000, k=4
    .venv/bin/python bench/bench_scale.py --problems 100000      # smaller
    .venv/bin/python bench/bench_scale.py --problems 100000 --collect "python -m llmrouter_collect"

It writes two local dataset files in the Hugging Face schemas `collect` recognises (half MATH-500-like rows:
problem, solution, answer, subject, level, unique_id; half MMLU-Pro-like rows: question_id, question, options
padded with "N/A" to 10, answer, answer_index, cot_content, category, src), with MATH-500 and MMLU-Pro's typical
text lengths. Then, against `bench/fast_server.py` in its own process:

1. the first run, `collect infer --dataset MATH,MMLU --num-problems all --k 4 ...`, as a subprocess: wall time,
   peak memory (the child's maximum resident set size from `wait4`, which is VmHWM at exit) and a trace of its
   resident memory (VmRSS from /proc, polled) at a few moments: when loading ended (the first request reached
   the server) and at the end;
2. a resume of the complete file with the same command: wall time and peak memory; it must send no completion
   request (the server's counter), and the results file must not be rewritten (same inode, size and mtime).

Figures are printed as a small table with the machine's load average (2 shared cores skew them).
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
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
MODEL = "bench-model"

# --- the datasets ----------------------------------------------------------------------------------------

_MATH_SUBJECTS = [
    "Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory", "Prealgebra",
    "Precalculus",
]  # fmt: skip
_MMLU_PRO_CATEGORIES = [
    "biology", "business", "chemistry", "computer science", "economics", "engineering", "health", "history",
    "law", "math", "other", "philosophy", "physics", "psychology",
]  # fmt: skip
_WORDS = [
    "let", "the", "value", "of", "x", "be", "such", "that", "sum", "all", "positive", "integers", "n", "satisfies",
    "equation", "where", "function", "triangle", "circle", "radius", "area", "probability", "number", "digits",
    "prime", "factor", "polynomial", "root", "real", "complex", "matrix", "which", "following", "best",
    "describes", "law", "market", "price", "demand", "supply", "cell", "protein", "energy", "force", "mass",
]  # fmt: skip


class _Text:
    """Pseudo-random English-like text of a given length, cheap to make a million times (slices of a pool)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pool = " ".join(rng.choice(_WORDS) for _ in range(200_000))

    def __call__(self, mean: int) -> str:
        length = max(8, int(self.rng.expovariate(1 / mean))) if mean > 40 else mean
        start = self.rng.randrange(len(self.pool) - length - 1)
        return self.pool[start : start + length]


def make_datasets(workdir: Path, count: int, seed: int = 0) -> tuple[Path, Path]:
    """Write `count` problems: the first half MATH-500-like, the rest MMLU-Pro-like (two .jsonl files).

    Text lengths follow the real sets: MATH-500 problems ≈ 200 characters and solutions ≈ 550; MMLU-Pro
    questions ≈ 250 characters with 10 options of ≈ 30 characters, some padded with "N/A".
    """
    rng = random.Random(seed)
    text = _Text(rng)
    math_path, mmlu_path = workdir / "math500_like.jsonl", workdir / "mmlu_pro_like.jsonl"
    n_math = count // 2
    with math_path.open("wb") as handle:
        for i in range(n_math):
            subject = _MATH_SUBJECTS[i % len(_MATH_SUBJECTS)]
            row = {
                "problem": text(200) + f" (#{i})",
                "solution": text(550) + f" The answer is $\\boxed{{{i % 997}}}$.",
                "answer": str(i % 997),
                "subject": subject,
                "level": 1 + i % 5,
                "unique_id": f"test/{subject.lower().replace(' ', '_')}/{i}.json",
            }
            handle.write(orjson.dumps(row) + b"\n")
    with mmlu_path.open("wb") as handle:
        for i in range(count - n_math):
            n_options = 10 if i % 4 else 8
            options = [text(30) for _ in range(n_options)] + ["N/A"] * (10 - n_options)
            answer_index = i % n_options
            row = {
                "question_id": i,
                "question": text(250) + f" (#{i})",
                "options": options,
                "answer": chr(65 + answer_index),
                "answer_index": answer_index,
                "cot_content": "",
                "category": _MMLU_PRO_CATEGORIES[i % len(_MMLU_PRO_CATEGORIES)],
                "src": f"ori_mmlu-{_MMLU_PRO_CATEGORIES[i % len(_MMLU_PRO_CATEGORIES)]}",
            }
            handle.write(orjson.dumps(row) + b"\n")
    return math_path, mmlu_path


# --- the fast server -------------------------------------------------------------------------------------


class FastServer:
    """`bench/fast_server.py` in its own process."""

    def __init__(self, workdir: Path, latency: float) -> None:
        port_file = workdir / "port"
        port_file.unlink(missing_ok=True)  # a reused --workdir holds the last run's
        argv = [sys.executable, str(HERE / "fast_server.py"), "--port", "0", "--port-file", str(port_file)]
        argv += ["--latency", str(latency), "--model", MODEL]
        self.process = subprocess.Popen(argv)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fast server did not start: {shlex.join(argv)}")
            time.sleep(0.01)
        self.base = f"http://127.0.0.1:{port_file.read_text()}"
        self.url = f"{self.base}/v1"

    def reset(self) -> None:
        """Zero the server's counters."""
        urllib.request.urlopen(urllib.request.Request(f"{self.base}/_bench/reset", method="POST"), timeout=10)

    def stats(self) -> dict[str, Any]:
        """The server's counters since the last reset."""
        with urllib.request.urlopen(f"{self.base}/_bench/stats", timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- one measured run ------------------------------------------------------------------------------------


def _rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Measured:
    """One run of `collect infer`: its figures."""

    wall_s: float
    peak_rss_mb: float
    requests: int
    samples: int
    exit_code: int
    rss_at_first_request_mb: float | None
    output_tail: str
    trace: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since start, VmRSS in MB), polled."""


def measure(argv: list[str], server: FastServer, env: dict[str, str], poll_s: float = 0.25) -> Measured:
    """Run `argv` to completion; peak RSS from wait4 (the kernel's maximum resident set size of the child)."""
    server.reset()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the child exits)
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    trace: list[tuple[float, float]] = []
    first_request_rss: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            rss = _rss_kb(process.pid)
            if rss is not None:
                trace.append((time.perf_counter() - started, rss / 1024))
                if not first_request_rss:
                    try:
                        if server.stats()["requests"]:
                            first_request_rss.append(rss / 1024)
                    except OSError:
                        pass
            done.wait(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    poller.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    stats = server.stats()
    log.seek(0)
    tail = log.read().decode("utf-8", "replace")[-1500:]
    log.close()
    return Measured(
        wall_s=wall,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kB on Linux
        requests=stats["requests"],
        samples=stats["samples"],
        exit_code=process.returncode,
        rss_at_first_request_mb=first_request_rss[0] if first_request_rss else None,
        output_tail=tail,
        trace=trace,
    )


def file_identity(path: Path) -> tuple[int, int, int]:
    """(inode, size, mtime in ns): equal before and after means the file was neither replaced nor written."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Generate the datasets, run `collect infer` and its resume, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1_000_000, help="problems (default 1,000,000)")
    parser.add_argument("--k", type=int, default=4, help="responses per problem (default 4)")
    parser.add_argument("--concurrency", type=int, default=64, help="--max-concurrent (default 64)")
    parser.add_argument("--latency", type=float, default=0.01, help="server latency in seconds (default 0.01)")
    parser.add_argument(
        "--collect", default=f"{sys.executable} -m llmrouter_collect", help="the collect command (a shell word list)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temp dir)")
    parser.add_argument("--skip-first", action="store_true", help="reuse the results file in --workdir (resume only)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
    print(f"# N={args.problems:,} k={args.k} C={args.concurrency} latency={args.latency * 1000:g} ms "
          f"cores={os.cpu_count()} python={sys.version.split()[0]} workdir={workdir}")  # fmt: skip
    print(f"# load average at start: {_load()}")
    math_path, mmlu_path = workdir / "math500_like.jsonl", workdir / "mmlu_pro_like.jsonl"
    if not (args.skip_first and math_path.exists() and mmlu_path.exists()):
        started = time.perf_counter()
        math_path, mmlu_path = make_datasets(workdir, args.problems)
        print(f"# datasets written in {time.perf_counter() - started:.1f} s")
    dataset_mb = (math_path.stat().st_size + mmlu_path.stat().st_size) / 1e6
    print(f"# dataset files: {dataset_mb:,.0f} MB")
    out = workdir / "results.jsonl"
    server = FastServer(workdir, args.latency)
    figures: dict[str, Any] = {"problems": args.problems, "k": args.k, "dataset_mb": dataset_mb}
    try:
        command = [
            *shlex.split(args.collect), "infer", "--dataset", f"{math_path},{mmlu_path}", "--num-problems", "all",
            "--k", str(args.k), "--max-concurrent", str(args.concurrency), "--api-base", server.url,
            "--model", MODEL, "--output-file", str(out),
        ]  # fmt: skip
        print(f"# command: {shlex.join(command)}", flush=True)
        if not args.skip_first:
            if out.exists():
                out.unlink()
            print(f"# first run ... (load {_load()})", flush=True)
            first = measure(command, server, env)
            figures["first"] = _report("first run", first, args.problems)
            if first.exit_code != 0 or first.samples != args.problems * args.k:
                print(first.output_tail, file=sys.stderr)
                print(f"first run: exit {first.exit_code}, {first.samples} samples", file=sys.stderr)
                return 1
        results_mb = out.stat().st_size / 1e6
        figures["results_mb"] = results_mb
        print(f"# results file: {results_mb:,.0f} MB; resume ... (load {_load()})", flush=True)
        before = file_identity(out)
        resume = measure(command, server, env)
        after = file_identity(out)
        figures["resume"] = _report("resume", resume, args.problems)
        figures["resume"]["file_unchanged"] = before == after
        print(f"resume: file {'unchanged (inode, size, mtime)' if before == after else 'REWRITTEN'}: "
              f"{before} → {after}")  # fmt: skip
        if resume.exit_code != 0:
            print(resume.output_tail, file=sys.stderr)
        print()
        print("| N × k | run | wall | peak RSS | RSS when asking began | requests | file rewritten | load |")
        print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
        for name in ("first", "resume"):
            row = figures.get(name)
            if row is None:
                continue
            rewritten = "" if name == "first" else ("no" if row["file_unchanged"] else "**yes**")
            at_first = f"{row['rss_at_first_request_mb']:,.0f} MB" if row["rss_at_first_request_mb"] else "–"
            print(f"| {args.problems:,} × {args.k} | {name} | {row['wall_s']:,.1f} s | {row['peak_rss_mb']:,.0f} MB | "
                  f"{at_first} | {row['requests']:,} | {rewritten} | {row['load']} |")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        ok = resume.exit_code == 0 and resume.requests == 0 and before == after
        return 0 if ok else 1
    finally:
        server.stop()


def _report(name: str, run: Measured, problems: int) -> dict[str, Any]:
    load = _load()
    steps = run.trace[:: max(1, len(run.trace) // 8)] + run.trace[-1:]
    trace = ", ".join(f"{t:.0f}s:{mb:.0f}MB" for t, mb in steps)
    print(f"{name}: exit {run.exit_code}, {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB, "
          f"{run.requests} requests / {run.samples} samples (load {load})")  # fmt: skip
    print(f"  RSS trace: {trace}")
    return {
        "wall_s": run.wall_s,
        "peak_rss_mb": run.peak_rss_mb,
        "rss_at_first_request_mb": run.rss_at_first_request_mb,
        "requests": run.requests,
        "samples": run.samples,
        "exit_code": run.exit_code,
        "load": load,
        "problems_per_s": problems / run.wall_s,
    }


if __name__ == "__main__":
    sys.exit(main())
