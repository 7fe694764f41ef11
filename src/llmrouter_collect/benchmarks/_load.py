"""Dataset specs → validated Problems: catalogue names, `sample`, `hf:` specs, local files; labels for file names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, DatasetError
from ..records import Problem
from ._catalogue import ALIASES, BY_NAME, Benchmark, detect_benchmark
from ._columns import ColumnMap
from ._fields import _SCHEMA_HINT, RowError, RowMapper, _got
from ._hub import hub_rows
from ._mappings import map_unified_row
from ._maps import DatasetMap, is_hf_spec, load_dataset_map, parse_hf_spec
from ._readers import _READERS, LOCAL_SUFFIXES, _json_lines
from ._subsets import select_subset

SAMPLE = "sample"
BUILTIN_NAMES = (*BY_NAME, SAMPLE)


def _builtin_name(spec: str) -> str | None:
    key = spec.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in BUILTIN_NAMES else None


def is_hub_spec(spec: str) -> bool:
    """True for a spec loaded from the Hugging Face Hub (a catalogue name or `hf:...`): slow without network."""
    return is_hf_spec(spec) or _builtin_name(spec) in BY_NAME


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
        if name in BY_NAME:
            labels.append(BY_NAME[name].label)
        elif name == SAMPLE:
            labels.append(SAMPLE)
        elif is_hf_spec(spec):
            labels.append(parse_hf_spec(spec).name)
        else:
            labels.append(_file_label(Path(spec)))
    return "_".join(labels) or "dataset"


def _check_rows(
    rows: Iterable[tuple[str, Any]],
    source: str,
    dataset: str,
    seen: dict[str, str] | None,
    mapper: RowMapper | None = None,
) -> Iterator[Problem]:
    """Map and validate every row, yielding the Problems as they come; after the last row, raise one
    DatasetError for the first bad row (counting the others). `seen` (unique_id → where) catches ids used twice;
    None skips that check (a second reading of rows already checked)."""
    count = 0
    first: tuple[str, str] | None = None
    bad = 0
    schema = ""
    for where, row in rows:
        if mapper is None:
            benchmark = detect_benchmark(row)
            mapper, schema = (benchmark.row_mapper(), benchmark.schema) if benchmark else (map_unified_row, "")
        label = f"{source} ({schema})" if schema else source
        try:
            if isinstance(row, RowError):
                raise row
            if not isinstance(row, dict):
                raise RowError("-", f"expected an object with named fields, got {_got(row)}")
            problem = mapper(row, dataset)
            if seen is not None and problem.unique_id in seen:
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
        if seen is not None:
            seen[problem.unique_id] = f"{source}, {where}"
        count += 1
        if first is None:
            yield problem
    if first is not None:
        message, hint = first
        more = f" (and {bad - 1} more invalid row{'s' if bad > 2 else ''})" if bad > 1 else ""
        raise DatasetError(message + more, hint)
    if not count:
        raise DatasetError(f"{source}: no problems in it", hint=_SCHEMA_HINT)


def _load_local(spec: str, seen: dict[str, str] | None, dataset_map: DatasetMap | None) -> Iterator[Problem]:
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
    column_map = dataset_map.for_spec(spec) if dataset_map is not None else None
    if column_map is None:
        return _check_rows(reader(path), str(spec), _file_label(path), seen)
    rows = list(reader(path))
    if _flat_map_not_needed(column_map, dataset_map, rows):
        return _check_rows(rows, str(spec), _file_label(path), seen)
    return _check_mapped(rows, str(spec), _file_label(path), seen, column_map)


def _flat_map_not_needed(column_map: ColumnMap, dataset_map: DatasetMap | None, rows: list[tuple[str, Any]]) -> bool:
    """A flat `--dataset-map` is for the datasets that need one: not for data already in the unified schema or a
    catalogue benchmark's schema (a table naming the dataset always applies)."""
    if dataset_map is None or column_map is not dataset_map.default:
        return False
    first = next((row for _, row in rows if isinstance(row, dict)), None)
    return first is not None and ("unique_id" in first or detect_benchmark(first) is not None)


def _check_mapped(
    rows: list[tuple[str, Any]], source: str, dataset: str, seen: dict[str, str] | None, column_map: ColumnMap
) -> Iterator[Problem]:
    """Rows read through a `--dataset-map` mapping: its columns are checked against the first row first."""
    first = next((row for _, row in rows if isinstance(row, dict)), None)
    if first is not None:
        column_map.check_columns(first, source)
    return _check_rows(rows, f"{source} (mapped)", dataset, seen, column_map.mapper())


def _load_sample(seen: dict[str, str] | None) -> Iterator[Problem]:
    data = (resources.files("llmrouter_collect") / "data" / "sample.jsonl").read_bytes()
    return _check_rows(_json_lines(data, "sample"), "sample", SAMPLE, seen, map_unified_row)


def _load_catalogue(benchmark: Benchmark, seen: dict[str, str] | None) -> Iterator[Problem]:
    rows = hub_rows(benchmark.name, benchmark.repo, benchmark.split, benchmark.config, gated=benchmark.gated)
    source = f"{benchmark.name} ({benchmark.repo}, {benchmark.split})"
    numbered = ((f"row {n}", row) for n, row in enumerate(rows, start=1))
    return _check_rows(numbered, source, benchmark.name, seen, benchmark.row_mapper())


def _load_hf(spec: str, seen: dict[str, str] | None, dataset_map: DatasetMap | None) -> Iterator[Problem]:
    hub = parse_hf_spec(spec)
    column_map = dataset_map.for_spec(spec, repo=hub.repo) if dataset_map is not None else None
    rows = hub_rows(hub.name, hub.repo, hub.split, hub.config)
    numbered = [(f"row {n}", row) for n, row in enumerate(rows, start=1)]
    if column_map is not None and _flat_map_not_needed(column_map, dataset_map, numbered):
        column_map = None
    if column_map is None:
        first = rows[0] if rows else None
        if detect_benchmark(first) is None and not (isinstance(first, dict) and "unique_id" in first):
            columns = ", ".join(str(name) for name in first) if isinstance(first, dict) else "none"
            raise DatasetError(
                f"{spec}: no column mapping for this dataset (its columns are: {columns})",
                hint="map its columns onto the unified fields with --dataset-map map.toml (docs/datasets.md, "
                '"Column mappings"), e.g.  question = "..."  answer = "..."  category_value = "all"',
            )
        return _check_rows(numbered, spec, hub.name, seen)
    return _check_mapped(numbered, spec, hub.name, seen, column_map)


def load_problems(
    specs: list[str], num_problems: int | Literal["all"] = "all", dataset_map: Path | None = None
) -> list[Problem]:
    """Load, validate and combine datasets, then pick `num_problems` of them with `select_subset`.

    Nothing is returned until every row of every dataset is valid. `open_problems` gives the same problems
    without holding them in memory.

    Args:
        specs: catalogue names (`math500`, `gsm8k`, ...), `sample`, `hf:OWNER/NAME[:CONFIG][@SPLIT]` or file
            paths (items may also be comma-separated lists). A spec given twice is loaded once.
        num_problems: how many problems, or "all".
        dataset_map: a TOML file mapping the columns of `hf:` datasets (and of local files not in the unified
            schema) onto the unified fields.

    Returns:
        The problems, datasets in the order given, rows in file order.

    Raises:
        DatasetError: a dataset cannot be found or loaded, or a row is invalid (file, row and field named).
        ConfigError: `num_problems` is not a positive number or "all".
    """
    sources = problem_sources(specs, num_problems, dataset_map)
    seen: dict[str, str] = {}
    problems = [problem for source in sources for problem in source(seen)]
    if num_problems == "all":
        return problems
    return select_subset(problems, num_problems)


Source = Callable[[dict[str, str] | None], Iterator[Problem]]
"""One dataset's validated Problems, in file order. Given `seen` (unique_id → where, shared by the datasets of
a run) it checks every row and refuses ids used twice; given None it reads rows already checked once again."""


def problem_sources(
    specs: list[str], num_problems: int | Literal["all"] = "all", dataset_map: Path | None = None
) -> list[Source]:
    """One Source per dataset spec (arguments as `load_problems`); a local file is read again on each call, a
    Hugging Face dataset (a few thousand rows at most) is loaded once and kept.

    Raises:
        DatasetError, ConfigError: as `load_problems`, for what can be told before reading rows.
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
    mapping = load_dataset_map(dataset_map) if dataset_map is not None else None
    return [_source(spec, mapping) for spec in names]


def _source(spec: str, mapping: DatasetMap | None) -> Source:
    name = _builtin_name(spec)
    if name in BY_NAME:
        return _kept(lambda seen: _load_catalogue(BY_NAME[name], seen))
    if name == SAMPLE:
        return _kept(_load_sample)
    if is_hf_spec(spec):
        return _kept(lambda seen: _load_hf(spec, seen, mapping))
    return lambda seen: _load_local(spec, seen, mapping)


def _kept(load: Source) -> Source:
    """A Source that loads once (with `seen`) and then gives the same Problems from memory."""
    kept: list[Problem] = []

    def source(seen: dict[str, str] | None) -> Iterator[Problem]:
        if seen is not None or not kept:
            kept[:] = list(load(seen))
        return iter(kept)

    return source
