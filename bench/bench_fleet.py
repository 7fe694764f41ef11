"""Wall time of `collect infer --fleet` (M models at once) against the same models run one after the other.

One command:

    .venv/bin/python bench/bench_fleet.py                    # M=2 models, N=40 problems, k=2, C=4, 0.2 s latency
    .venv/bin/python bench/bench_fleet.py --models 3 --n 60 --latency 0.1

Each model has its own test server (tests/fakes/openai_server.py, in a thread) answering every completion
request after a fixed latency. Per repeat, alternating which goes first: (i) one `collect infer --fleet F` over
all M models, (ii) M `collect infer --model X` runs in sequence; each into fresh files. The ratio
sequential / fleet is the figure: M would mean the models overlap perfectly (start-up paid once, not M times).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import OpenAIServer  # noqa: E402
from tests.integration.conftest import make_rows, write_dataset  # noqa: E402


def collect(args: list[str], cwd: Path) -> float:
    """Run `collect ARGS` in `cwd`; its wall time in seconds (it must succeed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLLECT_ENV_FILE": "none"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "llmrouter_collect", *args], cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr.decode())
    return elapsed


def main() -> None:
    """Measure and print one line per repeat and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--n", type=int, default=40, help="problems per model")
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="max_concurrent of each model")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per completion request")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    names = [f"model-{i}" for i in range(options.models)]
    servers = [OpenAIServer([name], latency=options.latency, record=False).start() for name in names]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            dataset = write_dataset(work / "problems.jsonl", make_rows(options.n))
            common = {"dataset": str(dataset), "k_responses": options.k, "max_concurrent": options.concurrency}
            fleet = work / "fleet.toml"
            lines = ["[defaults]", *(f"{key} = {value!r}" for key, value in common.items())]
            for name, server in zip(names, servers, strict=True):
                lines += ["[[models]]", f"name = {name!r}", f"endpoints = [{server.url!r}]"]
            fleet.write_text("\n".join(lines) + "\n")
            ratios = []
            for repeat in range(options.repeats):
                out = work / f"run{repeat}"

                def run_fleet(out: Path = out) -> float:
                    return collect(["infer", "--fleet", str(fleet), "--output-dir", str(out / "fleet")], work)

                def run_each(out: Path = out) -> float:
                    total = 0.0
                    for name, server in zip(names, servers, strict=True):
                        args = ["infer", "--model", name, "--api-base", server.url, "--dataset", str(dataset)]
                        args += ["--k", str(options.k), "--max-concurrent", str(options.concurrency)]
                        total += collect([*args, "--output-dir", str(out / "each")], work)
                    return total

                if repeat % 2 == 0:
                    fleet_s, each_s = run_fleet(), run_each()
                else:
                    each_s, fleet_s = run_each(), run_fleet()
                ratios.append(each_s / fleet_s)
                print(f"repeat {repeat}: fleet {fleet_s:.2f} s · one after the other {each_s:.2f} s · "
                      f"ratio {each_s / fleet_s:.2f}")
            ideal = options.n * options.latency / options.concurrency
            print(f"median ratio {statistics.median(ratios):.2f} (M={options.models}; ideal M; "
                  f"server-bound time per model ≈ {ideal:.1f} s)")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
