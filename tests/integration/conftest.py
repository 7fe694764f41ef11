"""Integration fixtures: a fresh OpenAI-compatible test server per test, and small unified-schema datasets."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.fakes` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.fakes.openai_server import DEFAULT_MODEL, OpenAIServer  # noqa: E402

MCQ_ROWS: list[dict[str, Any]] = [
    {
        "unique_id": "mcq/physics/1",
        "question": (
            "A ball is dropped from rest. Ignoring air resistance, "
            "what is its speed after 2 s? (g = 10 m/s^2)"
        ),
        "choices": ["5 m/s", "10 m/s", "20 m/s", "40 m/s"],
        "choice_index_correct": 2,
        "explanation_correct": "v = g t = 10 * 2 = 20 m/s.",
        "answer_correct": "20 m/s",
        "category": "physics",
    },
    {
        "unique_id": "mcq/economics/1",
        "question": (
            "Which of the following would most likely shift the demand curve for coffee to the right?"
        ),
        "choices": [
            "A rise in the price of coffee",
            "A rise in the price of tea, a substitute",
            "A fall in consumer incomes, coffee being a normal good",
            "A bumper coffee harvest",
        ],
        "choice_index_correct": 1,
        "explanation_correct": None,
        "answer_correct": "A rise in the price of tea, a substitute",
        "category": "economics",
    },
    {
        "unique_id": "mcq/law/1",
        "question": "Under the common law, which element is NOT required for a valid contract?",
        "choices": [
            "Offer",
            "Acceptance",
            "Consideration",
            "A written document",
            "Intention to create legal relations",
        ],
        "choice_index_correct": 3,
        "explanation_correct": None,
        "answer_correct": "A written document",
        "category": "law",
    },
]

OPEN_ROWS: list[dict[str, Any]] = [
    {
        "unique_id": "open/algebra/1",
        "question": "If $2x + 3 = 11$, what is the value of $x$?",
        "choices": None,
        "choice_index_correct": None,
        "explanation_correct": "Subtract 3 and divide by 2: $x = 4$.",
        "answer_correct": "4",
        "category": "Algebra",
    },
    {
        "unique_id": "open/number_theory/1",
        "question": "What is the remainder when $2^{10}$ is divided by $7$?",
        "choices": None,
        "choice_index_correct": None,
        "explanation_correct": "$2^3 = 8 \\equiv 1$, so $2^{10} = 2^9 \\cdot 2 \\equiv 2$.",
        "answer_correct": "2",
        "category": "Number Theory",
    },
    {
        "unique_id": "open/geometry/1",
        "question": "A right triangle has legs of length 6 and 8. What is the length of its hypotenuse?",
        "choices": None,
        "choice_index_correct": None,
        "explanation_correct": "$\\sqrt{36 + 64} = 10$.",
        "answer_correct": "10",
        "category": "Geometry",
    },
]


def make_rows(count: int = 6) -> list[dict[str, Any]]:
    """`count` unified-schema rows, alternating multiple-choice and open-ended, with unique ids.

    The first six are the literal rows above; further rows repeat them with numbered ids and questions.
    """
    base = [row for pair in zip(MCQ_ROWS, OPEN_ROWS, strict=True) for row in pair]
    rows = []
    for i in range(count):
        row = dict(base[i % len(base)])
        if i >= len(base):
            row["unique_id"] = f"{row['unique_id']}-{i}"
            row["question"] = f"(Variant {i}) {row['question']}"
        rows.append(row)
    return rows


def write_dataset(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write `rows` to `path` in the format its suffix names (.jsonl, .json, .csv, .parquet); return it."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    elif suffix == ".csv":
        import csv

        fields = list(rows[0]) if rows else []
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                cells = {k: json.dumps(v) if k == "choices" and v is not None else v for k, v in row.items()}
                writer.writerow({k: "" if v is None else v for k, v in cells.items()})
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(f"unsupported dataset suffix: {path.suffix}")
    return path


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh OpenAI-compatible server on 127.0.0.1 (model `test-model`, no key), stopped after the test."""
    server = OpenAIServer([DEFAULT_MODEL]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dataset_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `dataset_file(rows=None, count=6, name="problems.jsonl")` writes a dataset in tmp_path."""

    def make(rows: list[dict[str, Any]] | None = None, count: int = 6, name: str = "problems.jsonl") -> Path:
        return write_dataset(tmp_path / name, rows if rows is not None else make_rows(count))

    return make


@pytest.fixture
def problem_rows() -> list[dict[str, Any]]:
    """Six fresh unified-schema rows (3 multiple-choice, 3 open-ended, 6 categories) that a test may edit."""
    return make_rows(6)


@pytest.fixture
def make_problem_rows() -> Callable[[int], list[dict[str, Any]]]:
    """Factory: `make_problem_rows(count)` gives `count` fresh rows with unique ids."""
    return make_rows
