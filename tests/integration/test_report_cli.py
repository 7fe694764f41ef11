"""`collect report` end to end through the CLI: formats, exports, plots, and clear errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from llmrouter_collect.cli import app

runner = CliRunner()

# unique_id → (category, outcomes of model "tiny", outcomes of model "org/big")
PROBLEMS = {
    "test/algebra/1.json": ("Algebra", ["correct", "wrong", "correct"], ["correct", "correct", "correct"]),
    "test/algebra/2.json": ("Algebra", ["wrong", "wrong", "error"], ["correct", "wrong", "unparsed"]),
    "test/geometry/3.json": ("Geometry", ["truncated", "wrong", "wrong"], ["wrong", "wrong", "wrong"]),
    "test/geometry/4.json": ("Geometry", ["correct", "correct", "unparsed"], ["wrong", "correct", "wrong"]),
}


def graded_record(model: str, uid: str, category: str, outcomes: list[str]) -> dict[str, Any]:
    """A graded MATH-500 style record; wrong answers are all `7` so both models can agree on it."""
    responses = []
    for index, outcome in enumerate(outcomes):
        failed = outcome == "error"
        answer = {"correct": "\\frac{1}{2}", "wrong": "7"}.get(outcome)
        responses.append(
            {
                "index": index,
                "full_response": None if failed else f"... so the answer is $\\boxed{{{answer}}}$.",
                "reasoning_content": None,
                "finish_reason": None if failed else ("length" if outcome == "truncated" else "stop"),
                "usage": None
                if failed
                else {"prompt_tokens": 120, "completion_tokens": 300 if model == "tiny" else 900},
                "latency_s": None if failed else 1.5 + index,
                "obtained_via": "n=3",
                "created_at": "2026-01-01T00:00:00.000+00:00",
                "error": {"type": "http_status", "status": 503, "message": "overloaded"} if failed else None,
                "extracted_answer": answer,
                "is_correct": outcome == "correct",
                "outcome": outcome,
                "extraction_rule": "boxed" if answer else None,
            }
        )
    return {
        "schema_version": 1,
        "unique_id": uid,
        "problem": "Compute $\\frac{2}{4}$.",
        "is_mcq": False,
        "choices": None,
        "choice_index_correct": None,
        "explanation_correct": None,
        "answer_correct": "\\frac{1}{2}",
        "category": category,
        "dataset": "math500",
        "model": model,
        "api_base": "http://127.0.0.1:8000/v1",
        "endpoint": "chat",
        "generation": {"temperature": 0.7, "top_p": None, "max_tokens": 1024, "seed": None, "stop": []},
        "prompt_fingerprint": "sha256:0",
        "k_requested": 3,
        "attempts": 1,
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "updated_at": "2026-01-01T00:00:00.000+00:00",
        "extractor_version": "1",
        "responses": responses,
    }


@pytest.fixture
def graded_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "processed_results"
    directory.mkdir()
    for model, position, name in [("tiny", 1, "tiny.jsonl"), ("org/big", 2, "big.jsonl")]:
        records = [
            graded_record(model, uid, spec[0], spec[position])  # type: ignore[arg-type]
            for uid, spec in PROBLEMS.items()
        ]
        (directory / name).write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return directory


def test_table_output_shows_models_categories_and_router_view(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "--price", "tiny=0.1,0.4", "--price", "org/big=2,8"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ["Accuracy", "tiny", "org/big", "Algebra", "Geometry", "Router view", "oracle", "category router"]:
        assert text in out
    # tiny: 4 correct of 12 samples
    assert "33.3" in out
    assert "Unsolved by every model: 1 of 4" in out
    assert "test/geometry/3.json" in out


def test_json_output_parses_and_has_every_number(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    models = {model["model"]: model for model in data["models"]}
    tiny = models["tiny"]["overall"]
    assert tiny["accuracy"] == pytest.approx(4 / 12)
    assert tiny["accuracy_answered"] == pytest.approx(4 / 9)
    assert tiny["counts"] == {"correct": 4, "wrong": 5, "unparsed": 1, "truncated": 1, "error": 1}
    assert set(tiny["pass_at"]) == {"1", "2", "3"}
    assert data["router"]["common_problems"] == 4
    assert [item["unique_id"] for item in data["router"]["agreed_wrong"]] == ["test/geometry/3.json"]
    assert data["router"]["agreed_wrong"][0]["answer"] == "7"


def test_csv_output_parses(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "-f", "csv", "--price", "tiny=0.1,0.4"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    model_rows = [row for row in rows if row["kind"] == "model"]
    assert {(row["model"], row["group"]) for row in model_rows} == {
        (model, group) for model in ("tiny", "org/big") for group in ("ALL", "Algebra", "Geometry")
    }
    tiny = next(row for row in model_rows if row["model"] == "tiny" and row["group"] == "ALL")
    assert float(tiny["accuracy"]) == pytest.approx(4 / 12)
    assert float(tiny["error_rate"]) == pytest.approx(1 / 12)
    assert float(tiny["cost_total"]) == pytest.approx((11 * 120 * 0.1 + 11 * 300 * 0.4) / 1e6)
    big = next(row for row in model_rows if row["model"] == "org/big" and row["group"] == "ALL")
    assert big["cost_total"] == ""
    assert [row["model"] for row in rows if row["kind"] == "router"][-1].startswith("oracle")


def test_markdown_output(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "--format", "markdown"])
    assert result.exit_code == 0, result.stderr
    assert "### Accuracy (all problems; %)" in result.stdout
    assert "| model | problems | k |" in result.stdout
    assert "| --- | ---: |" in result.stdout


def test_export_and_plots_from_the_cli(graded_dir: Path, tmp_path: Path) -> None:
    export, plots = tmp_path / "router_data", tmp_path / "plots"
    result = runner.invoke(
        app, ["report", str(graded_dir), "--export", str(export), "--plots", str(plots), "-f", "json"]
    )
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # the file list goes to stderr, so stdout stays valid JSON
    assert "wrote" in result.stderr
    assert {path.name for path in export.iterdir()} == {
        "long.parquet",
        "long.jsonl",
        "wide.parquet",
        "wide.jsonl",
        "wide.csv",
    }
    assert all(path.stat().st_size > 0 for path in plots.glob("*.png"))
    assert len(list(plots.glob("*.png"))) == 3


def test_a_file_that_is_not_graded_exits_with_a_clear_message(graded_dir: Path, tmp_path: Path) -> None:
    record = graded_record("tiny", "test/algebra/1.json", "Algebra", ["correct"])
    for response in record["responses"]:
        for key in ("outcome", "is_correct", "extracted_answer", "extraction_rule"):
            del response[key]
    raw = tmp_path / "tiny_math500.jsonl"
    raw.write_bytes(orjson.dumps(record) + b"\n")
    result = runner.invoke(app, ["report", str(raw)])
    assert result.exit_code == 1
    assert "is not a graded results file" in result.stderr
    assert "collect extract" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "invalid --format 'xml'"),
        (["--price", "tiny"], "invalid --price 'tiny'"),
        (["--price", "tiny=a,b"], "input price 'a' is not a non-negative number"),
        (["--test-fraction", "1.5"], "invalid --test-fraction"),
    ],
)
def test_bad_flags_exit_with_a_clear_message(graded_dir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), *args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_prices_file_names_the_file_and_row(graded_dir: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("model,input,output\ntiny,0.1,0.4\norg/big,2,-1\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(graded_dir), "--prices", str(prices)])
    assert result.exit_code == 1
    assert f"--prices {prices}, row 3: output price '-1'" in result.stderr


def test_a_missing_path_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr


def test_input_option_as_in_extract_and_no_input(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", "-i", str(graded_dir / "tiny.jsonl"), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    assert [model["model"] for model in json.loads(result.stdout)["models"]] == ["tiny"]
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 1
    assert "no input" in result.stderr


def test_group_by_dataset_and_a_bad_group(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "--by", "dataset", "-f", "csv"])
    assert result.exit_code == 0, result.stderr
    groups = {row["group"] for row in csv.DictReader(io.StringIO(result.stdout)) if row["kind"] == "model"}
    assert groups == {"ALL", "math500"}
    result = runner.invoke(app, ["report", str(graded_dir), "--by", "subject"])
    assert result.exit_code == 1
    assert "invalid --by 'subject'" in result.stderr


def test_format_and_group_names_are_case_insensitive(graded_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(graded_dir), "--format", "JSON", "--by", "Category"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["group_by"] == "category"
    result = runner.invoke(app, ["report", str(graded_dir), "-f", "md"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("### ")


def test_a_split_too_small_to_mean_anything_is_flagged_in_the_table_and_the_export(
    graded_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "router_data"
    result = runner.invoke(app, ["report", str(graded_dir), "--export", str(export)])
    assert result.exit_code == 0, result.output
    table = " ".join(result.stdout.split())
    assert "warning: the " in table and "split has only" in table and "of 4 problems" in table
    stderr = " ".join(result.stderr.split())
    assert "--export: the " in stderr and "split has only" in stderr
    assert sorted(path.name for path in export.iterdir()) == [  # no temp file left beside the exports
        "long.jsonl", "long.parquet", "wide.csv", "wide.jsonl", "wide.parquet"
    ]
    markdown = runner.invoke(app, ["report", str(graded_dir), "--format", "markdown"])
    assert "split has only" in markdown.stdout


def test_list_names_the_files_read_and_skipped_and_the_newer_file_wins(graded_dir: Path) -> None:
    # a second run of tiny on two problems, newer than the first file; a raw file with its graded copy
    newer = graded_dir / "tiny-rerun.jsonl"
    newer.write_bytes(
        b"".join(
            orjson.dumps(graded_record("tiny", uid, PROBLEMS[uid][0], ["correct"] * 3)) + b"\n"
            for uid in ("test/algebra/1.json", "test/algebra/2.json")
        )
    )
    os.utime(graded_dir / "tiny.jsonl", ns=(1_000_000_000, 1_000_000_000))
    raw = dict(graded_record("org/big", "test/algebra/1.json", "Algebra", ["correct"]))
    raw["responses"] = [{"index": 0, "full_response": "x", "finish_reason": "stop", "error": None}]
    (graded_dir / "big-raw.jsonl").write_bytes(orjson.dumps(raw) + b"\n")
    (graded_dir / "big-raw.graded.jsonl").write_bytes((graded_dir / "big.jsonl").read_bytes())
    (graded_dir / "big.jsonl").unlink()
    result = runner.invoke(app, ["report", str(graded_dir), "--list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"{graded_dir / 'big-raw.jsonl'}: skipped: not graded; its graded copy big-raw.graded.jsonl is read" in lines
    assert f"{graded_dir / 'big-raw.graded.jsonl'}: read — org/big: 4 problems" in lines
    assert f"{graded_dir / 'tiny-rerun.jsonl'}: read — tiny: 2 problems" in lines
    shadowed = "2 left out (also in the newer tiny-rerun.jsonl)"
    assert f"{graded_dir / 'tiny.jsonl'}: read — tiny: 2 problems; {shadowed}" in lines
    assert len(lines) == 4  # only the list
    assert "are also in the newer" in result.stderr

    result = runner.invoke(app, ["report", str(graded_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    tiny = next(model for model in json.loads(result.stdout)["models"] if model["model"] == "tiny")
    # algebra from the rerun (6 correct), geometry from the first file (2 correct of 6)
    assert tiny["overall"]["counts"]["correct"] == 8


def test_different_problem_sets_are_said_and_compared_on_the_common_problems(graded_dir: Path) -> None:
    big = graded_dir / "big.jsonl"
    lines = big.read_bytes().splitlines(keepends=True)
    big.write_bytes(b"".join(lines[:3]))  # org/big lacks test/geometry/4.json
    result = runner.invoke(app, ["report", str(graded_dir)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "the models answered different problems (org/big: 3, tiny: 4)" in out
    assert "common 3: accuracy over the 3 problems every model answered" in out
    assert "not in the router view: org/big is missing 1 problem(s) the others have" in out
    assert "left out" not in out
    markdown = runner.invoke(app, ["report", str(graded_dir), "-f", "md"]).stdout
    # org/big is ahead on its own 3 problems and on the common ones: only the common column is bold
    assert "| org/big | 3 | 3 | 44.4 [9.9, 85.4] | 50.0 | 44.4 | 66.7 | 50.0 | **44.4** |" in markdown
    assert "| tiny | 4 | 3 | 33.3 [9.7, 70.0] | 44.4 | 33.3 | 50.0 | 50.0 | 22.2 |" in markdown
    data = json.loads(runner.invoke(app, ["report", str(graded_dir), "-f", "json"]).stdout)
    models = {model["model"]: model for model in data["models"]}
    assert data["problem_sets_differ"] is True
    # tiny on the three common problems: 1 + 0 + 0 correct of 9
    assert models["tiny"]["common_accuracy"] == pytest.approx(2 / 9)
    assert models["org/big"]["common_accuracy"] == pytest.approx(models["org/big"]["overall"]["accuracy"])
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["report", str(graded_dir), "-f", "csv"]).stdout)))
    tiny = next(row for row in rows if row["model"] == "tiny" and row["group"] == "ALL")
    assert float(tiny["common_accuracy"]) == pytest.approx(2 / 9)


def test_categories_are_qualified_by_their_dataset_when_several_datasets_are_read(graded_dir: Path) -> None:
    other = graded_record("tiny", "other/1", "algebra", ["correct"])
    other["dataset"] = "gsm8k"
    (graded_dir / "tiny-gsm8k.jsonl").write_bytes(orjson.dumps(other) + b"\n")
    result = runner.invoke(app, ["report", str(graded_dir), "-f", "json"])
    assert result.exit_code == 0, result.output
    tiny = next(model for model in json.loads(result.stdout)["models"] if model["model"] == "tiny")
    assert [row["group"] for row in tiny["groups"]] == ["gsm8k/algebra", "math500/Algebra", "math500/Geometry"]
    result = runner.invoke(app, ["report", str(graded_dir)])
    assert "gsm8k/algebra" in result.stdout and "math500/Algebra" in result.stdout
