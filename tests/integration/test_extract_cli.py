"""`collect extract` end to end through the CLI: outputs, summaries, tables, exit codes and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from llmrouter_collect.cli import app

runner = CliRunner()


def results_record(uid: str, category: str, texts: list[str | None], *, mcq: bool = True) -> dict[str, Any]:
    responses = []
    for i, text in enumerate(texts):
        failed = text is None
        responses.append({
            "index": i, "full_response": text, "reasoning_content": None,
            "finish_reason": None if failed else ("length" if text.endswith("...") else "stop"),
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "reasoning_tokens": 0}, "latency_s": 0.5,
            "obtained_via": "n=3", "created_at": "2026-01-01T00:00:00.000+00:00",
            "error": {"type": "http", "status": 503, "message": "overloaded"} if failed else None,
        })
    problem = (
        {"is_mcq": True, "choices": ["5 m/s", "10 m/s", "20 m/s", "40 m/s"], "choice_index_correct": 2,
         "answer_correct": "20 m/s"}
        if mcq else {"is_mcq": False, "choices": None, "choice_index_correct": None, "answer_correct": "1,450,000"}
    )
    return {
        "schema_version": 1, "unique_id": uid, "problem": "q", **problem, "explanation_correct": None,
        "category": category, "dataset": "sample", "model": "tiny", "api_base": "http://127.0.0.1:1/v1",
        "endpoint": "chat", "generation": {"temperature": 0.7}, "prompt_fingerprint": "sha256:0",
        "k_requested": len(texts), "attempts": 1, "created_at": "2026-01-01T00:00:00.000+00:00",
        "updated_at": "2026-01-01T00:00:00.000+00:00", "responses": responses,
    }


def write_results(path: Path) -> Path:
    records = [
        results_record("p1", "physics", ["v = g t = 20 m/s. The answer is (C).", "The answer is (B).", None]),
        results_record("p2", "physics", ["<think>g t = 20, so (C)...", "Answer: C", "Answer: (C)"]),
        results_record("m1", "money", ["The total is 1450000 dollars.\n#### 1,450,000", "so far 12 + 5...", "$1.45"],
                       mcq=False),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_extract_writes_graded_file_and_prints_summary_and_tables(tmp_path: Path) -> None:
    source = write_results(tmp_path / "tiny_sample.jsonl")
    result = runner.invoke(app, ["extract", "-i", str(source), "--by-category"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "tiny_sample.graded.jsonl"
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    outcomes = [resp["outcome"] for record in graded for resp in record["responses"]]
    assert outcomes == ["correct", "wrong", "error", "truncated", "correct", "correct", "correct", "truncated",
                        "wrong"]
    assert "accuracy 0.444 (4/9)" in result.stdout
    assert "over answered 0.667 (4/6)" in result.stdout
    assert "correct 4 · wrong 2 · unparsed 0 · truncated 2 · error 1" in result.stdout
    assert "by category" in result.stdout and "physics" in result.stdout and "money" in result.stdout


def test_extract_directory_with_output_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    write_results(runs / "a.jsonl")
    write_results(runs / "b.jsonl")
    result = runner.invoke(app, ["extract", "--input", str(runs), "--output", str(tmp_path / "graded")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "graded").iterdir()) == ["a.graded.jsonl", "b.graded.jsonl"]
    assert result.stdout.count("9 responses to 3 problems") == 2


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["extract", "-i", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1
    assert "error: input not found" in result.stderr
    assert "Traceback" not in result.output


def test_the_input_is_an_argument_as_in_report_and_input_still_works(tmp_path: Path) -> None:
    source = write_results(tmp_path / "tiny_sample.jsonl")
    as_argument = runner.invoke(app, ["extract", str(source), "-o", str(tmp_path / "a.graded.jsonl")])
    assert as_argument.exit_code == 0, as_argument.output
    both = runner.invoke(app, ["extract", str(source), "--input", str(source), "-o", str(tmp_path / "b.graded.jsonl")])
    assert both.exit_code == 0, both.output
    assert (tmp_path / "a.graded.jsonl").read_bytes() == (tmp_path / "b.graded.jsonl").read_bytes()
    other = tmp_path / "other.jsonl"
    clash = runner.invoke(app, ["extract", str(source), "-i", str(other)])
    assert clash.exit_code == 2 and "two inputs given" in clash.output
    none = runner.invoke(app, ["extract", "--by-category"])
    assert none.exit_code == 2 and "collect extract FILE" in none.output
    assert "FILE" in runner.invoke(app, ["extract", "--help"]).output


def test_dataset_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    source = tmp_path / "problems.jsonl"
    source.write_text(json.dumps({"unique_id": "a", "question": "2+2?", "answer_correct": "4"}) + "\n")
    result = runner.invoke(app, ["extract", "-i", str(source)])
    assert result.exit_code == 1
    assert "is a dataset, not a results file" in result.stderr
    assert f"collect infer --dataset {source}" in result.stderr
    assert not (tmp_path / "problems.graded.jsonl").exists()


def test_one_bad_file_in_a_directory_fails_the_run_but_not_the_others(tmp_path: Path) -> None:
    write_results(tmp_path / "good.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    result = runner.invoke(app, ["extract", "-i", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "broken.jsonl is not a results file" in result.stderr
    assert "1 file(s) could not be graded" in result.stderr
    assert (tmp_path / "out" / "good.graded.jsonl").exists()


def test_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    source = write_results(tmp_path / "r.jsonl")
    before = source.read_bytes()
    result = runner.invoke(app, ["extract", "-i", str(source), "-o", str(source)])
    assert result.exit_code == 1
    assert "is the input file" in result.stderr
    assert source.read_bytes() == before


def test_bad_workers_flag_names_the_flag(tmp_path: Path) -> None:
    source = write_results(tmp_path / "r.jsonl")
    result = runner.invoke(app, ["extract", "-i", str(source), "--workers", "0"])
    assert result.exit_code == 1
    assert "--workers" in result.stderr


def test_infer_then_extract_as_a_user_would(openai_server: Any, dataset_file: Any, tmp_path: Path) -> None:
    """`collect infer` against the test server, then `python -m llmrouter_collect extract` in a subprocess."""
    dataset = dataset_file(count=6)
    results = tmp_path / "run.jsonl"
    env = {**os.environ, "COLUMNS": "200"}
    infer = subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", "infer", "--dataset", str(dataset), "--k", "3",
         "--api-base", openai_server.url, "--output-file", str(results)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert infer.returncode == 0, infer.stderr
    extract = subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", "extract", "-i", str(results), "--by-category"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert extract.returncode == 0, extract.stderr
    graded = [json.loads(line) for line in (tmp_path / "run.graded.jsonl").read_text().splitlines()]
    assert len(graded) == 6
    for record in graded:
        for response in record["responses"]:
            assert response["outcome"] in {"correct", "wrong"}, response
            if record["is_mcq"]:
                gold = chr(65 + record["choice_index_correct"])
                assert response["is_correct"] is (response["extracted_answer"] == gold)
    assert "18 responses to 6 problems" in extract.stdout
    assert "category" in extract.stdout


def test_output_directory_given_with_a_trailing_slash_is_created(tmp_path: Path) -> None:
    source = write_results(tmp_path / "tiny_sample.jsonl")
    result = runner.invoke(app, ["extract", "-i", str(source), "-o", f"{tmp_path}/graded/"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "graded" / "tiny_sample.graded.jsonl").is_file()


def test_another_results_file_as_output_is_refused_and_kept(tmp_path: Path) -> None:
    source = write_results(tmp_path / "tiny_sample.jsonl")
    other = write_results(tmp_path / "other_model.jsonl")
    before = other.read_bytes()
    result = runner.invoke(app, ["extract", "-i", str(source), "-o", str(other)])
    assert result.exit_code == 1
    assert "exists and is not a graded results file" in result.output
    assert "Traceback" not in result.output
    assert other.read_bytes() == before


def test_long_category_names_are_never_cut_in_the_table(tmp_path: Path) -> None:
    long_name = "OlympiadBench/Combinatorics and Probability"
    records = [results_record("p1", long_name, ["The answer is (C)."]),
               results_record("p2", long_name[:30] + " (other)", ["The answer is (B)."])]
    source = tmp_path / "long.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = runner.invoke(app, ["extract", "-i", str(source), "--by-category"])
    assert result.exit_code == 0, result.output
    assert long_name in result.stdout
    assert long_name[:30] + " (other)" in result.stdout
    assert "…" not in result.stdout


def test_problems_with_fewer_responses_than_asked_are_pointed_out(tmp_path: Path) -> None:
    record = results_record("p1", "physics", ["The answer is (C)."])
    record["k_requested"] = 4  # a run stopped after one of four responses
    source = tmp_path / "partial.jsonl"
    source.write_text(json.dumps(record) + "\n" + json.dumps(results_record("p2", "physics", ["Answer: C"])) + "\n")
    result = runner.invoke(app, ["extract", "-i", str(source)])
    assert result.exit_code == 0, result.output
    assert "1 problem(s) have fewer responses than asked" in result.stderr
    complete = write_results(tmp_path / "complete.jsonl")
    result = runner.invoke(app, ["extract", "-i", str(complete)])
    assert "fewer responses than asked" not in result.stderr


def _hostile_file(path: Path) -> tuple[Path, list[str]]:
    """A results file of real-looking hostile responses (degenerate small models), one math and one MCQ problem."""
    from tests.unit.test_extract_hostile import HOSTILE_TEXTS, NOT_STRINGS

    texts = {name: text for name, text in HOSTILE_TEXTS.items() if "surrogate" not in name}
    texts["NUL bytes"] = "x\x00\x00 so \\boxed{4\x00}\x00"
    names = [*texts, *(f"text is {name}" for name in NOT_STRINGS)]
    math = results_record("m1", "algebra", [*texts.values(), *(["x"] * len(NOT_STRINGS))], mcq=False)
    math["answer_correct"] = "42"
    for response, value in zip(math["responses"][len(texts):], NOT_STRINGS.values(), strict=True):
        response["full_response"] = value
    mcq = results_record("p1", "physics", list(texts.values()))
    path.write_text(json.dumps(math) + "\n" + json.dumps(mcq) + "\n", encoding="utf-8")
    return path, names


def test_hostile_responses_never_stop_the_file(tmp_path: Path) -> None:
    source, names = _hostile_file(tmp_path / "degenerate.jsonl")
    started = time.monotonic()
    result = runner.invoke(app, ["extract", "-i", str(source), "--workers", "2", "--grade-timeout", "2"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    math, mcq = [json.loads(line) for line in (tmp_path / "degenerate.graded.jsonl").read_text().splitlines()]
    by_name = dict(zip(names, math["responses"], strict=False))
    assert len(math["responses"]) == len(names) and len(mcq["responses"]) == len(names) - 4
    for response in math["responses"] + mcq["responses"]:
        assert response["outcome"] in ("correct", "wrong", "unparsed"), response.get("extraction_rule")
    assert by_name["4301 nines boxed"]["outcome"] == "wrong"
    assert by_name["4301 nines boxed"]["extracted_answer"] == "9" * 4301
    assert by_name["1 MB response"]["outcome"] == "correct"
    assert by_name["exponent tower"]["outcome"] == "wrong"  # unproven (a time-out) or disproven, never a crash
    assert by_name["NUL bytes"]["extracted_answer"] == "4\x00"
    assert {by_name[f"text is {name}"]["outcome"] for name in ("null", "a number", "a list")} == {"unparsed"}
    assert "accuracy" in result.stdout
    assert elapsed < 90  # every response within the grade timeout; the time-outs run in parallel


def test_a_lone_surrogate_in_a_response_does_not_stop_the_file(tmp_path: Path) -> None:
    record = results_record("p1", "physics", ["The answer is (C). \ud800", "Answer: C"])
    source = tmp_path / "surrogate.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")  # json writes "\ud800" as an escape
    result = runner.invoke(app, ["extract", "-i", str(source)])
    assert result.exit_code == 0, result.output
    graded = json.loads((tmp_path / "surrogate.graded.jsonl").read_text())
    assert [r["outcome"] for r in graded["responses"]] == ["correct", "correct"]


def test_a_response_the_grader_cannot_finish_in_time_is_unparsed_and_counted_not_wrong(tmp_path: Path) -> None:
    """The safety net in the worker pool: extraction past --grade-timeout gives outcome unparsed, rule
    grader_error, a warning in the summary, and the other problems of the file are graded as usual."""
    slow = "So the answer is " + "9" * 100_000 + "."  # ~0.1-0.3 s of regex work, far over 0.01 s
    record = results_record("m1", "algebra", [slow, slow], mcq=False)
    source = tmp_path / "slow.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["extract", "-i", str(source), "--workers", "1", "--grade-timeout", "0.01"])
    assert result.exit_code == 0, result.output
    graded = json.loads((tmp_path / "slow.graded.jsonl").read_text())
    assert [(r["outcome"], r["extraction_rule"], r["is_correct"]) for r in graded["responses"]] == [
        ("unparsed", "grader_error", False)
    ] * 2
    assert "the grader failed on 2 response(s)" in " ".join(result.stderr.split())
    assert "unparsed 2" in result.stdout


def test_the_command_line_loads_no_grader_report_or_settings_module_until_a_command_runs() -> None:
    """`collect --help` stays fast: the extract and report commands import their heavy modules when they run."""
    code = (
        "import sys, llmrouter_collect.cli\n"
        "heavy = ('llmrouter_collect.extract', 'llmrouter_collect.report', 'llmrouter_collect.settings',\n"
        "         'pydantic_settings', 'numpy', 'pyarrow', 'matplotlib', 'sympy', 'math_verify')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_check_audits_a_graded_file_without_writing(tmp_path: Path) -> None:
    source = tmp_path / "run.jsonl"
    record = results_record("p1", "physics", ['{"reasoning": "v = g t = 20 m/s", "answer": "C"}', "Answer: C"])
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["extract", "-i", str(source)]).exit_code == 0
    graded = tmp_path / "run.graded.jsonl"
    # As an older grader left it: the JSON answer field unread.
    old = json.loads(graded.read_text(encoding="utf-8"))
    old["extractor_version"] = "1.4"
    del old["grader"]
    old["responses"][0].update(extracted_answer=None, is_correct=False, outcome="unparsed", extraction_rule=None)
    graded.write_text(json.dumps(old) + "\n", encoding="utf-8")
    before = sorted(path.name for path in tmp_path.iterdir())
    result = runner.invoke(app, ["extract", "-i", str(graded), "--check"])
    assert result.exit_code == 0, result.output
    assert "graded by:  extractor 1.4" in result.output
    assert "math-verify" in result.output
    assert "p1#0: unparsed None → correct 'C'" in result.output
    assert "1 of 2 verdicts would change" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    refused = runner.invoke(app, ["extract", "-i", str(source), "--check"])
    assert refused.exit_code == 1
    assert "not a graded file" in refused.output
