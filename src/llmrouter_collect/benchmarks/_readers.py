"""Reading rows from local files: JSON lines, JSON lists, Parquet, CSV/TSV (format by extension)."""

from __future__ import annotations

import ast
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import DatasetError
from ._catalogue import detect_benchmark
from ._fields import RowError, _letter_index, _missing_hint, _show

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv")

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


def _json_lines(
    data: bytes | Iterable[bytes], source: str, hint: str = "a .jsonl file holds one JSON object per line"
) -> Rows:
    """Rows of JSON lines, from the whole text or from its lines (as a binary file yields them)."""
    # Split on \n only: str.splitlines() would also split inside rows at \x0c, \x1c or \u2028, which occur in
    # benchmark texts (a binary file splits on \n only too).
    lines = data.split(b"\n") if isinstance(data, bytes) else data
    for number, line in enumerate(lines, start=1):
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


_HEAD_BYTES = 1 << 16
"""How much of a .jsonl file is read to tell a JSON list saved as .jsonl from JSON lines."""


def _read_jsonl(path: Path) -> Rows:
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES).removeprefix(b"\xef\xbb\xbf")
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror})") from None
    if re.match(rb"\s*\[\s*\{", head):
        return _json_list(path, _read_bytes(path))  # a JSON list saved as .jsonl: read it as the list it is
    return _json_lines(_file_lines(path), str(path))


def _file_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file (split on \n only), streamed: memory holds one line, not the file (a million rows
    of a benchmark are a gigabyte); a UTF-8 byte order mark is dropped."""
    try:
        with path.open("rb") as handle:
            first = True
            for line in handle:
                yield line.removeprefix(b"\xef\xbb\xbf") if first else line
                first = False
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror})") from None


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
    benchmark = detect_benchmark(dict.fromkeys(header))
    if benchmark is not None:  # a copy of a catalogue benchmark in its Hub schema, as written by a program:
        # cells are kept exactly (MMLU has questions that start with a space)
        exact = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
        return _benchmark_csv_rows(exact, benchmark.list_cells)
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


def _benchmark_csv_rows(reader: csv.DictReader[str], list_cells: tuple[str, ...]) -> Rows:
    """Rows of a CSV copy of a Hub benchmark: its list and object cells (MMLU's `choices`, ARC's `choices`) are
    read as JSON or as the Python literals pandas writes; every other cell stays text."""
    for number, raw in enumerate(reader, start=1):
        row: dict[str, Any] = {key: value for key, value in raw.items() if key is not None}
        try:
            for column in list_cells:
                if column in row:
                    row[column] = _csv_cell_value(row[column] or "", column)
        except RowError as err:
            yield f"row {number}", _CsvRowError(err.field, err.message, err.hint)
            continue
        yield f"row {number}", row


def _csv_cell_value(value: str, column: str) -> Any:
    try:
        return _csv_cell_list(value)
    except RowError:
        raise RowError(column, f"{_show(value)} is not a JSON list or object") from None


class _CsvRowError(RowError):
    """A CSV cell that cannot be converted; passed through the row stream to be reported with its row."""


_READERS: dict[str, Callable[[Path], Rows]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".parquet": _read_parquet,
    ".csv": _read_csv,
    ".tsv": _read_csv,  # the separator is found from the header line
}

