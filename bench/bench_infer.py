"""Throughput of `collect infer` against a bare aiohttp loop, on the same workload and the same fast server.

One command:

    .venv/bin/python bench/bench_infer.py                      # N=2000, k=5, C=64 @ 50 ms and C=256 @ 200 ms
    .venv/bin/python bench/bench_infer.py --n 500 --repeats 1 --settings 64:0.05

For each setting (concurrency C, server latency L) it starts `bench/fast_server.py` as its own process, then
runs, alternating, (i) `collect infer --dataset FILE --k K --max-concurrent C ...` as a subprocess and (ii) a
reference loop (C workers, one aiohttp ClientSession with TCPConnector(limit=C)) that sends the very request
bodies `collect infer` sent (captured once, in an untimed warm-up run against a recording server).

Figures per run: the whole command's wall time (start-up included), the span the server saw from the first
request's arrival to the last answer (the transport's throughput, start-up excluded), `collect`'s own
elapsed time from its summary, and the client's CPU time per request. Ideal = C / L requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "bench-model"
SUMMARY_ELAPSED = re.compile(r"retries \d+ · ([0-9.]+) s")

# --- workload --------------------------------------------------------------------------------------------

_SUBJECTS = ["algebra", "geometry", "number theory", "physics", "economics", "law", "history", "biology"]


def make_dataset(path: Path, count: int, seed: int = 0) -> None:
    """Write `count` unified-schema problems (half multiple-choice with 10 options, half open-ended)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            category = _SUBJECTS[i % len(_SUBJECTS)]
            words = " ".join(rng.choice(["value", "sum", "angle", "price", "force", "rate", "term"]) for _ in range(40))
            if i % 2 == 0:
                choices = [f"option {j} for problem {i}: {rng.randint(0, 10**6)}" for j in range(10)]
                correct = rng.randrange(10)
                row: dict[str, Any] = {
                    "unique_id": f"bench/mcq/{i}",
                    "question": f"Problem {i} ({category}). Consider the {words}. Which statement holds?",
                    "choices": choices,
                    "choice_index_correct": correct,
                    "explanation_correct": None,
                    "answer_correct": choices[correct],
                    "category": category,
                }
            else:
                a, b = rng.randint(1, 999), rng.randint(1, 999)
                row = {
                    "unique_id": f"bench/open/{i}",
                    "question": f"Problem {i} ({category}). Given the {words}, compute ${a} + {b}$.",
                    "choices": None,
                    "choice_index_correct": None,
                    "explanation_correct": f"${a} + {b} = {a + b}$.",
                    "answer_correct": str(a + b),
                    "category": category,
                }
            handle.write(json.dumps(row) + "\n")


# --- the fast server -------------------------------------------------------------------------------------


class FastServer:
    """`bench/fast_server.py` in its own process."""

    def __init__(self, workdir: Path, latency: float, record: Path | None = None) -> None:
        port_file = workdir / f"port-{time.monotonic_ns()}"
        argv = [sys.executable, str(HERE / "fast_server.py"), "--port", "0", "--port-file", str(port_file)]
        argv += ["--latency", str(latency), "--model", MODEL]
        if record is not None:
            argv += ["--record", str(record)]
        self.process = subprocess.Popen(argv)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fast server did not start: {' '.join(argv)}")
            time.sleep(0.01)
        self.base = f"http://127.0.0.1:{port_file.read_text()}"
        self.url = f"{self.base}/v1"

    def reset(self) -> None:
        """Zero the server's counters."""
        urllib.request.urlopen(urllib.request.Request(f"{self.base}/_bench/reset", method="POST"), timeout=10)

    def stats(self) -> dict[str, Any]:
        """The server's counters since the last reset."""
        with urllib.request.urlopen(f"{self.base}/_bench/stats", timeout=10) as response:
            return json.loads(response.read())

    def cpu_s(self) -> float:
        """CPU seconds the server process has used."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- one timed run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one client."""

    client: str
    wall_s: float
    span_s: float
    requests: int
    samples: int
    errors: int
    cpu_s: float
    server_cpu_s: float
    own_elapsed_s: float | None = None
    notes: list[str] = field(default_factory=list)
    ok: bool = True


def timed(server: FastServer, client: str, argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run `argv` to completion against a freshly reset server and collect the figures."""
    server.reset()
    server_cpu = server.cpu_s()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = server.stats()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = Run(
        client=client,
        wall_s=wall,
        span_s=stats["span_s"] or float("nan"),
        requests=stats["requests"],
        samples=stats["samples"],
        errors=stats["errors"],
        cpu_s=cpu,
        server_cpu_s=server.cpu_s() - server_cpu,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        run.ok = False
        run.notes.append(f"exit {result.returncode}: {output.strip()[-800:]}")
    match = SUMMARY_ELAPSED.search(output)
    if match:
        run.own_elapsed_s = float(match.group(1))
    elif client == "reference":
        try:
            run.own_elapsed_s = float(json.loads(result.stdout.strip().splitlines()[-1])["elapsed_s"])
        except (ValueError, KeyError, IndexError):
            run.notes.append(f"no elapsed time in: {output.strip()[-300:]}")
    return run


def collect_argv(collect: str, dataset: Path, out: Path, k: int, concurrency: int, url: str) -> list[str]:
    """The `collect infer` command line of one run."""
    return [
        collect, "infer", "--dataset", str(dataset), "--k", str(k), "--max-concurrent", str(concurrency),
        "--api-base", url, "--model", MODEL, "--output-file", str(out),
    ]  # fmt: skip


def reference_argv(bodies: Path, concurrency: int, url: str) -> list[str]:
    """The reference loop's command line (this file, `--reference`)."""
    return [sys.executable, str(Path(__file__).resolve()), "--reference", "--bodies", str(bodies),
            "--concurrency", str(concurrency), "--url", url]  # fmt: skip


# --- the reference client --------------------------------------------------------------------------------


async def reference_loop(url: str, bodies: list[tuple[str, bytes]], concurrency: int) -> dict[str, Any]:
    """Send every body with `concurrency` workers over one aiohttp session; count choices."""
    import aiohttp
    import orjson

    todo = iter(bodies)
    counts = {"ok": 0, "errors": 0, "choices": 0}
    base = url.removesuffix("/v1")
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        for path, body in todo:
            async with session.post(base + path, data=body, headers=headers) as response:
                payload = await response.read()
            if response.status == 200:
                counts["ok"] += 1
                counts["choices"] += len(orjson.loads(payload)["choices"])
            else:
                counts["errors"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    counts["elapsed_s"] = time.perf_counter() - started
    return counts


def read_bodies(path: Path) -> list[tuple[str, bytes]]:
    """The recorded (path, body) pairs, in the order they were sent."""
    pairs = []
    for line in path.read_bytes().splitlines():
        if line:
            route, _, body = line.partition(b"\t")
            pairs.append((route.decode(), body))
    return pairs


def synthetic_bodies(dataset: Path, k: int) -> list[tuple[str, bytes]]:
    """Chat bodies built from the dataset when `collect infer` cannot be run (reference-only mode)."""
    pairs = []
    for line in dataset.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = row["question"]
        if row["choices"]:
            text += "\n" + "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(row["choices"]))
            text += "\nThink step by step, then end with 'The answer is (X)'."
        else:
            text += "\nThink step by step, and put the final answer in \\boxed{}."
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": text}],
            "n": k,
            "temperature": 0.7,
            "max_tokens": 4096,
            "stop": ["<end_of_turn>", "<|im_end|>", "<|eot_id|>"],
        }
        pairs.append(("/v1/chat/completions", json.dumps(body).encode()))
    return pairs


# --- driver ----------------------------------------------------------------------------------------------


def startup_cost(argv: list[str], env: dict[str, str], repeats: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds of a command that only starts up (imports) and exits."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def find_collect() -> str | None:
    """The `collect` executable next to this Python, or on PATH."""
    local = Path(sys.executable).with_name("collect")
    if local.exists():
        return str(local)
    return shutil.which("collect")


def collect_works(collect: str | None) -> bool:
    """Whether `collect infer --help` runs."""
    if collect is None:
        return False
    result = subprocess.run([collect, "infer", "--help"], capture_output=True, text=True)
    return result.returncode == 0 and "--max-concurrent" in result.stdout


def clean_env() -> dict[str, str]:
    """The environment without COLLECT_* variables (the runs use flags only)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}


def capture_bodies(
    collect: str, workdir: Path, dataset: Path, k: int, concurrency: int, env: dict[str, str]
) -> list[tuple[str, bytes]]:
    """Run `collect infer` once (untimed, warms caches), against a recording server; return its bodies."""
    record = workdir / "bodies.tsv"
    server = FastServer(workdir, 0.0, record=record)
    try:
        out = workdir / "capture.jsonl"
        argv = collect_argv(collect, dataset, out, k, concurrency, server.url)
        result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"warm-up `collect infer` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    finally:
        server.stop()
    return read_bodies(record)


def summarize(runs: list[Run], n: int, k: int, concurrency: int, latency: float) -> dict[str, Any]:
    """Median figures of one client's runs."""
    ideal = concurrency / latency

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    span = med([r.span_s for r in runs])
    wall = med([r.wall_s for r in runs])
    own = med([r.own_elapsed_s for r in runs if r.own_elapsed_s is not None])
    return {
        "span_s": span,
        "wall_s": wall,
        "own_s": own,
        "req_per_s": n / span,
        "resp_per_s": n * k / span,
        "frac_ideal": n / span / ideal,
        "wall_req_per_s": n / wall,
        "wall_frac_ideal": n / wall / ideal,
        "own_frac_ideal": n / own / ideal if own == own else float("nan"),
        "cpu_us_per_req": med([r.cpu_s for r in runs]) / n * 1e6,
        "server_cpu_us_per_req": med([r.server_cpu_s for r in runs]) / n * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --reference, one reference loop) and print the figures."""
    parser = argparse.ArgumentParser(description="collect infer vs. a bare aiohttp loop, on a fast local server.")
    parser.add_argument("--n", type=int, default=2000, help="problems (default 2000)")
    parser.add_argument("--k", type=int, default=5, help="responses per problem, sent as n=k (default 5)")
    parser.add_argument("--settings", default="64:0.05,256:0.2", help="C:latency pairs (default 64:0.05,256:0.2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per client and setting (default 5)")
    parser.add_argument("--collect", default=None, help="the collect executable (default: next to python)")
    parser.add_argument("--reference-only", action="store_true", help="skip collect; synthetic bodies")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", type=Path, default=None, help="also write all runs as JSON here")
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.reference:
        counts = asyncio.run(reference_loop(args.url, read_bodies(args.bodies), args.concurrency))
        print(json.dumps(counts))
        return 0 if counts["errors"] == 0 else 1

    settings = [(int(c), float(lat)) for c, lat in (part.split(":") for part in args.settings.split(","))]
    collect = args.collect or find_collect()
    use_collect = not args.reference_only and collect_works(collect)
    if not use_collect and not args.reference_only:
        print(f"`{collect} infer` is not usable; running the reference loop only", file=sys.stderr)
    env = clean_env()
    workdir = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    all_runs: dict[str, list[dict[str, Any]]] = {}
    try:
        dataset = workdir / "bench_problems.jsonl"
        make_dataset(dataset, args.n)
        if use_collect:
            assert collect is not None
            pairs = capture_bodies(collect, workdir, dataset, args.k, settings[0][0], env)
            if len(pairs) != args.n:
                print(f"warning: warm-up sent {len(pairs)} requests for {args.n} problems", file=sys.stderr)
        else:
            pairs = synthetic_bodies(dataset, args.k)
        bodies = workdir / "bodies.tsv"
        bodies.write_bytes(b"".join(p.encode() + b"\t" + b + b"\n" for p, b in pairs))
        python = sys.version.split()[0]
        print(f"# N={args.n} k={args.k} repeats={args.repeats} cores={os.cpu_count()} python={python}")
        print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work skews figures)")
        print(f"# bodies: {'captured from collect infer' if use_collect else 'synthetic'}, "
              f"mean {sum(len(b) for _, b in pairs) / max(1, len(pairs)):.0f} bytes")  # fmt: skip
        startup_cpu: dict[str, float] = {}
        starts = {"reference": [sys.executable, "-c", "import asyncio, aiohttp, orjson"]}
        if use_collect:
            assert collect is not None
            starts["collect"] = [collect, "--version"]
        for name, start_argv in starts.items():
            wall, cpu = startup_cost(start_argv, env)
            startup_cpu[name] = cpu
            print(f"# start-up of {name} ({' '.join(start_argv[1:])}): {wall:.2f} s wall, {cpu:.2f} s CPU")
        for concurrency, latency in settings:
            server = FastServer(workdir, latency)
            runs: dict[str, list[Run]] = {"collect": [], "reference": []}
            try:
                for rep in range(args.repeats):
                    order = ["collect", "reference"] if rep % 2 == 0 else ["reference", "collect"]
                    for client in order:
                        if client == "collect":
                            if not use_collect:
                                continue
                            assert collect is not None
                            out = workdir / f"out-{concurrency}-{rep}.jsonl"
                            argv_ = collect_argv(collect, dataset, out, args.k, concurrency, server.url)
                        else:
                            argv_ = reference_argv(bodies, concurrency, server.url)
                        run = timed(server, client, argv_, workdir, env)
                        runs[client].append(run)
                        print(
                            f"  C={concurrency} L={latency * 1000:.0f}ms {client:9s} rep {rep}: "
                            f"span {run.span_s:.2f}s wall {run.wall_s:.2f}s "
                            f"own {run.own_elapsed_s or 0:.2f}s "
                            f"req {run.requests} samples {run.samples} cpu {run.cpu_s:.2f}s "
                            f"server-cpu {run.server_cpu_s:.2f}s" + ("  " + "; ".join(run.notes) if run.notes else ""),
                            flush=True,
                        )
            finally:
                server.stop()
            report(runs, args.n, args.k, concurrency, latency, startup_cpu)
            print(f"# load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
            all_runs[f"{concurrency}:{latency}"] = [vars(r) for rs in runs.values() for r in rs]
        if args.json:
            args.json.write_text(json.dumps(all_runs, indent=1))
    finally:
        if args.keep:
            print(f"# kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(
    runs: dict[str, list[Run]], n: int, k: int, concurrency: int, latency: float, startup_cpu: dict[str, float]
) -> None:
    """Print one setting's table: throughput, fraction of ideal, CPU per request, and collect/aiohttp."""
    ideal = concurrency / latency
    ms = latency * 1000
    print(f"\nC={concurrency}, latency {ms:.0f} ms: ideal {ideal:.0f} req/s ({ideal * k:.0f} resp/s)")
    header = (
        f"{'client':10s} {'problems/s':>10s} {'resp/s':>8s} {'of ideal':>8s} "
        f"{'whole cmd':>9s} {'in-run':>7s} {'CPU/req':>8s} {'-start-up':>9s} {'srv CPU/req':>11s}"
    )
    print(header)
    figures = {}
    for client, client_runs in runs.items():
        good = [r for r in client_runs if r.ok and r.samples == n * k]
        if len(good) < len(client_runs):
            print(f"{client:10s} {len(client_runs) - len(good)} failed or incomplete run(s) left out")
        if not good:
            continue
        s = summarize(good, n, k, concurrency, latency)
        figures[client] = s
        print(
            f"{client:10s} {s['req_per_s']:10.0f} {s['resp_per_s']:8.0f} {s['frac_ideal']:8.1%} "
            f"{s['wall_frac_ideal']:9.1%} {s['own_frac_ideal']:7.1%} {s['cpu_us_per_req']:6.0f}µs "
            f"{s['cpu_us_per_req'] - startup_cpu.get(client, 0.0) / n * 1e6:7.0f}µs "
            f"{s['server_cpu_us_per_req']:9.0f}µs"
        )
    if "collect" in figures and "reference" in figures:
        c, r = figures["collect"], figures["reference"]
        print(
            f"collect/aiohttp: {c['req_per_s'] / r['req_per_s']:.2f} (server-side span), "
            f"{c['wall_req_per_s'] / r['wall_req_per_s']:.2f} (whole command), "
            f"{(r['own_s'] / c['own_s']) if c['own_s'] == c['own_s'] else float('nan'):.2f} (own elapsed)"
        )


if __name__ == "__main__":
    sys.exit(main())
