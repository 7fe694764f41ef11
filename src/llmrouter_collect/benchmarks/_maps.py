"""`hf:OWNER/NAME[:CONFIG][@SPLIT]` specs and `--dataset-map` files (TOML column mappings)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ._columns import ColumnMap, column_map_from_dict

HF_PREFIX = "hf:"
DEFAULT_SPLIT = "test"

_HF_SPEC = re.compile(r"hf:(?P<repo>[\w.-]+/[\w.-]+)(?::(?P<config>[^@]+))?(?:@(?P<split>[\w.\-\[\]:%]+))?")


@dataclass(frozen=True)
class HubSpec:
    """A parsed `hf:` spec."""

    spec: str
    repo: str
    config: str | None
    split: str

    @property
    def name(self) -> str:
        """The dataset name in records and file names: `owner_name[_config][_split]` without the defaults."""
        parts = [self.repo.replace("/", "_")]
        if self.config:
            parts.append(self.config)
        if self.split != DEFAULT_SPLIT:
            parts.append(self.split)
        return re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(parts))


def is_hf_spec(spec: str) -> bool:
    """True for `hf:...`."""
    return spec.strip().lower().startswith(HF_PREFIX)


def parse_hf_spec(spec: str) -> HubSpec:
    """`hf:OWNER/NAME[:CONFIG][@SPLIT]` → HubSpec (split `test` when not given).

    Raises:
        DatasetError: the spec does not have that shape.
    """
    text = spec.strip()
    match = _HF_SPEC.fullmatch(HF_PREFIX + text[len(HF_PREFIX) :])
    if match is None:
        raise DatasetError(
            f"dataset {spec!r} is not a Hugging Face spec",
            hint="write hf:OWNER/NAME, hf:OWNER/NAME:CONFIG, hf:OWNER/NAME@SPLIT or hf:OWNER/NAME:CONFIG@SPLIT",
        )
    return HubSpec(text, match.group("repo"), match.group("config"), match.group("split") or DEFAULT_SPLIT)


@dataclass(frozen=True)
class DatasetMap:
    """The column mappings of a `--dataset-map` file: one for every dataset, or one per dataset spec."""

    path: Path
    default: ColumnMap | None
    by_key: dict[str, ColumnMap]

    def for_spec(self, spec: str, *, repo: str | None = None) -> ColumnMap | None:
        """The mapping for a spec: its own table (by the spec as given, its repo id or its file name), else the
        file's flat mapping, else None."""
        keys = [spec.strip()]
        if repo is not None:
            keys += [repo, f"{HF_PREFIX}{repo}"]
        else:
            keys.append(Path(spec.strip()).name)
        for key in keys:
            if key in self.by_key:
                return self.by_key[key]
        return self.default


def load_dataset_map(path: Path) -> DatasetMap:
    """Read a `--dataset-map` TOML file.

    Either flat (`question = "..."`, `answer = "..."`, ...: the mapping for every `hf:` dataset and local file
    of the run), or one table per dataset: `["hf:owner/name"]`, `["owner/name"]` or `["file.parquet"]`.

    Raises:
        DatasetError: the file is missing or not TOML, or a mapping is invalid.
    """
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"dataset map {path} not found", hint="check --dataset-map") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(
            f"dataset map {path} is not valid TOML: {err}",
            hint='write it as  question = "problem"  answer = "solution"  ... (docs/datasets.md)',
        ) from None
    if "question" in data or not all(isinstance(value, dict) for value in data.values()):
        return DatasetMap(path, column_map_from_dict(data, f"dataset map {path}"), {})
    tables = {key: column_map_from_dict(value, f"dataset map {path}, [{key}]") for key, value in data.items()}
    return DatasetMap(path, None, tables)
