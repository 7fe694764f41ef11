"""Disk full while `collect infer` writes: one clear message, nothing written before damaged, a clean resume.

Each trial mounts a small tmpfs (48-160 KiB, needs root: CI has it; elsewhere the test skips, saying why),
fills it with long answers, checks the run's message and the file, grows the disk and reruns.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from tests.fault.harness import (
    Checker,
    TaggedServer,
    Trials,
    infer_args,
    make_rows,
    run_collect,
    uid_of,
    write_rows,
)


def mount_tmpfs(mount_point: Path, size: str) -> None:
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        reason = f"cannot mount a tmpfs for the disk-full trials: {result.stderr.strip() or result.returncode}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason + " (needs root; CI runs it)")


def test_disk_full_then_resume(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        disk = directory / "disk"
        size_kib = rng.randint(48, 160)
        mount_tmpfs(disk, f"{size_kib}k")
        try:
            problems, k = rng.randint(20, 40), rng.randint(2, 3)
            dataset = write_rows(directory / "problems.jsonl", make_rows(problems))
            out = disk / "results.jsonl"
            with TaggedServer() as server:
                # The answers alone outgrow the disk by half (a file written once, never rewritten, must not fit).
                server.pad = max(rng.randint(1500, 4000), size_kib * 1024 * 3 // 2 // (problems * k))
                checker = Checker(out, server, [uid_of(f"{i:03d}") for i in range(problems)], directory)
                args = infer_args(server, dataset, out, k, "--max-concurrent", str(rng.randint(1, 4)),
                                  "--batch-size", str(rng.randint(1, 8)))  # fmt: skip
                full = run_collect(args)
                assert full.returncode == 1, f"a full disk must fail the run: {full.brief()}"
                assert "disk full" in full.stderr and "rerun the same command" in full.stderr, full.brief()
                full.assert_clean_output()
                checker.after_run(full, allow_torn=True)  # a full disk may cut the last line
                subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
                checker.reset_server("n", 0.0)
                checker.final(run_collect(args), k)
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)

    trials.run(trial)
