"""The record schema: a Problem, and the JSONL results record (one problem with its list of responses).

A results line ("Inference Results Format") is a dict::

    {schema_version, unique_id, problem, is_mcq, choices, choice_index_correct, explanation_correct,
     answer_correct, category, dataset,                       # the problem (unified schema)
     model, api_base, endpoint, generation, prompt_fingerprint,  # what was asked, and how
     attempts, created_at, updated_at,
     responses: [Response, ...]}

plus `shard` ("I/N") on the records of a `collect infer --shard I/N` run (absent: every problem was asked).

A Response is::

    {index, full_response, reasoning_content, finish_reason, usage, latency_s, obtained_via, created_at, error}

`error` is None for a good response; a failed request gives a response with `full_response` None and
`error = {type, status, message}`. `collect extract` adds `extracted_answer`, `is_correct`, `outcome` and
`extraction_rule` to each response, and `extractor_version` to the record. docs/records.md has the tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

SCHEMA_VERSION = 1

AnswerKind = Literal["mcq", "math", "number"]
"""How a problem is graded: a choice letter, a math expression, or a number (GSM8K, AIME)."""

PROBLEM_FIELDS = (
    "unique_id",
    "problem",
    "is_mcq",
    "choices",
    "choice_index_correct",
    "explanation_correct",
    "answer_correct",
    "category",
    "dataset",
)
"""Fields of a results record that describe the problem (copied from the dataset)."""

COMPARED_PROBLEM_FIELDS = PROBLEM_FIELDS[1:]
"""The problem fields a resumed run compares with the dataset (all but the key, `unique_id`)."""

FIELD_LABELS = {"problem": "question"}
"""Names the user knows a record field by, where the dataset names it differently."""

RUN_FIELDS = ("model", "endpoint", "generation", "prompt_fingerprint")
"""Fields that must agree between a results file and a run that resumes it."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One benchmark problem in the unified schema."""

    unique_id: str
    question: str
    answer_correct: str
    category: str
    dataset: str
    choices: tuple[str, ...] | None = None
    choice_index_correct: int | None = None
    explanation_correct: str | None = None
    answer_kind: AnswerKind | None = None
    """None: `mcq` when there are choices, else `math` (records without the field are graded that way)."""
    prompt: str | None = None
    """The name of the benchmark's own prompt template (prompts.BENCHMARK_TEMPLATES); None: by kind."""

    @property
    def is_mcq(self) -> bool:
        """True for a multiple-choice question."""
        return self.choices is not None

    @property
    def correct_letter(self) -> str | None:
        """The letter (A, B, ...) of the correct choice, for an MCQ."""
        if self.choice_index_correct is None:
            return None
        return choice_letter(self.choice_index_correct)

    def to_record_fields(self) -> dict[str, Any]:
        """The problem's part of a results record."""
        return {
            "unique_id": self.unique_id,
            "problem": self.question,
            "is_mcq": self.is_mcq,
            "choices": list(self.choices) if self.choices is not None else None,
            "choice_index_correct": self.choice_index_correct,
            "explanation_correct": self.explanation_correct,
            "answer_correct": self.answer_correct,
            "category": self.category,
            "dataset": self.dataset,
            **({"answer_kind": self.answer_kind} if self.answer_kind is not None else {}),
        }


def problem_signature(fields: Mapping[str, Any], mask: int | None = None) -> tuple[int, bytes]:
    """A small fingerprint of a problem's text, for comparing a results file with a dataset in O(1) memory.

    Returns (mask, digest): bit i of `mask` says that COMPARED_PROBLEM_FIELDS[i] is part of the digest. With
    `mask` None, the fields present in `fields` are used (a record from an older version may lack some);
    with a mask, exactly those fields (missing ones as null), so a dataset row is hashed like the record.
    """
    if mask is None:
        mask = 0
        for bit, name in enumerate(COMPARED_PROBLEM_FIELDS):
            if name in fields:
                mask |= 1 << bit
    values = [fields.get(name) for bit, name in enumerate(COMPARED_PROBLEM_FIELDS) if mask >> bit & 1]
    data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    return mask, hashlib.blake2b(data, digest_size=12).digest()


def choice_letter(index: int) -> str:
    """0 → A, 1 → B, ..., 25 → Z, 26 → AA (MMLU-Pro has up to 10 choices, A–J)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def now_iso() -> str:
    """The current UTC time, ISO 8601 with timezone."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def is_good(response: dict[str, Any]) -> bool:
    """A response that came back from the model (not a failed request)."""
    return response.get("error") is None and response.get("full_response") is not None


def merge_records(fragments: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge the lines written for one problem (in file order) into one record.

    Good responses are kept in order and renumbered 0..n-1. Failed requests are kept only while the problem
    has fewer good responses than were asked for: the newest errors fill the missing slots, so a problem that
    failed shows why. `attempts` is the highest count seen.
    """
    merged: dict[str, Any] | None = None
    good: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    wanted = 0
    for fragment in fragments:
        if merged is None:
            merged = {key: value for key, value in fragment.items() if key != "responses"}
        else:
            merged["attempts"] = max(merged.get("attempts", 0), fragment.get("attempts", 0))
            merged["updated_at"] = fragment.get("updated_at", merged.get("updated_at"))
            for key, value in fragment.items():
                if key not in merged:
                    merged[key] = value
        wanted = max(wanted, fragment.get("k_requested", 0))
        for response in fragment.get("responses", []):
            (good if is_good(response) else errors).append(response)
    if merged is None:
        raise ValueError("no fragments to merge")
    missing = max(0, wanted - len(good))
    kept_errors = errors[len(errors) - missing :] if missing else []
    responses = []
    for index, response in enumerate([*good, *kept_errors]):
        responses.append({**response, "index": index})
    merged["responses"] = responses
    merged["k_requested"] = wanted
    return merged
