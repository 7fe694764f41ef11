"""Rendering of `collect report`: number formats, one-model reports, and the Markdown/CSV shapes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from llmrouter_collect.report.loader import load
from llmrouter_collect.report.render import money, pct, render_csv, render_markdown, render_rich
from llmrouter_collect.report.summary import build_report


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (0.0, "$0"), (5.48e-05, "$0.0000548"), (0.00131, "$0.00131"), (1.5, "$1.50"), (123456.0, "$123,456")],
)
def test_money(value: float | None, text: str) -> None:
    assert money(value) == text


def test_pct() -> None:
    assert pct(0.46349) == "46.3"
    assert pct(None) == "—"


def one_model_file(tmp_path: Path) -> Path:
    records = []
    for i, outcomes in enumerate([["correct", "wrong"], ["wrong", "wrong"], ["error", "error"]]):
        responses = [
            {
                "index": j,
                "outcome": outcome,
                "is_correct": outcome == "correct",
                "extracted_answer": {"correct": "42", "wrong": "41"}.get(outcome),
                "usage": {"prompt_tokens": 10, "completion_tokens": 20},
                "latency_s": 1.0,
                "error": None,
                "full_response": "x",
            }
            for j, outcome in enumerate(outcomes)
        ]
        records.append(
            {"unique_id": f"q{i}", "model": "solo", "category": "c|d", "is_mcq": False, "responses": responses}
        )
    path = tmp_path / "solo.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def test_a_one_model_report_renders_without_a_router_comparison(tmp_path: Path) -> None:
    report = build_report(load([one_model_file(tmp_path)]))
    markdown = render_markdown(report)
    assert "### Accuracy (all problems; %)" in markdown
    assert "Router view" not in markdown
    assert "c\\|d" in markdown  # a pipe in a category does not break the Markdown table
    assert "Unsolved by every model: 2 of 3 problems" in markdown
    console = Console(width=200, record=True)
    console.print(render_rich(report))
    text = console.export_text()
    assert "solo" in text
    assert "16.7 [" in text  # 1 correct of 6 samples
    assert "25.0" in text  # 1 correct of the 4 samples with a final answer
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [row["kind"] for row in rows] == ["model", "model"]
    overall = rows[0]
    assert overall["group"] == "ALL"
    assert float(overall["accuracy"]) == pytest.approx(1 / 6)
    assert float(overall["accuracy_answered"]) == pytest.approx(1 / 4)
    assert float(overall["error_rate"]) == pytest.approx(2 / 6)
