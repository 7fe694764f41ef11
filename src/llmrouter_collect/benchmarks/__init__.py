"""Benchmarks: load built-in and local datasets as validated Problems, and pick stable subsets of them.

A dataset spec is a catalogue name (`math500`, `mmlu_pro`, `gsm8k`, `mmlu`, ...: Hugging Face, cached by
`datasets` as usual), `sample` (shipped in the package), `hf:OWNER/NAME[:CONFIG][@SPLIT]` (any Hub dataset, with
a column mapping) or a path to a `.jsonl`/`.json`/`.parquet`/`.csv`/`.tsv` file. Local files are in the unified
schema (docs/records.md) or, detected by their field names, in the Hugging Face schema of a catalogue benchmark.
Every row of every dataset is checked before anything is returned, and the first bad row is reported with its
file, row and field. docs/datasets.md describes the schema, the mappings and the subset rule.

One private module per concern: `_fields` (field checks, RowError), `_mappings` (hand-written row mappings),
`_columns` (declarative column mappings), `_catalogue` (the built-in benchmarks), `_maps` (`hf:` specs and
`--dataset-map` files), `_readers` (local file formats), `_hub` (Hugging Face loading), `_load` (specs,
validation of whole datasets, labels), `_set` (a run's problems as a compact index, read again on demand) and
`_subsets` (stable subsets, fingerprints). The names below are the public API.
"""

from __future__ import annotations

from ._catalogue import CATALOGUE, GPQA_SHUFFLE_SEED, Benchmark, detect_benchmark
from ._columns import ColumnMap, canonical_number
from ._fields import MAX_CHOICES, RowError, RowMapper
from ._listing import BenchmarkInfo, list_benchmarks
from ._load import BUILTIN_NAMES, SAMPLE, dataset_label, is_hub_spec, load_problems
from ._mappings import MMLU_PRO_PADDING, map_math500_row, map_mmlu_pro_row, map_unified_row
from ._maps import HubSpec, load_dataset_map, parse_hf_spec
from ._readers import LOCAL_SUFFIXES
from ._set import ProblemSet, open_problems
from ._subsets import dataset_fingerprint, field_digest, select_subset, selection_order

__all__ = [
    "BUILTIN_NAMES",
    "CATALOGUE",
    "GPQA_SHUFFLE_SEED",
    "LOCAL_SUFFIXES",
    "MAX_CHOICES",
    "MMLU_PRO_PADDING",
    "SAMPLE",
    "Benchmark",
    "BenchmarkInfo",
    "ColumnMap",
    "HubSpec",
    "ProblemSet",
    "RowError",
    "RowMapper",
    "canonical_number",
    "dataset_fingerprint",
    "dataset_label",
    "detect_benchmark",
    "field_digest",
    "is_hub_spec",
    "list_benchmarks",
    "load_dataset_map",
    "load_problems",
    "map_math500_row",
    "map_mmlu_pro_row",
    "map_unified_row",
    "open_problems",
    "parse_hf_spec",
    "select_subset",
    "selection_order",
]
