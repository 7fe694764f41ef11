"""The catalogue of built-in benchmarks: one declarative entry each (Hub id, config, split, column mapping).

A new benchmark is an entry here (and a test with a few of its real rows). `signature` lists the columns whose
presence in a local file's first row means the file is a copy of that benchmark in its Hub schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..records import AnswerKind
from ._columns import ColumnMap
from ._fields import RowMapper
from ._mappings import map_math500_row, map_mmlu_pro_row

GPQA_SHUFFLE_SEED = 0
"""GPQA lists the correct answer first; its options are shuffled by SHA-256 of (this seed, record id)."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the catalogue."""

    name: str
    label: str
    """Its part of default output file names (`GSM8K`)."""
    repo: str
    config: str | None
    split: str
    size: int
    """Problems in the split."""
    categories: str
    """Where the category comes from, for `collect datasets`."""
    columns: ColumnMap | None = None
    mapper_function: RowMapper | None = None
    """A hand-written mapper (MATH-500, MMLU-Pro: older than the column mappings)."""
    kind_name: AnswerKind = "mcq"
    signature: tuple[str, ...] = ()
    absent: tuple[str, ...] = ("unique_id", "answer_correct")
    gated: bool = False
    aliases: tuple[str, ...] = ()
    list_columns: tuple[str, ...] = ()
    """Columns holding lists or objects, for a hand-written mapper (a CSV copy stores them as text)."""

    @property
    def kind(self) -> AnswerKind:
        """How its problems are graded."""
        return self.columns.answer_kind if self.columns is not None else self.kind_name

    @property
    def schema(self) -> str:
        """How error messages name a local file in this benchmark's schema (`GSM8K schema`)."""
        return f"{self.label.replace('_', '-')} schema"

    @property
    def source(self) -> str:
        """`openai/gsm8k (main, test)`."""
        return f"{self.repo} ({', '.join(part for part in (self.config, self.split) if part)})"

    @property
    def list_cells(self) -> tuple[str, ...]:
        """The columns whose cells are lists or objects (read from text in a CSV copy)."""
        if self.columns is None:
            return self.list_columns
        cells = [self.columns.choices[0]] if len(self.columns.choices) == 1 else []
        cells += [self.columns.choice_labels] if self.columns.choice_labels else []
        return tuple(dict.fromkeys(cell.split(".", 1)[0] for cell in cells))

    def row_mapper(self) -> RowMapper:
        """A fresh row mapper for one load."""
        if self.columns is not None:
            return self.columns.mapper()
        assert self.mapper_function is not None
        return self.mapper_function

    def matches(self, row: Mapping[str, Any]) -> bool:
        """True when a row has this benchmark's Hub columns (a local copy of it)."""
        return all(name in row for name in self.signature) and not any(name in row for name in self.absent)


CATALOGUE: tuple[Benchmark, ...] = (
    Benchmark(
        "math500", "MATH_500", "HuggingFaceH4/MATH-500", None, "test", 500, "subject (7)",
        mapper_function=map_math500_row, kind_name="math",
        signature=("problem", "answer"), absent=("answer_correct", "question"), aliases=("math_500",),
    ),
    Benchmark(
        "mmlu_pro", "MMLU_Pro", "TIGER-Lab/MMLU-Pro", None, "test", 12_032, "category (14)",
        mapper_function=map_mmlu_pro_row, signature=("question_id", "options"), absent=("choices",),
        aliases=("mmlupro",), list_columns=("options",),
    ),
    Benchmark(
        "gsm8k", "GSM8K", "openai/gsm8k", "main", "test", 1_319, "one: GSM8K",
        ColumnMap(
            question="question", answer="answer", answer_format="after_hashes", id_prefix="gsm8k/test/",
            category_value="GSM8K", kind="number", prompt="gsm8k",
        ),
        signature=("question", "answer"), absent=("unique_id", "answer_correct", "choices", "subject"),
    ),
    Benchmark(
        "mmlu", "MMLU", "cais/mmlu", "all", "test", 14_042, "subject (57)",
        ColumnMap(
            question="question", answer="answer", answer_format="index", choices=("choices",),
            id_prefix="mmlu/test/", category="subject", prompt="mmlu",
        ),
        signature=("question", "subject", "choices", "answer"),
    ),
    Benchmark(
        "arc_challenge", "ARC_Challenge", "allenai/ai2_arc", "ARC-Challenge", "test", 1_172, "one: ARC-Challenge",
        ColumnMap(
            question="question", answer="answerKey", answer_format="label", choices=("choices.text",),
            choice_labels="choices.label", id="id", id_prefix="arc_challenge/", category_value="ARC-Challenge",
            prompt="arc",
        ),
        signature=("id", "question", "choices", "answerKey"), aliases=("arc", "arc_c"),
    ),
    Benchmark(
        "gpqa_diamond", "GPQA_Diamond", "Idavidrein/gpqa", "gpqa_diamond", "train", 198, "High-level domain (3)",
        ColumnMap(
            question="Question", answer_format="first",
            choices=("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
            shuffle_seed=GPQA_SHUFFLE_SEED, id="Record ID", id_prefix="gpqa_diamond/", category="High-level domain",
            explanation="Explanation", prompt="gpqa", strip_choices=True,
        ),
        signature=("Question", "Correct Answer", "Incorrect Answer 1"), gated=True, aliases=("gpqa",),
    ),
    Benchmark(
        "aime24", "AIME_2024", "HuggingFaceH4/aime_2024", None, "train", 30, "one: AIME 2024",
        ColumnMap(
            question="problem", answer="answer", answer_format="number", id="id", id_prefix="aime24/",
            category_value="AIME 2024", explanation="solution", kind="number", prompt="aime",
        ),
        signature=("id", "problem", "answer", "url"), aliases=("aime_2024", "aime2024"),
    ),
    Benchmark(
        "aime25", "AIME_2025", "MathArena/aime_2025", None, "train", 30, "one: AIME 2025",
        ColumnMap(
            question="problem", answer="answer", answer_format="number", id="problem_idx", id_prefix="aime25/",
            category_value="AIME 2025", kind="number", prompt="aime",
        ),
        signature=("problem_idx", "problem", "answer"), aliases=("aime_2025", "aime2025"),
    ),
    Benchmark(
        "winogrande", "WinoGrande", "allenai/winogrande", "winogrande_xl", "validation", 1_267, "one: WinoGrande",
        ColumnMap(
            question="sentence", answer="answer", answer_format="index1", choices=("option1", "option2"),
            id_prefix="winogrande/validation/", category_value="WinoGrande", prompt="winogrande",
        ),
        signature=("sentence", "option1", "option2", "answer"),
    ),
    Benchmark(
        "hellaswag", "HellaSwag", "Rowan/hellaswag", None, "validation", 10_042, "activity_label",
        ColumnMap(
            question="ctx", answer="label", answer_format="index", choices=("endings",), id="ind",
            id_prefix="hellaswag/validation/", category="activity_label", prompt="hellaswag",
        ),
        signature=("ctx", "endings", "label"),
    ),
)
"""Every built-in Hub benchmark. Local-file recognition tries them in this order after the more specific ones
(`DETECTION_ORDER`)."""

BY_NAME: dict[str, Benchmark] = {benchmark.name: benchmark for benchmark in CATALOGUE}
ALIASES: dict[str, str] = {alias: b.name for b in CATALOGUE for alias in b.aliases}

DETECTION_ORDER: tuple[Benchmark, ...] = tuple(
    BY_NAME[name]
    for name in (
        "gpqa_diamond", "arc_challenge", "hellaswag", "winogrande", "mmlu", "aime25", "aime24", "mmlu_pro",
        "math500", "gsm8k",
    )
)
"""Most specific signatures first: an AIME 2024 row also has MATH-500's `problem` and `answer`."""


def detect_benchmark(row: Any) -> Benchmark | None:
    """The benchmark whose Hub schema a local file's first row is in, or None (the unified schema)."""
    if not isinstance(row, dict):
        return None
    return next((benchmark for benchmark in DETECTION_ORDER if benchmark.matches(row)), None)
