"""Shards: a stable, disjoint share of the problems for each of N machines (`collect infer --shard I/N`), and the
check that the shard files of one model, read together, overlap nowhere and miss no shard.

A problem belongs to shard I of N when the SHA-256 of `"shard:" + unique_id`, taken as a number, is I-1 modulo N.
The salt keeps this hash independent of the two other hashes of unique_id: the one that orders problems for
`--num-problems` (unsalted) and the router's train/test split (`"router-split:"`), so a shard is neither a skewed
subset nor a skewed split side. The share depends only on the id and N: it stays the same when k grows, a run
resumes, or another machine computes it; and the N shards of a selection together are exactly that selection.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import GradeError
from .records import Problem

SHARD_SALT = "shard:"
"""Prefix hashed with each unique_id to place it in a shard (see the module docstring for why it is salted)."""

SHARD_FORM = "I/N with whole numbers 1 ≤ I ≤ N, e.g. 2/3 (this machine's share: the second of three)"
"""The expected form of `--shard`, as error messages say it."""

_SPEC_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

_P = TypeVar("_P", bound=Problem)


@dataclass(frozen=True, slots=True, order=True)
class ShardSpec:
    """Shard `index` of `count` (1-based, as written: `2/3`)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"must be {SHARD_FORM}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def file_suffix(self) -> str:
        """What the default results file name gets before `.jsonl`: `.shard-2-of-3`."""
        return f".shard-{self.index}-of-{self.count}"

    def holds(self, unique_id: str) -> bool:
        """True if the problem with this id belongs to this shard."""
        return shard_number(unique_id, self.count) == self.index


def parse_shard(text: str) -> ShardSpec:
    """`"2/3"` → ShardSpec(2, 3) (pure).

    Raises:
        ValueError: not of the form I/N with 1 ≤ I ≤ N (the message says the form expected).
    """
    match = _SPEC_RE.match(text)
    if match is None:
        raise ValueError(f"must be {SHARD_FORM}")
    return ShardSpec(int(match.group(1)), int(match.group(2)))


def shard_number(unique_id: str, count: int) -> int:
    """The shard (1..count) a problem belongs to, from SHA-256 of `"shard:" + unique_id` (pure)."""
    digest = hashlib.sha256((SHARD_SALT + unique_id).encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % count + 1


def select_shard(problems: Sequence[_P], spec: ShardSpec | None) -> list[_P]:
    """The problems of shard `spec`, in their order; all of them when `spec` is None (pure)."""
    if spec is None:
        return list(problems)
    return [problem for problem in problems if spec.holds(problem.unique_id)]


# --- reading the shard files of one model together -----------------------------------------------------------


@dataclass(slots=True)
class ShardCheck:
    """Watches the records of shard files as they are read: refuses a problem of one model that two shard files
    hold (an overlap), and says which shards of a model were not read (`missing`).

    Records without a shard (an unsharded run) are not its business: callers treat them as before.
    """

    _owner: dict[tuple[str, str], Path] = field(default_factory=dict)
    _spec_of: dict[Path, ShardSpec] = field(default_factory=dict)
    _seen: dict[str, set[ShardSpec]] = field(default_factory=dict)
    _parsed: dict[str, ShardSpec] = field(default_factory=dict)

    def add(self, model: str, unique_id: str, shard: object, path: Path) -> None:
        """Note that `path` holds `model`'s record of problem `unique_id` from shard `shard` (a record's field).

        Raises:
            GradeError: another shard file of the same model holds this problem, or `shard` is not I/N.
        """
        spec = self._parsed.get(shard) if isinstance(shard, str) else None
        if spec is None:
            spec = self._parsed[str(shard)] = _record_shard(shard, path, unique_id)
        self._spec_of.setdefault(path, spec)
        self._seen.setdefault(model, set()).add(spec)
        owner = self._owner.setdefault((model, unique_id), path)
        if owner != path:
            raise GradeError(
                f"shard files overlap: {owner} ({self._spec_of[owner]}) and {path} ({spec}) both hold problem "
                f"{unique_id} of model {model!r}",
                hint="the shard files of one model must come from one --shard I/N split, each shard collected "
                "once: move the extra file out of the way",
            )

    def missing(self) -> list[str]:
        """One warning per model whose shard files do not make a whole split (a shard not read, or shards of
        different N), naming the missing shards."""
        warnings = []
        for model, specs in sorted(self._seen.items()):
            counts = sorted({spec.count for spec in specs})
            read = ", ".join(str(spec) for spec in sorted(specs))
            if len(counts) > 1:
                warnings.append(
                    f"model {model!r}: its shard files come from splits of different sizes ({read}); "
                    "together they cover some problems twice or not at all"
                )
                continue
            count = counts[0]
            absent = [index for index in range(1, count + 1) if ShardSpec(index, count) not in specs]
            if absent:
                names = ", ".join(f"{index}/{count}" for index in absent)
                warnings.append(
                    f"model {model!r}: shard {names} missing (read {read}); its problems are not counted — "
                    f"collect it with `collect infer --shard {absent[0]}/{count}` and pass its file too"
                )
        return warnings


def _record_shard(shard: object, path: Path, unique_id: str) -> ShardSpec:
    if isinstance(shard, str):
        try:
            return parse_shard(shard)
        except ValueError:
            pass
    raise GradeError(
        f"{path}, problem {unique_id}: `shard` is {shard!r}, not I/N",
        hint="records written by `collect infer --shard I/N` carry it as text, e.g. \"2/3\"; was this file edited?",
    )
