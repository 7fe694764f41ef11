"""Router training exports: a long table (a row per response), a wide matrix (problem × model), splits.

Both are written as Parquet and JSONL (the wide matrix also as CSV), loadable as they are by pandas and by
`datasets.load_dataset("parquet", data_files=...)`. Files are written under temporary names and renamed at
the end, so an interrupted export never leaves a half file under the final name.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import StoreError
from ..fileio import atomic_path
from .loader import Collection
from .metrics import assign_split, split_warning
from .prices import Price

LONG_NAME = "long"
WIDE_NAME = "wide"
_BATCH_ROWS = 50_000

LONG_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("unique_id", pa.string()),
        ("dataset", pa.string()),
        ("category", pa.string()),
        ("split", pa.string()),
        ("sample_index", pa.int32()),
        ("outcome", pa.string()),
        ("is_correct", pa.bool_()),
        ("extracted_answer", pa.string()),
        ("extraction_rule", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("latency_s", pa.float64()),
        ("cost_usd", pa.float64()),
        ("error_type", pa.string()),
    ]
)
"""Columns of the long table, one row per (model, unique_id, sample_index)."""

WIDE_SUFFIXES = ("__k", "__correct", "__answered", "__errors", "__completion_tokens", "__cost")
"""Per-model columns of the wide matrix beside `<model>` (the fraction correct, c/k)."""


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class Exporter:
    """Receives records while the report reads them (a RecordSink) and writes the export files at the end."""

    def __init__(self, directory: Path, prices: Mapping[str, Price], *, test_fraction: float = 0.2) -> None:
        self.directory = directory
        self.prices = dict(prices)
        self.test_fraction = test_fraction
        self._columns: dict[str, list[Any]] = {name: [] for name in LONG_SCHEMA.names}
        self._spool_offsets: dict[str, tuple[int, int]] = {}
        self._outputs = contextlib.ExitStack()  # one atomic_path per file: renamed on close, removed on abort
        self._written: list[Path] = []
        self.split_warning: str | None = None
        """Set by `finish` when a side of the train/test split is too small to mean anything."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._long_parquet_tmp = self._temp(f"{LONG_NAME}.parquet")
            self._long_jsonl_tmp = self._temp(f"{LONG_NAME}.jsonl")
            self._parquet = pq.ParquetWriter(str(self._long_parquet_tmp), LONG_SCHEMA, compression="zstd")
            self._jsonl: IO[bytes] = self._long_jsonl_tmp.open("wb")
            # Problem texts go to a spool file, not memory: 100k problems would otherwise be held to the end.
            self._spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed in abort)
        except OSError as err:
            self.abort()
            raise StoreError(f"cannot write to --export {directory}: {err.strerror}") from None

    def _temp(self, name: str) -> Path:
        """A fresh temp file that replaces `directory/name` when the export finishes (not before)."""
        final = self.directory / name
        self._written.append(final)
        return self._outputs.enter_context(atomic_path(final))

    def add_record(self, model: str, record: dict[str, Any]) -> None:
        """Add one graded record's responses to the long table and remember its problem text."""
        uid = str(record["unique_id"])
        split = assign_split(uid, self.test_fraction)
        price = self.prices.get(model)
        columns = self._columns
        for response in record["responses"]:
            usage = response.get("usage") or {}
            prompt = _tokens(usage.get("prompt_tokens"))
            completion = _tokens(usage.get("completion_tokens"))
            latency = response.get("latency_s")
            error = response.get("error")
            columns["model"].append(model)
            columns["unique_id"].append(uid)
            columns["dataset"].append(_text(record.get("dataset")))
            columns["category"].append(_text(record.get("category")))
            columns["split"].append(split)
            columns["sample_index"].append(response.get("index"))
            columns["outcome"].append(response["outcome"])
            columns["is_correct"].append(response["outcome"] == "correct")
            columns["extracted_answer"].append(_text(response.get("extracted_answer")))
            columns["extraction_rule"].append(_text(response.get("extraction_rule")))
            columns["finish_reason"].append(_text(response.get("finish_reason")))
            columns["prompt_tokens"].append(prompt)
            columns["completion_tokens"].append(completion)
            columns["reasoning_tokens"].append(_tokens(usage.get("reasoning_tokens")))
            columns["latency_s"].append(
                float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else None
            )
            columns["cost_usd"].append(price.cost(prompt or 0, completion or 0) if price is not None else None)
            columns["error_type"].append(_text(error.get("type")) if isinstance(error, dict) else None)
        if uid not in self._spool_offsets:
            data = orjson.dumps(
                {
                    "problem": record.get("problem"),
                    "answer_correct": _text(record.get("answer_correct")),
                    "is_mcq": bool(record.get("is_mcq")),
                    "choices": record.get("choices"),
                }
            )
            self._spool.seek(0, os.SEEK_END)
            self._spool_offsets[uid] = (self._spool.tell(), len(data))
            self._spool.write(data)
        if len(columns["model"]) >= _BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._columns["model"]:
            return
        self._parquet.write_table(pa.table(self._columns, schema=LONG_SCHEMA))
        names = LONG_SCHEMA.names
        self._jsonl.write(
            b"".join(
                orjson.dumps(dict(zip(names, values, strict=True))) + b"\n"
                for values in zip(*self._columns.values(), strict=True)
            )
        )
        self._columns = {name: [] for name in LONG_SCHEMA.names}

    def finish(self, collection: Collection) -> list[Path]:
        """Write the rest of the long table and the wide matrix; rename every file into place.

        Returns:
            The files written.
        """
        try:
            self._flush()
            self._parquet.close()
            self._jsonl.close()
            wide = self._wide_table(collection)
            splits = wide.column("split").to_pylist()
            self.split_warning = split_warning(splits.count("train"), splits.count("test"), self.test_fraction)
            wide_parquet = self._temp(f"{WIDE_NAME}.parquet")
            pq.write_table(wide, str(wide_parquet), compression="zstd")
            wide_jsonl = self._temp(f"{WIDE_NAME}.jsonl")
            with wide_jsonl.open("wb") as handle:
                for row in _rows(wide):
                    handle.write(orjson.dumps(row) + b"\n")
            wide_csv = self._temp(f"{WIDE_NAME}.csv")
            _write_csv(wide, wide_csv)
            self._spool.close()
            outputs, self._outputs = self._outputs, contextlib.ExitStack()
            outputs.close()  # every file fsynced and renamed into place, the directory fsynced
            return list(self._written)
        except OSError as err:
            raise StoreError(
                f"cannot write the export in {self.directory}: {err.strerror}",
                hint="earlier export files there are left as they were; free space and rerun",
            ) from None
        finally:
            self.abort()

    def abort(self) -> None:
        """Close everything and remove the temp files not yet renamed (after an error, or after finish)."""
        for name in ("_parquet", "_jsonl", "_spool"):
            handle = getattr(self, name, None)
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        outputs, self._outputs = self._outputs, contextlib.ExitStack()
        with contextlib.suppress(BaseException):
            outputs.__exit__(_Aborted, _Aborted(), None)  # each atomic_path removes its temp file

    def _problem(self, uid: str) -> dict[str, Any]:
        offset, length = self._spool_offsets[uid]
        self._spool.seek(offset)
        loaded: dict[str, Any] = orjson.loads(self._spool.read(length))
        return loaded

    def _wide_table(self, collection: Collection) -> pa.Table:
        names = sorted(collection.models)
        uids = sorted(self._spool_offsets)
        columns: dict[str, list[Any]] = {
            key: []
            for key in (
                "unique_id",
                "dataset",
                "category",
                "split",
                "is_mcq",
                "problem",
                "choices",
                "answer_correct",
            )
        }
        per_model: dict[str, list[Any]] = {}
        for name in names:
            per_model[name] = []
            for suffix in WIDE_SUFFIXES:
                per_model[name + suffix] = []
        for uid in uids:
            info = collection.problems.get(uid)
            problem = self._problem(uid)
            columns["unique_id"].append(uid)
            columns["dataset"].append(info.dataset if info else None)
            columns["category"].append(info.category if info else None)
            columns["split"].append(assign_split(uid, self.test_fraction))
            columns["is_mcq"].append(problem["is_mcq"])
            columns["problem"].append(_text(problem["problem"]))
            choices = problem["choices"]
            columns["choices"].append([str(c) for c in choices] if isinstance(choices, list) else None)
            columns["answer_correct"].append(problem["answer_correct"])
            for name in names:
                result = collection.models[name].problems.get(uid)
                price = self.prices.get(name)
                if result is None or result.samples == 0:
                    for key in (name, *(name + suffix for suffix in WIDE_SUFFIXES)):
                        per_model[key].append(None)
                    continue
                per_model[name].append(result.correct / result.samples)
                per_model[name + "__k"].append(result.samples)
                per_model[name + "__correct"].append(result.correct)
                per_model[name + "__answered"].append(result.answered)
                per_model[name + "__errors"].append(result.errors)
                per_model[name + "__completion_tokens"].append(
                    result.completion_tokens / result.with_usage if result.with_usage else None
                )
                per_model[name + "__cost"].append(
                    price.cost(result.prompt_tokens, result.completion_tokens) / result.samples
                    if price is not None
                    else None
                )
        fields = [
            ("unique_id", pa.string()),
            ("dataset", pa.string()),
            ("category", pa.string()),
            ("split", pa.string()),
            ("is_mcq", pa.bool_()),
            ("problem", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("answer_correct", pa.string()),
        ]
        for name in names:
            fields += [
                (name, pa.float64()),
                (name + "__k", pa.int32()),
                (name + "__correct", pa.int32()),
                (name + "__answered", pa.int32()),
                (name + "__errors", pa.int32()),
                (name + "__completion_tokens", pa.float64()),
                (name + "__cost", pa.float64()),
            ]
        return pa.table({**columns, **per_model}, schema=pa.schema(fields))


class _Aborted(Exception):
    """Thrown into the pending atomic writes so that they remove their temp files instead of renaming them."""


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """The table's rows as dicts, a batch at a time (never the whole table as Python objects)."""
    for batch in table.to_batches(max_chunksize=10_000):
        yield from batch.to_pylist()


def _write_csv(table: pa.Table, path: Path) -> None:
    """CSV for spreadsheets: lists as JSON text, missing values as empty cells."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.column_names)
        for row in _rows(table):
            writer.writerow(
                [
                    "" if value is None else orjson.dumps(value).decode() if isinstance(value, list) else value
                    for value in row.values()
                ]
            )
