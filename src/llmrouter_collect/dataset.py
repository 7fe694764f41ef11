"""Datasets: load built-in and local datasets as validated Problems, and pick stable subsets of them.

A dataset spec is `math500`, `mmlu_pro` (Hugging Face, cached by `datasets` as usual), `sample` (shipped in
the package) or a path to a `.jsonl`/`.json`/`.parquet`/`.csv`/`.tsv` file. Local files are in the unified schema
(docs/records.md) or, detected by their field names, in the Hugging Face schema of MATH-500 or MMLU-Pro.
Every row of every dataset is checked before anything is returned, and the first bad row is reported with its
file, row and field. docs/datasets.md describes the schema, the mappings and the subset rule.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import hashlib
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson

from .errors import ConfigError, DatasetError
from .records import Problem, choice_letter

MMLU_PRO_PADDING = "N/A"
"""MMLU-Pro pads some option lists to 10 entries with this string; the official scripts drop it."""

MAX_CHOICES = 26
"""Choices are lettered A–Z in prompts, so an MCQ has at most 26 of them."""

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv")

_SCHEMA_HINT = (
    "each row needs unique_id, question, answer_correct and category; MCQs also choices (a list of strings) "
    "and choice_index_correct (0-based) — see docs/datasets.md"
)
_OFFLINE_HINT = (
    "without internet, use a local file: `--dataset path/to/file.jsonl` in the unified schema "
    '(docs/datasets.md), or a copy saved where there is internet: `python -c "import datasets; '
    "datasets.load_dataset('{repo}', split='{split}').to_json('{name}.jsonl')\"`, then "
    "`--dataset {name}.jsonl`"
)


class RowError(DatasetError):
    """One row is invalid: `field` names the offending field; the loader adds file and row."""

    def __init__(self, field: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.field = field


RowMapper = Callable[[dict[str, Any], str], Problem]
"""A function (row, dataset name) → Problem that raises RowError for a bad row."""


# ----------------------------------------------------------------------------------------------------
# Field checks (shared by the unified schema and the Hugging Face mappings)
# ----------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------
# Row mappings
# ----------------------------------------------------------------------------------------------------


def map_unified_row(row: dict[str, Any], dataset: str) -> Problem:
    """Check one row in the unified schema and turn it into a Problem.

    `unique_id` may be an int (converted to str). `question` may be called `problem`, as in results files.
    For an MCQ, `answer_correct` may be left out (it is then the correct choice's text) or be that choice's
    letter (it is then replaced by the text); anything else that differs from the correct choice is an error.

    Args:
        row: the row as read from the file.
        dataset: the dataset name recorded in the Problem.

    Returns:
        The Problem.

    Raises:
        RowError: a field is missing, has the wrong type or contradicts another field.
    """
    if not isinstance(row, dict):
        raise RowError("-", f"expected an object with named fields, got {_type_name(row)}")
    uid = _require(row, "unique_id")
    if isinstance(uid, int) and not isinstance(uid, bool):
        uid = str(uid)
    elif not isinstance(uid, str):
        raise RowError("unique_id", f"expected a string, got {_got(uid)}")
    elif not uid.strip():
        raise RowError("unique_id", "empty")
    question = _text(row, "question" if "question" in row or "problem" not in row else "problem")
    category = _text(row, "category", allow_numbers=True)  # e.g. a difficulty level used as the category
    explanation = _optional_text(row, "explanation_correct")
    raw_choices = row.get("choices")
    raw_index = row.get("choice_index_correct")
    if raw_choices is None:
        if raw_index is not None:
            raise RowError("choice_index_correct", f"is {_show(raw_index)} but choices is null (open question)")
        answer = _text(row, "answer_correct", allow_numbers=True)
        return Problem(uid, question, answer, category, dataset, None, None, explanation)
    choices = _choices(raw_choices, "choices")
    if raw_index is None:
        raise RowError("choice_index_correct", "missing: an MCQ (choices given) needs the 0-based correct index")
    index = _index(raw_index, "choice_index_correct")
    if not 0 <= index < len(choices):
        raise RowError("choice_index_correct", f"{index} is out of range for {len(choices)} choices (0-based)")
    correct = choices[index]
    given = row.get("answer_correct")
    if given is not None and given != "":
        if not isinstance(given, str):
            raise RowError("answer_correct", f"expected a string, got {_got(given)}")
        said = given.strip()
        letter = re.fullmatch(r"\(?([A-Za-z])[).]?", said)
        as_letter = letter is not None and letter.group(1).upper() == choice_letter(index)
        other_text = any(said == choice.strip() for choice in choices)  # "b" may be an option's own text
        if said != correct.strip() and not (as_letter and not other_text):
            raise RowError(
                "answer_correct",
                f"{_show(given)} is neither choices[{index}] ({_show(correct)}) nor its letter {choice_letter(index)}",
                hint="for an MCQ, answer_correct is the text of the correct choice (or leave it out)",
            )
    return Problem(uid, question, correct, category, dataset, choices, index, explanation)


def map_math500_row(row: dict[str, Any], dataset: str = "math500") -> Problem:
    """Map a row of Hugging Face `HuggingFaceH4/MATH-500` to a Problem.

    unique_id as is, question = problem, answer_correct = answer, explanation_correct = solution,
    category = subject; `level` is not kept.

    Raises:
        RowError: a field is missing or has the wrong type.
    """
    return Problem(
        unique_id=_text(row, "unique_id"),
        question=_text(row, "problem"),
        answer_correct=_text(row, "answer", allow_numbers=True),
        category=_text(row, "subject"),
        dataset=dataset,
        explanation_correct=_optional_text(row, "solution"),
    )


def map_mmlu_pro_row(row: dict[str, Any], dataset: str = "mmlu_pro") -> Problem:
    """Map a row of Hugging Face `TIGER-Lab/MMLU-Pro` to a Problem.

    unique_id = `mmlu_pro/test/<question_id>`, choices = options without the "N/A" padding,
    choice_index_correct = the correct option's index in those choices, answer_correct = its text,
    explanation_correct = cot_content (None when empty), category = category.

    The correct option is given by the letter `answer`, as in the official MMLU-Pro evaluation, which grades
    against that letter; `answer_index` is used only when the letter is missing or not a valid letter. The two
    disagree in one test question (3983: "C" vs 1), where the letter is the right one.

    Raises:
        RowError: a field is missing or has the wrong type, or the answer points at padding or out of range.
    """
    question_id = _index(_require(row, "question_id"), "question_id")
    question = _text(row, "question")
    options = _require(row, "options")
    if not isinstance(options, list | tuple):
        raise RowError("options", f"expected a list of strings, got {_got(options)}")
    letter = row.get("answer")
    index: int | None = None
    if isinstance(letter, str) and len(letter.strip()) == 1 and "A" <= letter.strip() <= "Z":
        index = ord(letter.strip()) - ord("A")
        field = "answer"
    else:
        index = _index(_require(row, "answer_index"), "answer_index")
        field = "answer_index"
    if not 0 <= index < len(options):
        raise RowError(field, f"{_show(row.get(field))} is out of range for {len(options)} options")
    if options[index] == MMLU_PRO_PADDING:
        raise RowError(field, f"{_show(row.get(field))} points at an {MMLU_PRO_PADDING!r} padding option")
    kept = [option for option in options if option != MMLU_PRO_PADDING]
    new_index = index - sum(1 for option in options[:index] if option == MMLU_PRO_PADDING)
    choices = _choices(kept, "options")
    return Problem(
        unique_id=f"mmlu_pro/test/{question_id}",
        question=question,
        answer_correct=choices[new_index],
        category=_text(row, "category"),
        dataset=dataset,
        choices=choices,
        choice_index_correct=new_index,
        explanation_correct=_optional_text(row, "cot_content"),
    )


def _detect_mapper(row: Any) -> tuple[RowMapper, str]:
    """Which schema a local file is in, from its first row's fields: (mapper, schema name for messages)."""
    if isinstance(row, dict):
        if "question_id" in row and "options" in row and "choices" not in row:
            return map_mmlu_pro_row, "MMLU-Pro schema"
        if "problem" in row and "answer" in row and "answer_correct" not in row and "question" not in row:
            return map_math500_row, "MATH-500 schema"
    return map_unified_row, ""


# ----------------------------------------------------------------------------------------------------
# Reading rows
# ----------------------------------------------------------------------------------------------------

Rows = Iterator[tuple[str, Any]]
"""(where, row) pairs: where is "line 3" or "row 3" (1-based)."""


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror})") from None
    return data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text (byte {err.start})", hint="save the file as UTF-8") from None


def _json_lines(data: bytes, source: str, hint: str = "a .jsonl file holds one JSON object per line") -> Rows:
    # Split on \n only: str.splitlines() would also split inside rows at \x0c, \x1c or \u2028, which occur in
    # benchmark texts.
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", orjson.loads(line)
        except orjson.JSONDecodeError as err:
            found = _non_json_number(line, err.pos)
            if found:
                hint = _NAN_HINT
            elif line.strip() in (b"{", b"["):
                hint = "each object must be on one line; this file looks pretty-printed (or save it as a .json list)"
            elif line[err.pos :].strip() == b",":
                hint = "remove the comma after the object: JSON lines are not separated by commas"
            raise DatasetError(
                f"{source}, line {number}: not valid JSON ({err.msg}, column {err.colno})"
                + (f": {found} is not a JSON value" if found else ""),
                hint=hint,
            ) from None


_NAN_HINT = "write null for a missing value (Python's json.dumps writes NaN; pandas' to_json writes null)"


def _non_json_number(line: bytes, position: int) -> str | None:
    """`NaN` or `Infinity` at the error position (Python's json module writes them; JSON has no such values)."""
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        if line[position : position + len(token)] == token:
            return token.decode()
    return None


_JSON_HINT = "a .json dataset is a list of objects ([{...}, {...}]) or one object per line"


def _read_jsonl(path: Path) -> Rows:
    data = _read_bytes(path)
    if re.match(rb"\s*\[\s*\{", data):
        return _json_list(path, data)  # a JSON list saved as .jsonl: read it as the list it is
    return _json_lines(data, str(path))


def _read_json(path: Path) -> Rows:
    data = _read_bytes(path)
    if not data.lstrip().startswith(b"["):
        _refuse_wrapped(path, data)
        return _json_lines(data, str(path), _JSON_HINT)
    return _json_list(path, data)


def _json_list(path: Path, data: bytes) -> Rows:
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        found = _non_json_number(data, err.pos)
        raise DatasetError(
            f"{path}, line {err.lineno}: not valid JSON ({err.msg}, column {err.colno})"
            + (f": {found} is not a JSON value" if found else ""),
            hint=_NAN_HINT if found else _JSON_HINT,
        ) from None
    return ((f"row {number}", row) for number, row in enumerate(rows, start=1))


def _refuse_wrapped(path: Path, data: bytes) -> None:
    """A .json file that is one object holding the list of rows (`{"data": [...]}`): say where the rows are."""
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        return  # one object per line, or broken: the JSON-lines reader reports it
    if not isinstance(whole, dict):
        return
    for key, value in whole.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            raise DatasetError(
                f"{path}: one JSON object, with the rows in a list under {key!r}",
                hint=f"a .json dataset is the list itself ([{{...}}, {{...}}]): save the value of {key!r} alone",
            )


def _read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq  # imported here: only Parquet files need it

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a broken file
        raise DatasetError(
            f"{path}: not a readable Parquet file ({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from None
    return ((f"row {number}", row) for number, row in enumerate(rows, start=1))


def _csv_cell_list(value: str) -> Any:
    """A CSV `choices` cell: a JSON list, or a Python list literal as pandas writes it; '' is null."""
    if not value.strip():
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise RowError(
            "choices",
            f"{_show(value)} is not a JSON list",
            hint='write the choices as a JSON list: ["a", "b"]',
        ) from None


def _csv_cell_index(value: str) -> Any:
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)  # "2.0", as pandas writes an int column that has nulls
    except ValueError:
        pass
    letter = _letter_index(text, "choice_index_correct")
    raise letter or RowError("choice_index_correct", f"{_show(value)} is not a whole number")


def _delimiter(text: str) -> str:
    """`,`, or `;` / tab when the header line has no comma but those (as spreadsheets in many locales save)."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    return max((";", "\t"), key=header.count) if (";" in header or "\t" in header) else ","


def _read_csv(path: Path) -> Rows:
    text = _read_text(path)
    # skipinitialspace: a hand-written "unique_id, question, ..." header (and quoted cells after ", ") still reads.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text), skipinitialspace=True)
    header = reader.fieldnames or []
    required = ["unique_id", "category"]
    if "question" not in header and "problem" not in header:
        required.append("question")
    if not ("choices" in header or "answer_correct" in header):
        required.append("answer_correct")
    for field in required:
        if field not in header:
            raise DatasetError(
                f"{path}: no '{field}' column (header: {', '.join(header) or 'empty'})",
                hint=_missing_hint(field, header),
            )

    def rows() -> Rows:
        for number, raw in enumerate(reader, start=1):
            where = f"row {number}"
            if None in raw:
                extra = raw.pop(None)
                yield where, _CsvRowError(
                    "-",
                    f"has {len(extra)} more cell{'s' if len(extra) > 1 else ''} than the header",
                    hint='a cell that contains a comma must be in double quotes: "Paris, France"',
                )
                continue
            row: dict[str, Any] = dict(raw)
            try:
                if "choices" in row:
                    row["choices"] = _csv_cell_list(row["choices"] or "")
                if "choice_index_correct" in row:
                    row["choice_index_correct"] = _csv_cell_index(row["choice_index_correct"] or "")
            except RowError as err:
                yield where, _CsvRowError(err.field, err.message, err.hint)
                continue
            yield where, row

    return rows()


class _CsvRowError(RowError):
    """A CSV cell that cannot be converted; passed through the row stream to be reported with its row."""


_READERS: dict[str, Callable[[Path], Rows]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".parquet": _read_parquet,
    ".csv": _read_csv,
    ".tsv": _read_csv,  # the separator is found from the header line
}


# ----------------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HubDataset:
    name: str
    label: str
    repo: str
    split: str
    mapper: RowMapper


_HUB = {
    "math500": _HubDataset("math500", "MATH_500", "HuggingFaceH4/MATH-500", "test", map_math500_row),
    "mmlu_pro": _HubDataset("mmlu_pro", "MMLU_Pro", "TIGER-Lab/MMLU-Pro", "test", map_mmlu_pro_row),
}
SAMPLE = "sample"
BUILTIN_NAMES = (*_HUB, SAMPLE)
_ALIASES = {"math_500": "math500", "mmlupro": "mmlu_pro"}


def _builtin_name(spec: str) -> str | None:
    key = spec.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    return key if key in BUILTIN_NAMES else None


def _file_label(path: Path) -> str:
    """A dataset file's name for labels: its stem, without the `.graded` of a graded results file (so results
    of a run on `x.graded.jsonl` are not named like a graded file, which `collect extract` skips)."""
    stem = path.stem
    stem = stem[: -len(".graded")] if stem.endswith(".graded") else stem
    return _sanitise(stem)


def _sanitise(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.") or "dataset"


def _split_specs(specs: Iterable[str]) -> list[str]:
    """Strip, split comma-separated items (unless the item is an existing file), and drop repeats."""
    out: list[str] = []
    for spec in specs:
        parts = [spec] if "," not in spec or Path(spec.strip()).is_file() else spec.split(",")
        for part in parts:
            part = part.strip()
            key = _builtin_name(part) or part
            if part and key not in out:
                out.append(key)
    return out


def dataset_label(specs: list[str]) -> str:
    """A name for the datasets, used in default output file names.

    `["math500", "mmlu_pro"]` → `MATH_500_MMLU_Pro`; `sample` → `sample`; a path → its stem, with characters
    other than letters, digits, `.`, `_` and `-` replaced by `_`. Several specs are joined with `_`.
    """
    labels = []
    for spec in _split_specs(specs):
        name = _builtin_name(spec)
        if name in _HUB:
            labels.append(_HUB[name].label)
        elif name == SAMPLE:
            labels.append(SAMPLE)
        else:
            labels.append(_file_label(Path(spec)))
    return "_".join(labels) or "dataset"


def _check_rows(
    rows: Iterable[tuple[str, Any]],
    source: str,
    dataset: str,
    seen: dict[str, str],
    mapper: RowMapper | None = None,
) -> list[Problem]:
    """Map and validate every row; raise one DatasetError for the first bad row (counting the others)."""
    problems: list[Problem] = []
    first: tuple[str, str] | None = None
    bad = 0
    schema = ""
    for where, row in rows:
        if mapper is None:
            mapper, schema = _detect_mapper(row)
        label = f"{source} ({schema})" if schema else source
        try:
            if isinstance(row, RowError):
                raise row
            if not isinstance(row, dict):
                raise RowError("-", f"expected an object with named fields, got {_got(row)}")
            problem = mapper(row, dataset)
            if problem.unique_id in seen:
                raise RowError(
                    "unique_id",
                    f"{problem.unique_id!r} is already used ({seen[problem.unique_id]})",
                    hint="every problem needs its own unique_id, also across datasets given together",
                )
        except RowError as err:
            bad += 1
            if first is None:
                where_field = where if err.field == "-" else f"{where}, field '{err.field}'"
                first = (f"{label}, {where_field}: {err.message}", err.hint or _SCHEMA_HINT)
            continue
        seen[problem.unique_id] = f"{source}, {where}"
        problems.append(problem)
    if first is not None:
        message, hint = first
        more = f" (and {bad - 1} more invalid row{'s' if bad > 2 else ''})" if bad > 1 else ""
        raise DatasetError(message + more, hint)
    if not problems:
        raise DatasetError(f"{source}: no problems in it", hint=_SCHEMA_HINT)
    return problems


def _load_local(spec: str, seen: dict[str, str]) -> list[Problem]:
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetError(
            f"dataset {spec!r}: no such file, and not a built-in dataset ({', '.join(BUILTIN_NAMES)})",
            hint="pass a built-in name or the path of a .jsonl, .json, .parquet or .csv file",
        )
    if path.is_dir():
        raise DatasetError(f"dataset {spec!r} is a directory", hint="pass the dataset file itself")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(
            f"dataset {spec!r}: unsupported file type {path.suffix or '(no extension)'!r}",
            hint=f"use one of {', '.join(LOCAL_SUFFIXES)} (docs/datasets.md)",
        )
    return _check_rows(reader(path), str(spec), _file_label(path), seen)


def _load_sample(seen: dict[str, str]) -> list[Problem]:
    data = (resources.files("llmrouter_collect") / "data" / "sample.jsonl").read_bytes()
    return _check_rows(_json_lines(data, "sample"), "sample", SAMPLE, seen, map_unified_row)


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Hide the Hub clients' warnings (one per retried request when offline); a failure becomes one error."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _hub_rows(hub: _HubDataset) -> list[dict[str, Any]]:
    """All rows of a Hugging Face dataset split, from the `datasets` cache or the Hub."""
    try:
        import datasets  # type: ignore[import-untyped]  # imported here: slow, and only built-ins need it

        with _quiet_hub_logs():
            data = datasets.load_dataset(hub.repo, split=hub.split)
        rows: list[dict[str, Any]] = data.to_list()
        return rows
    except Exception as err:  # `datasets` raises many types (ConnectionError, FileNotFoundError, ...)
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise DatasetError(
            f"cannot load {hub.name} ({hub.repo}, split {hub.split}) from the Hugging Face Hub or its cache: "
            f"{type(err).__name__}: {first_line}",
            hint=_OFFLINE_HINT.format(repo=hub.repo, split=hub.split, name=hub.name),
        ) from None


def _load_hub(hub: _HubDataset, seen: dict[str, str]) -> list[Problem]:
    rows = _hub_rows(hub)
    source = f"{hub.name} ({hub.repo}, {hub.split})"
    return _check_rows(((f"row {n}", row) for n, row in enumerate(rows, start=1)), source, hub.name, seen, hub.mapper)


def load_problems(specs: list[str], num_problems: int | Literal["all"] = "all") -> list[Problem]:
    """Load, validate and combine datasets, then pick `num_problems` of them with `select_subset`.

    Nothing is returned until every row of every dataset is valid.

    Args:
        specs: `math500`, `mmlu_pro`, `sample` or file paths (items may also be comma-separated lists).
            A spec given twice is loaded once.
        num_problems: how many problems, or "all".

    Returns:
        The problems, datasets in the order given, rows in file order.

    Raises:
        DatasetError: a dataset cannot be found or loaded, or a row is invalid (file, row and field named).
        ConfigError: `num_problems` is not a positive number or "all".
    """
    if num_problems != "all" and (
        isinstance(num_problems, bool) or not isinstance(num_problems, int) or num_problems < 1
    ):
        raise ConfigError(
            f"num_problems is {num_problems!r}", hint="pass --num-problems N (N ≥ 1) or --num-problems all"
        )
    names = _split_specs(specs)
    if not names:
        raise DatasetError(
            "no dataset given", hint=f"pass --dataset with one of {', '.join(BUILTIN_NAMES)} or a file path"
        )
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    for spec in names:
        name = _builtin_name(spec)
        if name in _HUB:
            problems.extend(_load_hub(_HUB[name], seen))
        elif name == SAMPLE:
            problems.extend(_load_sample(seen))
        else:
            problems.extend(_load_local(spec, seen))
    if num_problems == "all":
        return problems
    return select_subset(problems, num_problems)


# ----------------------------------------------------------------------------------------------------
# Subsets and fingerprints
# ----------------------------------------------------------------------------------------------------


def _rank(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _interleave(sequences: list[list[int]]) -> list[int]:
    """Round-robin: the first of each sequence, then the second of each, ...; exhausted ones are skipped."""
    out: list[int] = []
    longest = max((len(sequence) for sequence in sequences), default=0)
    for position in range(longest):
        out.extend(sequence[position] for sequence in sequences if position < len(sequence))
    return out


def selection_order(problems: list[Problem]) -> list[int]:
    """Indices of `problems` in the order `select_subset` takes them (a subset of n is the first n).

    Round-robin over datasets; within a dataset, round-robin over categories; within a category, problems
    by SHA-256 of unique_id. Datasets and categories are ordered by SHA-256 of their names. The order depends
    only on the problems, not on where they are in the list.
    """
    groups: dict[str, dict[str, list[int]]] = {}
    for index, problem in enumerate(problems):
        groups.setdefault(problem.dataset, {}).setdefault(problem.category, []).append(index)
    per_dataset: list[list[int]] = []
    for dataset in sorted(groups, key=_rank):
        categories = groups[dataset]
        per_category = [
            sorted(categories[category], key=lambda i: (_rank(problems[i].unique_id), i))
            for category in sorted(categories, key=_rank)
        ]
        per_dataset.append(_interleave(per_category))
    return _interleave(per_dataset)


def select_subset(problems: list[Problem], n: int) -> list[Problem]:
    """A deterministic subset of `n` problems, spread over datasets and categories, in their original order.

    The same problems give the same subset on any machine and in any run (SHA-256 of unique_id, not `hash()`),
    and subsets are nested: the subset for n is contained in the subset for n + 1, so a larger
    `--num-problems` only adds problems. n ≥ len(problems) gives all of them.
    """
    if n >= len(problems):
        return list(problems)
    if n <= 0:
        return []
    chosen = set(selection_order(problems)[:n])
    return [problem for index, problem in enumerate(problems) if index in chosen]


def dataset_fingerprint(problems: list[Problem]) -> str:
    """`sha256:<hex>` of the problems' ids, questions, choices and answers (independent of their order)."""
    digest = hashlib.sha256()
    for problem in sorted(problems, key=lambda p: p.unique_id):
        digest.update(
            orjson.dumps(
                [
                    problem.unique_id,
                    problem.question,
                    list(problem.choices) if problem.choices is not None else None,
                    problem.choice_index_correct,
                    problem.answer_correct,
                ]
            )
        )
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
