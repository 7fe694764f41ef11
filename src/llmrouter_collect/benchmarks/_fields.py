"""Field checks shared by the unified schema and the Hugging Face mappings; RowError names the bad field."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DatasetError
from ..records import Problem

MAX_CHOICES = 26
"""Choices are lettered A–Z in prompts, so an MCQ has at most 26 of them."""
_SCHEMA_HINT = (
    "each row needs unique_id, question, answer_correct and category; MCQs also choices (a list of strings) "
    "and choice_index_correct (0-based) — see docs/datasets.md"
)


class RowError(DatasetError):
    """One row is invalid: `field` names the offending field; the loader adds file and row."""

    def __init__(self, field: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.field = field


RowMapper = Callable[[dict[str, Any], str], Problem]
"""A function (row, dataset name) → Problem that raises RowError for a bad row."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _got(value: Any) -> str:
    """A value as an error message shows it: `null`, or its type and repr (`str 'B'`)."""
    return "null" if value is None else f"{_type_name(value)} {_show(value)}"


_SYNONYMS = {
    "unique_id": ("id", "uid", "idx", "problem_id", "question_id"),
    "question": ("prompt", "input", "text", "query"),
    "answer_correct": ("answer", "gold", "target", "label", "solution", "correct_answer"),
    "category": ("subject", "topic", "domain", "type"),
    "choices": ("options",),
    "choice_index_correct": ("answer_index", "label_index", "correct_index"),
}
"""Field names other datasets use for our fields: a missing field's message suggests the rename."""


def _missing_hint(field: str, present: Iterable[str]) -> str:
    names = set(present)
    alias = next((name for name in _SYNONYMS.get(field, ()) if name in names), None)
    if alias is not None:
        return f"rename the field {alias!r} to {field!r} (docs/datasets.md)"
    if field == "category":
        return "every row needs a category (subject area); if your data has none, use one value such as 'all'"
    return _SCHEMA_HINT


def _require(row: dict[str, Any], field: str) -> Any:
    if field not in row:
        fields = ", ".join(str(name) for name in list(row)[:12]) + (", ..." if len(row) > 12 else "")
        raise RowError(field, f"missing (the row has: {fields or 'no fields'})", hint=_missing_hint(field, row))
    return row[field]


def _letter_index(value: Any, field: str) -> RowError | None:
    """The error for an MCQ answer given as a letter where a 0-based index is expected, else None."""
    if isinstance(value, str) and len(value.strip()) == 1 and "A" <= value.strip().upper() <= "Z":
        letter = value.strip().upper()
        return RowError(
            field,
            f"expected a 0-based index, got the letter {value.strip()!r}",
            hint=f"write {ord(letter) - ord('A')} for {letter} ({field} counts from 0: A is 0, B is 1, ...)",
        )
    return None


def _text(row: dict[str, Any], field: str, *, allow_numbers: bool = False) -> str:
    """A required non-empty string (numbers converted with str() when `allow_numbers`)."""
    value = _require(row, field)
    if allow_numbers and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise RowError(field, f"expected a string, got {_show(value)}")
        return str(value)
    if not isinstance(value, str):
        raise RowError(field, f"expected a string, got {_got(value)}")
    if not value.strip():
        raise RowError(field, "empty")
    return value


def _optional_text(row: dict[str, Any], field: str) -> str | None:
    """An optional string; missing, null and "" all mean None."""
    value = row.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RowError(field, f"expected a string or null, got {_got(value)}")
    return value


def _index(value: Any, field: str) -> int:
    """A whole number; 2.0 (from a float column with nulls) counts as 2."""
    letter = _letter_index(value, field)
    if letter is not None:
        raise letter
    if isinstance(value, bool):
        raise RowError(field, f"expected a whole number, got {_show(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise RowError(field, f"expected a whole number, got {_got(value)}")


def _choices(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise RowError(field, f"expected a list of strings or null, got {_got(value)}")
    for position, choice in enumerate(value):
        if not isinstance(choice, str):
            raise RowError(field, f"choice {position} is {_got(choice)}, not a string")
        if not choice.strip():
            raise RowError(field, f"choice {position} is empty")
    if not 2 <= len(value) <= MAX_CHOICES:
        raise RowError(field, f"has {len(value)} choices; an MCQ needs 2 to {MAX_CHOICES}")
    return tuple(value)

