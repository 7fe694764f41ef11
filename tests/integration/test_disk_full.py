"""Disk full while `collect infer` writes: a clear error, nothing earlier damaged, and a clean resume."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fakes.openai_server import OpenAIServer
from tests.integration.test_infer import infer_args, run_cli

from llmrouter_collect.store import iter_records


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root, as on the project's machines and CI)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True
    )
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {result.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_is_a_clear_error_and_resume_completes(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], small_disk: Path
) -> None:
    openai_server.answer_fn = lambda body, i: "x" * 2000 + f" The answer is (A). {i}"
    dataset = dataset_file(count=40)
    out = small_disk / "out.jsonl"
    first = run_cli(infer_args(openai_server, dataset, out, "--max-concurrent", "2", k=2))
    assert first.returncode == 1
    assert "disk full" in first.stderr and "rerun the same command" in first.stderr
    assert "Traceback" not in first.stderr
    saved = {r["unique_id"]: r for r in iter_records(out)}  # readable: no damaged line
    assert 0 < len(saved) < 40
    complete_before = {uid for uid, r in saved.items() if len(r["responses"]) == 2}

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    openai_server.reset()
    openai_server.answer_fn = lambda body, i: "x" * 2000 + f" The answer is (A). {i}"
    second = run_cli(infer_args(openai_server, dataset, out, k=2))
    assert second.returncode == 0, second.stderr
    final = {r["unique_id"]: r for r in iter_records(out)}
    assert len(final) == 40 and len(out.read_text().splitlines()) == 40
    assert all(
        len(r["responses"]) == 2 and all(x["error"] is None for x in r["responses"]) for r in final.values()
    )
    for uid in complete_before:  # earlier results kept as they were, not asked again
        assert final[uid]["responses"] == saved[uid]["responses"]
    assert len(openai_server.completion_requests()) == 40 - len(complete_before)
