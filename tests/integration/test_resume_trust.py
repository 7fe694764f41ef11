"""`collect infer` keeps a results file trustworthy across interruptions, edits and odd paths: nothing lost,
nothing mixed, no traceback (attempts, an edited dataset, symlinks, unwritable outputs, bad lines, SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.openai_server import FewerChoices, Hang, OpenAIServer
from tests.integration.test_infer import (
    good_texts,
    infer_args,
    records,
    run_cli,
    start_cli,
    summary_counts,
    wait_for_lines,
)

from llmrouter_collect.store import scan


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def assert_complete(path: Path, count: int, k: int) -> None:
    """`count` problems, one line each, every one with exactly k good responses numbered 0..k-1."""
    final = records(path)
    assert len(final) == count and line_count(path) == count
    for uid, record in final.items():
        assert len(record["responses"]) == k and len(good_texts(record)) == k, uid
        assert [r["index"] for r in record["responses"]] == list(range(k)), uid


# --- attempts -------------------------------------------------------------------------------------------


def test_killed_runs_use_no_attempts(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    """A server that returns one choice per request: each run adds a sample per problem, then is killed.
    Only a failed request may use an attempt, so after three kills the fourth run still completes."""
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    openai_server.set_mode(FewerChoices(1))
    openai_server.latency = 0.3
    args = infer_args(openai_server, dataset, out, "--max-concurrent", "3", k=5)
    for _ in range(3):
        before = line_count(out)
        proc = start_cli(args)
        wait_for_lines(out, before + 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert line_count(out) >= before + 3
    state = scan(out)
    assert len(state.problems) == 3 and all(0 < st.good < 5 for st in state.problems.values())
    assert all(st.attempts == 0 for st in state.problems.values()), state
    openai_server.latency = 0
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    assert "out of attempts" not in result.stderr and "failed 0" in result.stderr
    assert_complete(out, 3, 5)
    assert all(record["attempts"] == 0 for record in records(out).values())


def test_a_hung_server_stops_the_run_without_using_attempts(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=4)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, "--num-problems", "1", k=1)).returncode == 0
    openai_server.reset()
    openai_server.set_mode(Hang())
    args = infer_args(
        openai_server, dataset, out, "--request-timeout", "1", "--max-retries", "0", "--max-concurrent", "1", k=1
    )
    proc = start_cli(args)
    assert openai_server.wait_for(lambda s: len(s.completion_requests()) >= 1, timeout=30)
    openai_server.set_models_mode(Hang())  # now not even /models answers: the server is as good as gone
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "lost the server" in stderr and "Traceback" not in stderr
    state = scan(out)
    assert len(state.problems) == 2 and all(st.attempts == 0 for st in state.problems.values()), state
    counts = summary_counts(stderr)
    assert sum(counts.get(key, 0) for key in ("done", "already done", "failed", "not asked")) == 4


# --- an edited dataset ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("answer_correct", "5", "answer_correct"),
        ("question", "If $2x + 3 = 13$, what is the value of $x$?", "question"),
        ("explanation_correct", "x = 4, since 2 * 4 + 3 = 11.", "explanation_correct"),
    ],
)
def test_an_edited_problem_is_refused_before_any_request(
    openai_server: OpenAIServer,
    dataset_file: Callable[..., Path],
    make_problem_rows: Callable[[int], list[dict[str, Any]]],
    tmp_path: Path,
    field: str,
    value: str,
    shown: str,
) -> None:
    rows = make_problem_rows(4)
    dataset = dataset_file(rows=rows)
    out = tmp_path / "out.jsonl"
    meta = tmp_path / "out.jsonl.meta.json"
    assert run_cli(infer_args(openai_server, dataset, out, k=1)).returncode == 0
    before, meta_before = out.read_bytes(), meta.read_bytes()
    assert rows[1]["unique_id"] == "open/algebra/1"
    rows[1][field] = value
    dataset_file(rows=rows)
    openai_server.reset()

    result = run_cli(infer_args(openai_server, dataset, out, k=3))
    assert result.returncode == 1
    assert "1 problem of the dataset differs" in result.stderr
    assert "open/algebra/1" in result.stderr and shown in result.stderr
    assert "restore the dataset" in result.stderr and "--output-file" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert openai_server.completion_requests() == []
    assert out.read_bytes() == before and meta.read_bytes() == meta_before  # nothing touched

    fresh = run_cli(infer_args(openai_server, dataset, tmp_path / "new.jsonl", k=3))
    assert fresh.returncode == 0, fresh.stderr
    rows[1] = make_problem_rows(4)[1]  # restored: the file resumes
    dataset_file(rows=rows)
    again = run_cli(infer_args(openai_server, dataset, out, k=3))
    assert again.returncode == 0, again.stderr
    assert_complete(out, 4, 3)


def test_many_edited_problems_are_counted_and_a_few_named(
    openai_server: OpenAIServer,
    dataset_file: Callable[..., Path],
    make_problem_rows: Callable[[int], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    rows = make_problem_rows(8)
    dataset = dataset_file(rows=rows)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=1)).returncode == 0
    for row in rows[:6]:
        row["category"] = "renamed"
    rows[0]["choices"] = [*rows[0]["choices"][:3], "80 m/s"]
    dataset_file(rows=rows)
    result = run_cli(infer_args(openai_server, dataset, out, k=2))
    assert result.returncode == 1
    assert "6 problems of the dataset differ" in result.stderr and "and 3 more" in result.stderr
    assert "mcq/physics/1: choices, category" in result.stderr
    assert len(openai_server.completion_requests()) == 8  # only the first run's


def test_files_from_older_versions_resume_on_the_fields_they_hold(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=1)).returncode == 0
    old = [json.loads(line) for line in out.read_text().splitlines()]
    for record in old:  # an older writer that did not record these
        del record["dataset"], record["explanation_correct"]
    out.write_text("".join(json.dumps(record) + "\n" for record in old))
    openai_server.reset()
    result = run_cli(infer_args(openai_server, dataset, out, k=2))
    assert result.returncode == 0, result.stderr
    assert [r.n for r in openai_server.completion_requests()] == [1, 1, 1]
    assert_complete(out, 3, 2)


def test_meta_file_keeps_the_history_of_runs(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=2)
    out = tmp_path / "out.jsonl"
    meta_path = tmp_path / "out.jsonl.meta.json"
    assert run_cli(infer_args(openai_server, dataset, out, k=1)).returncode == 0
    meta = json.loads(meta_path.read_text())
    del meta["runs"]  # as an older version wrote it
    meta["updated_at"] = "2020-01-01T00:00:00.000+00:00"
    meta_path.write_text(json.dumps(meta))
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    assert run_cli(infer_args(openai_server, dataset, out, k=3)).returncode == 0
    runs = json.loads(meta_path.read_text())["runs"]
    assert [run["k_responses"] for run in runs] == [1, 2, 3]
    assert runs[0]["started_at"] == "2020-01-01T00:00:00.000+00:00"
    assert all(run["dataset_fingerprint"].startswith("sha256:") for run in runs)
    assert all(run["collect_version"] for run in runs[1:])
    assert not list(tmp_path.glob("*.tmp"))


# --- symlinks -------------------------------------------------------------------------------------------


def test_a_symlink_shares_the_lock_and_stays_a_link(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=20)
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(Path("data") / "real.jsonl")
    openai_server.latency = 0.3
    first = start_cli(infer_args(openai_server, dataset, real, "--max-concurrent", "1", k=1))
    try:
        assert openai_server.wait_for(lambda s: len(s.completion_requests()) >= 1, timeout=20)
        second = run_cli(infer_args(openai_server, dataset, link, k=1))
        assert second.returncode == 1
        assert "another `collect infer` is writing" in second.stderr, second.stderr
    finally:
        first.kill()
        first.wait()
    openai_server.latency = 0
    openai_server.set_mode(FewerChoices(1))  # several lines per problem, so the end of the run compacts
    result = run_cli(infer_args(openai_server, dataset, link, k=3))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(Path("data") / "real.jsonl")
    assert_complete(real, 20, 3)
    assert (tmp_path / "data" / "real.jsonl.lock").exists() and not (tmp_path / "link.jsonl.lock").exists()
    assert (tmp_path / "data" / "real.jsonl.meta.json").exists()


# --- outputs that cannot be written ---------------------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs (root ignores permission bits, but not a read-only mount)."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount_point)],
                            capture_output=True)  # fmt: skip
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a read-only tmpfs: {result.stderr!r}")
        pytest.skip(f"cannot mount a read-only tmpfs (needs root): {result.stderr!r}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def check_unwritable(result: subprocess.CompletedProcess[str], shown: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and shown in errors[0], result.stderr
    assert "--output-file" in result.stderr


def test_an_output_under_a_regular_file_is_a_clear_error(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a directory")
    dataset = dataset_file(count=1)
    check_unwritable(run_cli(infer_args(openai_server, dataset, blocker / "out.jsonl")), str(blocker))
    deeper = run_cli(infer_args(openai_server, dataset, blocker / "sub" / "out.jsonl"))
    check_unwritable(deeper, str(blocker))
    by_dir = run_cli(["infer", "--dataset", str(dataset), "--api-base", openai_server.url,
                      "--output-dir", str(blocker / "results")])  # fmt: skip
    check_unwritable(by_dir, str(blocker))
    assert blocker.read_text() == "a file, not a directory"
    assert openai_server.completion_requests() == []


def test_an_output_that_is_a_directory_is_a_clear_error(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "results").mkdir()
    result = run_cli(infer_args(openai_server, dataset_file(count=1), tmp_path / "results"))
    check_unwritable(result, str(tmp_path / "results"))
    assert "is a directory" in result.stderr


def test_an_output_in_proc_is_a_clear_error(openai_server: OpenAIServer, dataset_file: Callable[..., Path]) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    result = run_cli(infer_args(openai_server, dataset_file(count=1), Path("/proc/collect-test/out.jsonl")))
    check_unwritable(result, "/proc/collect-test/out.jsonl")
    lock = run_cli(infer_args(openai_server, dataset_file(count=1), Path("/proc/out.jsonl")))
    check_unwritable(lock, "/proc/out.jsonl")


def test_a_read_only_directory_is_a_clear_error(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], read_only_dir: Path
) -> None:
    dataset = dataset_file(count=1)
    check_unwritable(run_cli(infer_args(openai_server, dataset, read_only_dir / "out.jsonl")), str(read_only_dir))
    nested = run_cli(infer_args(openai_server, dataset, read_only_dir / "sub" / "out.jsonl"))
    check_unwritable(nested, str(read_only_dir / "sub"))


# --- results lines with wrong types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"responses": "not a list"}, "`responses`"),
        ({"attempts": "x"}, "`attempts`"),
        ({"responses": [1, 2]}, "`responses[0]`"),
        ({"unique_id": ["a"]}, "`unique_id`"),
        ({"k_requested": None}, "`k_requested`"),
    ],
)
def test_a_line_with_wrong_types_names_file_line_and_field(
    openai_server: OpenAIServer,
    dataset_file: Callable[..., Path],
    tmp_path: Path,
    change: dict[str, Any],
    field: str,
) -> None:
    dataset = dataset_file(count=3)
    out = tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=1)).returncode == 0
    lines = out.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), **change})
    out.write_text("\n".join(lines) + "\n")
    before = out.read_bytes()
    openai_server.reset()
    result = run_cli(infer_args(openai_server, dataset, out, k=2))
    assert result.returncode == 1
    assert f"{out}, line 2" in result.stderr and field in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert openai_server.completion_requests() == [] and out.read_bytes() == before


# --- SIGTERM and SIGHUP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_ends_like_ctrl_c_and_loses_nothing(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path, sig: int, code: int
) -> None:
    dataset = dataset_file(count=20)
    out = tmp_path / "out.jsonl"
    openai_server.latency = 0.2
    args = infer_args(openai_server, dataset, out, "--max-concurrent", "2", "--batch-size", "1000", k=2)
    proc = start_cli(args)
    wait_for_lines(out, 3, timeout=30)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert "interrupted; every finished response is saved" in stderr and "Traceback" not in stderr
    saved = scan(out)
    assert 3 <= len(saved.problems) < 20
    assert all(st.good == 2 and st.lines == 1 for st in saved.problems.values())  # whole lines only
    openai_server.reset()
    result = run_cli(args)  # the lock was released, and only what is missing is asked
    assert result.returncode == 0, result.stderr
    assert len(openai_server.completion_requests()) == 20 - len(saved.problems)
    assert_complete(out, 20, 2)
