"""Declarative column mappings: which columns of a dataset hold the question, the options, the answer, the id
and the category, and how the answer is written. The catalogue's benchmarks and `hf:` datasets with a
`--dataset-map` are both read through `ColumnMap.mapper`.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from ..errors import DatasetError
from ..records import AnswerKind, Problem
from ._fields import RowError, RowMapper, _choices, _got, _show

AnswerFormat = Literal["text", "index", "index1", "letter", "label", "first", "number", "after_hashes"]
"""How the answer column is written.

- `text`: the answer itself (open-ended), or the correct option's text (MCQ).
- `index`: 0-based option index (an int, or a string such as "2"); `index1`: 1-based ("1"/"2" in WinoGrande).
- `letter`: A, B, ... (also "(B)", "b").
- `label`: one of the labels in `choice_labels` (ARC: "A"–"E" or "1"–"4"), found by `labels.index(answer)`.
- `first`: no answer column; the first option column is the correct one (GPQA), shuffled by `shuffle_seed`.
- `number`: a number (open-ended, `number` kind): thousands separators and zero padding are dropped.
- `after_hashes`: the number after the last `####` of a worked solution (GSM8K); the whole is the explanation.
"""

ANSWER_FORMATS: tuple[str, ...] = get_args(AnswerFormat)
KINDS: tuple[str, ...] = get_args(AnswerKind)

_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class ColumnMap:
    """How the columns of a dataset become the unified fields (docs/datasets.md, "Column mappings").

    A column is named as in the data; `a.b` reads key `b` of the object in column `a` (ARC's `choices.text`).
    `question` may also be a template of columns, `"{activity_label}: {ctx}"`.
    """

    question: str
    answer: str | None = None
    answer_format: AnswerFormat = "text"
    choices: tuple[str, ...] = ()
    """One column holding the list of options, or several columns holding one option each."""
    choice_labels: str | None = None
    """The column of the options' own labels, for answer_format `label`."""
    shuffle_seed: int | None = None
    """Shuffle the options by a SHA-256 of (seed, problem id): the same order on every machine and run."""
    id: str | None = None
    """The id column; None: a hash of the question and options (repeats get `-2`, `-3`, ...)."""
    id_prefix: str = ""
    category: str | None = None
    category_value: str | None = None
    """The category of every row, when there is no category column."""
    explanation: str | None = None
    kind: AnswerKind | None = None
    """None: `mcq` with choices, else `math`."""
    prompt: str | None = None
    """The benchmark's own prompt template (a key of prompts.BENCHMARK_TEMPLATES)."""
    strip_choices: bool = False

    @property
    def answer_kind(self) -> AnswerKind:
        """The kind of problems this mapping gives."""
        if self.kind is not None:
            return self.kind
        return "mcq" if self.choices else "math"

    def columns(self) -> list[str]:
        """The top-level columns the mapping reads."""
        named = [*_template_columns(self.question), self.answer, *self.choices, self.choice_labels, self.id]
        named += [self.category, self.explanation]
        return list(dict.fromkeys(name.split(".", 1)[0] for name in named if name))

    def check_columns(self, present: Iterable[str], source: str) -> None:
        """Raise a DatasetError naming every mapped column the data lacks, and the columns it has."""
        have = [str(name) for name in present]
        missing = [name for name in self.columns() if name not in have]
        if missing:
            raise DatasetError(
                f"{source}: the column mapping names {', '.join(repr(m) for m in missing)}, which the data "
                f"does not have; its columns are: {', '.join(have) or 'none'}",
                hint="fix the column names in --dataset-map (docs/datasets.md, \"Column mappings\")",
            )

    def mapper(self) -> RowMapper:
        """A row mapper for one pass over a dataset (it counts repeated hashed ids, so use a new one per load)."""
        counts: dict[str, int] = {}

        def map_row(row: dict[str, Any], dataset: str) -> Problem:
            return _map(self, row, dataset, counts)

        return map_row


def column_map_from_dict(data: dict[str, Any], source: str) -> ColumnMap:
    """A ColumnMap from a TOML table (`--dataset-map`), with errors that name the key and the allowed values.

    Raises:
        DatasetError: an unknown key, a wrong type, or a value outside its choices.
    """
    allowed = {item.name for item in fields(ColumnMap)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise DatasetError(
            f"{source}: unknown key(s) {', '.join(unknown)}", hint=f"allowed keys: {', '.join(sorted(allowed))}"
        )
    if not isinstance(data.get("question"), str):
        raise DatasetError(f"{source}: `question` (the question's column) is required and must be a string")
    values = dict(data)
    choices = values.get("choices", ())
    if isinstance(choices, str):
        choices = (choices,)
    if not isinstance(choices, list | tuple) or not all(isinstance(item, str) for item in choices):
        raise DatasetError(f"{source}: `choices` must be a column name or a list of column names")
    values["choices"] = tuple(choices)
    for key in ("answer", "choice_labels", "id", "id_prefix", "category", "category_value", "explanation"):
        if key in values and not isinstance(values[key], str):
            raise DatasetError(f"{source}: `{key}` must be a string, got {_got(values[key])}")
    if values.get("answer_format", "text") not in ANSWER_FORMATS:
        raise DatasetError(
            f"{source}: answer_format {values['answer_format']!r} is not one of {', '.join(ANSWER_FORMATS)}"
        )
    if values.get("kind") is not None and values["kind"] not in KINDS:
        raise DatasetError(f"{source}: kind {values['kind']!r} is not one of {', '.join(KINDS)}")
    seed = values.get("shuffle_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DatasetError(f"{source}: `shuffle_seed` must be a whole number")
    column_map = ColumnMap(**values)
    if column_map.answer is None and column_map.answer_format != "first":
        raise DatasetError(f"{source}: `answer` (the answer's column) is required unless answer_format = \"first\"")
    if column_map.answer_format in ("index", "index1", "letter", "label", "first") and not column_map.choices:
        raise DatasetError(f"{source}: answer_format {column_map.answer_format!r} needs `choices` (the options)")
    if column_map.answer_format == "label" and not column_map.choice_labels:
        raise DatasetError(f"{source}: answer_format \"label\" needs `choice_labels` (the options' labels column)")
    if column_map.kind == "mcq" and not column_map.choices:
        raise DatasetError(f"{source}: kind \"mcq\" needs `choices`")
    return column_map


# --- mapping one row ----------------------------------------------------------------------------------------


def _template_columns(question: str) -> list[str]:
    if "{" not in question:
        return [question]
    return [name for _, name, _, _ in string.Formatter().parse(question) if name]


def _get(row: dict[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            have = ", ".join(str(name) for name in value) if isinstance(value, dict) else _got(value)
            raise RowError(column, f"no such column (the row has: {have})", hint="fix the column mapping")
        value = value[part]
    return value


def _text_of(row: dict[str, Any], column: str, *, numbers: bool = True) -> str:
    value = _get(row, column)
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RowError(column, f"expected a string, got {_got(value)}")
    if not value.strip():
        raise RowError(column, "empty")
    return value


def _question(row: dict[str, Any], template: str) -> str:
    if "{" not in template:
        return _text_of(row, template, numbers=False)
    values = {name: _text_of(row, name) for name in _template_columns(template)}
    return template.format(**values)


def _whole(value: Any, column: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise RowError(column, f"expected a whole number, got {_got(value)}")


def canonical_number(text: str) -> str | None:
    """`1,450,000` → `1450000`, `033` → `33`, `-2.50` → `-2.5`; None when the text is not a plain number."""
    clean = text.strip().lstrip("$").strip()
    if not _NUMBER.fullmatch(clean):
        return None
    if "," in clean and not re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", clean):
        return None  # "1,5" is not a thousands-separated number
    clean = clean.replace(",", "").lstrip("+")
    sign = "-" if clean.startswith("-") else ""
    whole, _, fraction = clean.lstrip("-").partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    number = whole + (f".{fraction}" if fraction else "")
    return ("" if number == "0" else sign) + number


def _number_answer(text: str, column: str) -> str:
    number = canonical_number(text)
    if number is None:
        raise RowError(column, f"{_show(text)} is not a number (this dataset's answers are numbers)")
    return number


def _options(cm: ColumnMap, row: dict[str, Any]) -> list[Any]:
    if len(cm.choices) == 1:
        raw = _get(row, cm.choices[0])
        if not isinstance(raw, list | tuple):
            raise RowError(cm.choices[0], f"expected a list of options, got {_got(raw)}")
        options = list(raw)
    else:
        options = [_get(row, column) for column in cm.choices]
    if cm.strip_choices:
        options = [option.strip() if isinstance(option, str) else option for option in options]
    return options


def _correct_index(cm: ColumnMap, row: dict[str, Any], options: list[Any]) -> int:
    if cm.answer_format == "first" or cm.answer is None:
        return 0
    column = cm.answer
    value = _get(row, column)
    if cm.answer_format == "index":
        index = _whole(value, column)
    elif cm.answer_format == "index1":
        index = _whole(value, column) - 1
    elif cm.answer_format == "letter":
        match = re.fullmatch(r"\s*\(?([A-Za-z])[).]?\s*", value) if isinstance(value, str) else None
        if match is None:
            raise RowError(column, f"expected a letter, got {_got(value)}")
        index = ord(match.group(1).upper()) - ord("A")
    elif cm.answer_format == "label":
        labels = _get(row, cm.choice_labels or "")
        if not isinstance(labels, list | tuple) or len(labels) != len(options):
            raise RowError(cm.choice_labels or "-", f"expected one label per option, got {_got(labels)}")
        key = str(value).strip()
        names = [str(label).strip() for label in labels]
        if key not in names:
            raise RowError(column, f"{_show(value)} is not one of the labels {', '.join(names)}")
        index = names.index(key)
    else:  # text: the correct option's text
        said = str(value).strip()
        hits = [i for i, option in enumerate(options) if isinstance(option, str) and option.strip() == said]
        if len(hits) != 1:
            raise RowError(column, f"{_show(value)} is not the text of exactly one option")
        index = hits[0]
    if not 0 <= index < len(options):
        raise RowError(column, f"{_show(value)} is out of range for {len(options)} options")
    return index


def _shuffled(options: list[Any], index: int, seed: int, uid: str) -> tuple[list[Any], int]:
    """The options in an order fixed by SHA-256 of (seed, id, original position), and the new correct index."""
    order = sorted(
        range(len(options)), key=lambda i: hashlib.sha256(f"{seed}\x00{uid}\x00{i}".encode()).digest()
    )
    return [options[i] for i in order], order.index(index)


def _map(cm: ColumnMap, row: dict[str, Any], dataset: str, counts: dict[str, int]) -> Problem:
    question = _question(row, cm.question)
    options = _options(cm, row) if cm.choices else None
    if cm.id is not None:
        raw_id = _get(row, cm.id)
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
            raise RowError(cm.id, f"expected a non-empty string or integer, got {_got(raw_id)}")
        uid = f"{cm.id_prefix}{str(raw_id).strip()}"
    else:
        digest = hashlib.sha256(question.encode())
        for option in options or ():
            digest.update(b"\x00" + str(option).encode())
        base = f"{cm.id_prefix}{digest.hexdigest()[:12]}"
        counts[base] = counts.get(base, 0) + 1
        uid = base if counts[base] == 1 else f"{base}-{counts[base]}"  # a repeated question (MMLU has 105)
    category = _text_of(row, cm.category) if cm.category is not None else cm.category_value or dataset
    explanation: str | None = None
    if cm.explanation is not None:
        value = _get(row, cm.explanation)
        explanation = value.strip() if isinstance(value, str) and value.strip() else None
    kind = cm.answer_kind
    if options is not None:
        index = _correct_index(cm, row, options)
        if cm.shuffle_seed is not None:
            options, index = _shuffled(options, index, cm.shuffle_seed, uid)
        field = cm.choices[0] if len(cm.choices) == 1 else "choices"
        choices = _choices(options, field)
        return Problem(uid, question, choices[index], category, dataset, choices, index, explanation, kind, cm.prompt)
    column = cm.answer or "-"
    if cm.answer_format == "after_hashes":
        solution = _text_of(row, column)
        if "####" not in solution:
            raise RowError(column, "has no '#### N' final line")
        answer = _number_answer(solution.rsplit("####", 1)[1], column)
        explanation = explanation or solution
    elif cm.answer_format == "number" or kind == "number":
        answer = _number_answer(_text_of(row, column), column)
    else:
        answer = _text_of(row, column)
    return Problem(uid, question, answer, category, dataset, None, None, explanation, kind, cm.prompt)
