"""Several machines: `collect infer --shard I/N` against the test server on 127.0.0.1, then `collect extract` and
`collect report` on the directory of shard files, which read them as one model and refuse overlaps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
from tests.fakes.openai_server import DEFAULT_MODEL, OpenAIServer
from tests.integration.test_infer import FAST, records, run_cli

from llmrouter_collect.benchmarks import load_problems
from llmrouter_collect.shards import shard_number

NUM_PROBLEMS = 20
"""Of the 26 problems of the package's `sample` dataset: the shards are taken from this subset."""
K = 2


def infer_shard(server: OpenAIServer, out_dir: Path, shard: str | None, *extra: str) -> tuple[int, str]:
    args = ["infer", "--dataset", "sample", "--num-problems", str(NUM_PROBLEMS), "--k", str(K),
            "--api-base", server.url, "--output-dir", str(out_dir), *FAST, *extra]  # fmt: skip
    result = run_cli([*args, "--shard", shard] if shard else args)
    return result.returncode, result.stderr


def shard_file(out_dir: Path, index: int, count: int, suffix: str = ".jsonl") -> Path:
    return out_dir / f"{DEFAULT_MODEL}_sample.shard-{index}-of-{count}{suffix}"


def selection_ids() -> set[str]:
    return {problem.unique_id for problem in load_problems(["sample"], NUM_PROBLEMS)}


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_three_shards_cover_the_selection_once_and_report_as_one_model(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    for index in (1, 2, 3):
        code, stderr = infer_shard(openai_server, out, f"{index}/3")
        assert code == 0, stderr
        held = records(shard_file(out, index, 3))
        assert f"shard     {index}/3: {len(held)} of {NUM_PROBLEMS} problems" in stderr
    expected = selection_ids()
    seen: list[str] = []
    for index in (1, 2, 3):
        path = shard_file(out, index, 3)
        held = records(path)
        assert held, f"shard {index}/3 is empty: the test data no longer exercises every shard"
        assert all(record["shard"] == f"{index}/3" for record in held.values())
        assert all(len(record["responses"]) == K and all(r["error"] is None for r in record["responses"])
                   for record in held.values())  # fmt: skip
        meta = orjson.loads(path.with_name(path.name + ".meta.json").read_bytes())
        assert meta["shard"] == f"{index}/3" and meta["settings"]["shard"] == f"{index}/3"
        seen.extend(held)
    assert sorted(seen) == sorted(expected)  # every problem of the unsharded selection, exactly once
    assert len(openai_server.completion_requests()) == NUM_PROBLEMS

    extracted = run_cli(["extract", str(out)])
    assert extracted.returncode == 0, extracted.stderr
    assert all(shard_file(out, index, 3, ".graded.jsonl").is_file() for index in (1, 2, 3))

    reported = run_cli(["report", str(out), "--format", "json"])
    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout)
    assert [model["model"] for model in report["models"]] == [DEFAULT_MODEL]
    overall = report["models"][0]["overall"]
    assert (overall["problems"], overall["responses"]) == (NUM_PROBLEMS, NUM_PROBLEMS * K)
    assert not any("shard" in warning for warning in report["warnings"])

    # Only two of the three shard files: a warning names the missing one.
    shard_file(out, 3, 3, ".graded.jsonl").unlink()
    partial = run_cli(["report", str(out), "--format", "json"])
    assert partial.returncode == 0, partial.stderr
    assert f"model '{DEFAULT_MODEL}': shard 3/3 missing (read 1/3, 2/3)" in partial.stderr
    assert json.loads(partial.stdout)["models"][0]["overall"]["problems"] == NUM_PROBLEMS - len(
        records(shard_file(out, 3, 3))
    )


def test_a_shard_collected_twice_is_refused_by_extract_and_report(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    for index in (1, 2):
        code, stderr = infer_shard(openai_server, out, f"{index}/2")
        assert code == 0, stderr
    assert run_cli(["extract", str(out)]).returncode == 0
    first = shard_file(out, 1, 2)
    copy = out / "copy-of-shard-1.jsonl"
    shutil.copyfile(first, copy)
    graded_copy = out / "copy-of-shard-1.graded.jsonl"
    shutil.copyfile(shard_file(out, 1, 2, ".graded.jsonl"), graded_copy)
    some_id = next(iter(records(first)))

    reported = run_cli(["report", str(out)])
    assert reported.returncode == 1
    error = one_line_error(reported.stderr)
    assert "shard files overlap" in error and "both hold problem " in error
    assert f"{shard_file(out, 1, 2, '.graded.jsonl').name} (1/2)" in error and f"{graded_copy.name} (1/2)" in error

    graded_copy.unlink()
    before = {path.name: path.read_bytes() for path in out.glob("*.graded.jsonl")}
    extracted = run_cli(["extract", str(out)])
    assert extracted.returncode == 1
    error = one_line_error(extracted.stderr)
    assert "shard files overlap" in error and first.name in error and copy.name in error
    assert some_id in records(first)
    assert not graded_copy.exists()  # refused before any file was graded; earlier outputs as they were
    assert {path.name: path.read_bytes() for path in out.glob("*.graded.jsonl")} == before


def test_shards_of_different_n_side_by_side_are_refused(openai_server: OpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "results"
    overlap = {uid for uid in selection_ids() if shard_number(uid, 3) == 1 and shard_number(uid, 2) == 1}
    assert overlap, "the test data no longer has a problem in both shard 1/3 and shard 1/2"
    for shard in ("1/3", "1/2"):
        code, stderr = infer_shard(openai_server, out, shard)
        assert code == 0, stderr
    extracted = run_cli(["extract", str(out)])
    assert extracted.returncode == 1
    error = one_line_error(extracted.stderr)
    assert shard_file(out, 1, 3).name in error and shard_file(out, 1, 2).name in error
    assert any(f"both hold problem {uid} " in error for uid in overlap)
    assert not list(out.glob("*.graded.jsonl"))

    for count in (3, 2):  # graded one by one, then reported together
        assert run_cli(["extract", str(shard_file(out, 1, count))]).returncode == 0
    reported = run_cli(["report", str(out)])
    assert reported.returncode == 1
    error = one_line_error(reported.stderr)
    assert "(1/3)" in error and "(1/2)" in error
    assert any(f"both hold problem {uid} " in error for uid in overlap)


def test_resuming_a_file_with_another_shard_is_refused(openai_server: OpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "results"
    code, stderr = infer_shard(openai_server, out, "1/3", "--output-file", "mine.jsonl")
    assert code == 0, stderr
    before = (out / "mine.jsonl").read_bytes()
    for shard, belongs in (("2/3", "this run is shard 2/3"), (None, "this run is no shard (every problem)")):
        code, stderr = infer_shard(openai_server, out, shard, "--output-file", "mine.jsonl")
        assert code == 1
        error = one_line_error(stderr)
        assert f"the file belongs to shard 1/3, {belongs} (--shard)" in error
    assert (out / "mine.jsonl").read_bytes() == before
    code, stderr = infer_shard(openai_server, out, "1/3", "--output-file", "mine.jsonl")
    assert code == 0, stderr  # the same shard resumes: nothing left to ask
    assert "already done: " in stderr and "to ask: 0 responses" in stderr


def test_a_bad_shard_is_one_line_naming_the_flag(openai_server: OpenAIServer, tmp_path: Path) -> None:
    code, stderr = infer_shard(openai_server, tmp_path / "results", "4/3")
    assert code == 1
    assert "--shard / COLLECT_SHARD ('4/3')" in one_line_error(stderr) and "I/N" in stderr
    assert not (tmp_path / "results").exists()
    assert openai_server.all_requests() == []
