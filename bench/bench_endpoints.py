"""Throughput of one `collect infer` over 1, 2 and 4 endpoints whose own capacity is the limit; and the most
requests per second one `collect infer` process drives when the servers are not the limit.

One command (about 3–4 minutes):

    .venv/bin/python bench/bench_endpoints.py                  # C=16, L=0.2 s, 1/2/4 endpoints, 3 repeats
    .venv/bin/python bench/bench_endpoints.py --repeats 1 --seconds 5 --max-n 5000

Scaling. Four `bench/fast_server.py --capacity C --latency L` processes (each serves at most C requests at once,
the rest queue: the endpoint is the limit, as a vLLM replica with a fixed batch is; ideal C / L req/s each).
Per repeat, for E in 1, 2, 4 (the order alternating over repeats), `collect infer --k 1 --max-concurrent E·C`
with E `--api-base` values into a fresh output file, on a dataset sized so the run takes `--seconds` at the ideal
rate. Throughput is read from the servers' own counters (reset before each run): requests over the span from
the first arrival at any of them to the last answer. Figures: req/s, the ratio to one endpoint, the fraction of
the ideal E·C / L.

Ceiling. Uncapped servers at latency 0 and `--max-concurrent 256`: 1 endpoint, then 4 endpoints at the same
total concurrency (the pool's overhead), alternating. Figures: req/s over the server span and over the command's
wall time, and the CPU each process used over the run (collect: getrusage of the child; servers: /proc/PID/stat),
as a fraction of one core over the span — a process near 1.0 is the limit (the event loop is one thread).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
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
sys.path.insert(0, str(HERE))

from bench_infer import SUMMARY_ELAPSED, make_dataset  # noqa: E402

MODEL = "bench-model"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05
"""How often the CPU counters of collect and the servers are read during a run."""


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loop_schedstat_s(pid: int) -> tuple[float, float]:
    """Seconds the main thread (the event loop) of `pid` has run on a CPU, and waited runnable for one."""
    run_ns, wait_ns, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def at(samples: list[tuple[float, float]], when: float) -> float:
    """The value of a sampled counter at time `when` (linear between samples, clamped at the ends)."""
    if when <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= when <= t1:
            return v0 + (v1 - v0) * (when - t0) / (t1 - t0) if t1 > t0 else v1
    return samples[-1][1]


def load() -> str:
    """The load averages (1, 5, 15 min), for the figures' margin."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Server:
    """`bench/fast_server.py` in its own process."""

    def __init__(self, workdir: Path, latency: float, capacity: int | None) -> None:
        port_file = workdir / f"port-{time.monotonic_ns()}"
        argv = [sys.executable, str(HERE / "fast_server.py"), "--port", "0", "--port-file", str(port_file)]
        argv += ["--latency", str(latency), "--model", MODEL]
        if capacity is not None:
            argv += ["--capacity", str(capacity)]
        self.process = subprocess.Popen(argv)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fast server did not start: {' '.join(argv)}")
            time.sleep(0.01)
        self.base = f"http://127.0.0.1:{port_file.read_text()}"
        self.url = f"{self.base}/v1"

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.base}/_bench/reset", method="POST"), timeout=10)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_bench/stats", timeout=10) as response:
            return dict(json.loads(response.read()))

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Run:
    """One `collect infer` run over some endpoints."""

    endpoints: int
    problems: int
    wall_s: float
    span_s: float
    requests: int
    per_server: list[int]
    collect_cpu_s: float
    """Over the whole command, start-up included."""
    server_cpu_s: list[float]
    span_collect_cpu_s: float = float("nan")
    """Within the server span (first arrival to last answer): what the request loop itself used."""
    span_server_cpu_s: list[float] = field(default_factory=list)
    span_loop_run_s: float = float("nan")
    """Within the span: collect's event-loop thread on a CPU..."""
    span_loop_wait_s: float = float("nan")
    """...and runnable but waiting for a CPU (taken by other processes: the machine's load)."""
    own_s: float | None = None
    load: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.notes and self.requests == self.problems

    @property
    def req_per_s(self) -> float:
        return self.requests / self.span_s


def run_collect(
    servers: list[Server],
    dataset: Path,
    problems: int,
    out: Path,
    concurrency: int,
    extra: list[str],
    env: dict[str, str],
) -> Run:
    """One `collect infer --k 1` over `servers`, against freshly reset counters."""
    argv = [sys.executable, "-m", "llmrouter_collect", "infer", "--dataset", str(dataset), "--k", "1",
            "--max-concurrent", str(concurrency), "--model", MODEL, "--output-file", str(out), *extra]  # fmt: skip
    for server in servers:
        argv += ["--api-base", server.url]
    for server in servers:
        server.reset()
    cpu_before = [server.cpu_s() for server in servers]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    log = out.with_suffix(".log")
    with log.open("w") as handle:
        process = subprocess.Popen(argv, cwd=out.parent, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
        # CPU of collect and of each server, sampled on the clock the servers stamp their counters with
        samples: list[tuple[float, float, list[float], tuple[float, float]]] = []
        while True:
            with contextlib.suppress(OSError, IndexError, ValueError):
                now, pid = time.monotonic(), process.pid
                sched = loop_schedstat_s(pid)
                samples.append((now, process_cpu_s(pid), [s.cpu_s() for s in servers], sched))
            if process.poll() is not None:
                break
            time.sleep(SAMPLE_S)
    wall = time.perf_counter() - started
    output = log.read_text()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = [server.stats() for server in servers]
    firsts = [s["first_arrival"] for s in stats if s["first_arrival"] is not None]
    lasts = [s["last_response"] for s in stats if s["last_response"] is not None]
    run = Run(
        endpoints=len(servers),
        problems=problems,
        wall_s=wall,
        span_s=(max(lasts) - min(firsts)) if firsts and lasts else float("nan"),
        requests=sum(s["requests"] for s in stats),
        per_server=[s["requests"] for s in stats],
        collect_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        server_cpu_s=[server.cpu_s() - cpu for server, cpu in zip(servers, cpu_before, strict=True)],
        load=load(),
    )
    if firsts and lasts and len(samples) >= 2:
        first, last = min(firsts), max(lasts)
        mine = [(t, cpu) for t, cpu, _, _ in samples]
        run.span_collect_cpu_s = at(mine, last) - at(mine, first)
        ran = [(t, sched[0]) for t, _, _, sched in samples]
        run.span_loop_run_s = at(ran, last) - at(ran, first)
        waited = [(t, sched[1]) for t, _, _, sched in samples]
        run.span_loop_wait_s = at(waited, last) - at(waited, first)
        for i in range(len(servers)):
            theirs = [(t, cpus[i]) for t, _, cpus, _ in samples]
            run.span_server_cpu_s.append(at(theirs, last) - at(theirs, first))
    if process.returncode != 0:
        run.notes.append(f"exit {process.returncode}: {output.strip()[-800:]}")
    if any(s["errors"] for s in stats):
        run.notes.append(f"server errors {[s['errors'] for s in stats]}")
    match = SUMMARY_ELAPSED.search(output)
    if match:
        run.own_s = float(match.group(1))
    return run


def line(tag: str, run: Run) -> str:
    """One run, as printed while the benchmark goes."""
    return (
        f"  {tag:<14s} span {run.span_s:6.2f}s wall {run.wall_s:6.2f}s own {run.own_s or 0:6.2f}s "
        f"req {run.requests:6d} ({'/'.join(map(str, run.per_server))}) {run.req_per_s:7.1f} req/s "
        f"collect cpu {run.collect_cpu_s:5.2f}s (in span {run.span_collect_cpu_s:5.2f}s) "
        f"servers cpu {sum(run.server_cpu_s):5.2f}s  load {run.load}"
        + ("  " + "; ".join(run.notes) if run.notes else "")
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def scaling(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Capacity-limited servers: req/s with 1, 2, 4 endpoints, and the ratios."""
    counts = sorted({int(x) for x in args.endpoints.split(",")})
    ideal_one = args.capacity / args.latency
    datasets = {}
    for e in counts:
        problems = math.ceil(args.seconds * e * ideal_one)
        datasets[e] = (workdir / f"problems-{e}.jsonl", problems)
        make_dataset(datasets[e][0], problems, seed=e)
    servers = [Server(workdir, args.latency, args.capacity) for _ in range(max(counts))]
    extra = ["--endpoint-concurrency", str(args.capacity)] if args.endpoint_cap else []
    print(f"\n## scaling: capacity {args.capacity} per server, latency {args.latency * 1000:.0f} ms "
          f"(ideal {ideal_one:.0f} req/s per endpoint), --max-concurrent E×{args.capacity + args.slack}"
          + (f", --endpoint-concurrency {args.capacity}" if args.endpoint_cap else ""), flush=True)  # fmt: skip
    runs: dict[int, list[Run]] = {e: [] for e in counts}
    try:
        for rep in range(args.repeats):
            order = counts if rep % 2 == 0 else counts[::-1]
            for e in order:
                dataset, problems = datasets[e]
                out = workdir / f"scaling-{e}-{rep}.jsonl"
                run = run_collect(servers[:e], dataset, problems, out, e * (args.capacity + args.slack), extra, env)
                runs[e].append(run)
                print(line(f"E={e} rep {rep}", run), flush=True)
    finally:
        for server in servers:
            server.stop()
    print(f"\n{'endpoints':>9s} {'problems':>8s} {'req/s':>8s} {'× one':>7s} {'of ideal':>8s} "
          f"{'min–max req/s':>15s} {'collect CPU':>11s}")  # fmt: skip
    table = {}
    base = median([r.req_per_s for r in runs[counts[0]] if r.ok]) / counts[0]
    for e in counts:
        good = [r for r in runs[e] if r.ok]
        if len(good) < len(runs[e]):
            print(f"{e:9d} {len(runs[e]) - len(good)} failed or incomplete run(s) left out")
        if not good:
            continue
        rates = [r.req_per_s for r in good]
        rate = median(rates)
        cpu = median([r.span_collect_cpu_s / r.span_s for r in good])
        table[e] = {"req_per_s": rate, "x_one": rate / base, "of_ideal": rate / (e * ideal_one), "rates": rates}
        print(f"{e:9d} {datasets[e][1]:8d} {rate:8.1f} {rate / base:6.2f}× {rate / (e * ideal_one):8.1%} "
              f"{min(rates):7.1f}–{max(rates):<7.1f} {cpu:10.0%}")  # fmt: skip
    print(f"# load average: {load()}", flush=True)
    return {"runs": {e: [vars(r) for r in rs] for e, rs in runs.items()}, "table": table}


def ceiling(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Uncapped servers at latency 0: the most req/s one `collect infer` drives, 1 endpoint against 4."""
    dataset = workdir / "problems-max.jsonl"
    make_dataset(dataset, args.max_n, seed=99)
    servers = [Server(workdir, 0.0, None) for _ in range(4)]
    print(f"\n## ceiling: uncapped servers at latency 0, --max-concurrent {args.max_concurrent}, "
          f"{args.max_n} problems, k=1", flush=True)  # fmt: skip
    runs: dict[int, list[Run]] = {1: [], 4: []}
    try:
        for rep in range(args.repeats):
            for e in [1, 4] if rep % 2 == 0 else [4, 1]:
                out = workdir / f"ceiling-{e}-{rep}.jsonl"
                run = run_collect(servers[:e], dataset, args.max_n, out, args.max_concurrent, [], env)
                runs[e].append(run)
                print(line(f"E={e} rep {rep}", run), flush=True)
    finally:
        for server in servers:
            server.stop()
    print(f"\n{'endpoints':>9s} {'req/s (span)':>12s} {'req/s (wall)':>12s} {'in-run':>8s} "
          f"{'collect CPU':>11s} {'CPU/req':>8s} {'loop on CPU':>11s} {'loop waits':>10s} "
          f"{'busiest server CPU':>18s}")  # fmt: skip
    table = {}
    for e, rs in runs.items():
        good = [r for r in rs if r.ok]
        if not good:
            print(f"{e:9d} no complete run")
            continue
        span_rate = median([r.req_per_s for r in good])
        wall_rate = median([r.requests / r.wall_s for r in good])
        own_rate = median([r.requests / r.own_s for r in good if r.own_s])
        cpu = median([r.span_collect_cpu_s / r.span_s for r in good])
        cpu_req = median([r.span_collect_cpu_s / r.requests * 1e6 for r in good])
        server = median([max(r.span_server_cpu_s) / r.span_s for r in good])
        loop_run = median([r.span_loop_run_s / r.span_s for r in good])
        loop_wait = median([r.span_loop_wait_s / r.span_s for r in good])
        table[e] = {"span": span_rate, "wall": wall_rate, "own": own_rate, "collect_cpu": cpu, "server_cpu": server,
                    "loop_run": loop_run, "loop_wait": loop_wait}  # fmt: skip
        print(f"{e:9d} {span_rate:12.0f} {wall_rate:12.0f} {own_rate:8.0f} {cpu:10.0%} {cpu_req:6.0f}µs "
              f"{loop_run:11.0%} {loop_wait:10.0%} {server:17.0%}")  # fmt: skip
    if 1 in table and 4 in table:
        print(f"4 endpoints / 1 at the same concurrency: {table[4]['span'] / table[1]['span']:.2f} (span)")
    print(
        "(CPU: user+system within the server span, as a fraction of one core, sampled every "
        f"{SAMPLE_S * 1000:.0f} ms from /proc; loop on CPU / waits: collect's event-loop thread running, and "
        "runnable but waiting for a core (/proc/PID/schedstat) — their sum near 100 % means the loop is CPU-bound)"
    )
    print(f"# load average: {load()}", flush=True)
    return {"runs": {e: [vars(r) for r in rs] for e, rs in runs.items()}, "table": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=16, help="requests each server serves at once (16)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request (0.2)")
    parser.add_argument("--endpoints", default="1,2,4", help="endpoint counts to compare (1,2,4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a scaling run at the ideal rate (10)")
    parser.add_argument("--slack", type=int, default=0, help="extra in flight per endpoint: -c E×(capacity+slack) (0)")
    parser.add_argument("--endpoint-cap", action="store_true", help="also pass --endpoint-concurrency capacity")
    parser.add_argument("--max-n", type=int, default=20000, help="problems of a ceiling run (20000)")
    parser.add_argument("--max-concurrent", type=int, default=256, help="--max-concurrent of a ceiling run (256)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["scaling", "ceiling"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write all runs as JSON here")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECT_")}
    env["COLLECT_ENV_FILE"] = "none"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    python = sys.version.split()[0]
    print(f"# cores={os.cpu_count()} python={python} repeats={args.repeats} load average before: {load()}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
    results: dict[str, Any] = {}
    try:
        if args.only in (None, "scaling"):
            results["scaling"] = scaling(args, workdir, env)
        if args.only in (None, "ceiling"):
            results["ceiling"] = ceiling(args, workdir, env)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
