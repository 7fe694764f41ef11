"""Two `collect infer` started at once on the same results file (by the same path, or one through a symlink):
exactly one runs, the other refuses with one clear message; the file ends with exactly k responses per
problem, nothing asked twice; a symlink stays a symlink.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.fault.harness import (
    Checker,
    Run,
    TaggedServer,
    Trials,
    finish,
    infer_args,
    make_rows,
    run_collect,
    start_collect,
    uid_of,
    write_rows,
)

REFUSAL = "another `collect infer` is writing"


def race(rng: random.Random, directory: Path, *, via_symlink: bool) -> None:
    problems, k = rng.randint(3, 6), rng.randint(2, 4)
    dataset = write_rows(directory / "problems.jsonl", make_rows(problems))
    outdir = directory / "out"
    outdir.mkdir()
    real = outdir / "real.jsonl"
    link = outdir / "link.jsonl"
    if via_symlink:
        link.symlink_to(real.name)  # relative, as `ln -s real.jsonl link.jsonl` makes it
    with TaggedServer() as server:
        server.latency = rng.uniform(0.4, 0.6)  # each run lasts seconds (one request at a time): the two overlap
        checker = Checker(real, server, [uid_of(f"{i:03d}") for i in range(problems)], directory)
        targets = [real, link if via_symlink else real]
        rng.shuffle(targets)
        arg_sets = [infer_args(server, dataset, target, k, "--max-concurrent", "1") for target in targets]
        procs = []
        for args in arg_sets:
            procs.append(start_collect(args))
            time.sleep(rng.uniform(0, 0.3))
        runs: list[Run] = [finish(proc, args) for proc, args in zip(procs, arg_sets, strict=True)]
        codes = sorted(run.returncode for run in runs)
        detail = "\n---\n".join(f"-o {t.name}: {r.brief()}" for t, r in zip(targets, runs, strict=True))
        assert codes == [0, 1], f"exactly one run may write, the other must refuse: {detail}"
        refused = next(run for run in runs if run.returncode == 1)
        assert REFUSAL in refused.stderr, f"the refusal must say another run is writing: {detail}"
        for run in runs:
            run.assert_clean_output()
        if via_symlink:
            assert link.is_symlink(), "the symlink was replaced by a regular file"
            assert link.resolve() == real.resolve(), "the symlink no longer points to the results file"
        assert server.samples_requested() == problems * k, (
            f"{server.samples_requested()} samples asked for {problems} problems × k={k}: the refused run asked"
        )
        checker.after_run(None)
        checker.reset_server("n", 0.0)
        checker.final(run_collect(infer_args(server, dataset, link if via_symlink else real, k)), k)
        assert not via_symlink or link.is_symlink(), "the symlink was replaced by a regular file"


def test_two_runs_at_once_on_the_same_path(trials: Trials) -> None:
    trials.run(lambda rng, directory, index: race(rng, directory, via_symlink=False))


def test_two_runs_at_once_through_a_symlink(trials: Trials) -> None:
    trials.run(lambda rng, directory, index: race(rng, directory, via_symlink=True))
