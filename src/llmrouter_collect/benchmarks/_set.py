"""A run's problems as a compact index (ids, field digests) over datasets that are read again when asked.

A million problems of MATH-500/MMLU-Pro size are a gigabyte of text, and about four times that as Python
objects; a run needs them one at a time. `ProblemSet` validates every row once (as `load_problems` does),
keeps per problem only its unique_id and a 12-byte digest of its record fields, and yields the Problems again by
re-reading the datasets, checking each against its digest so a file edited meanwhile is never mixed in.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from ..errors import DatasetError
from ..records import Problem
from ._load import Source, problem_sources
from ._subsets import FULL_SIGNATURE_MASK, field_digest, fingerprint_of, pick_order

_DIGEST = 12
"""Bytes of a field digest (records.problem_signature)."""


class ProblemSet:
    """The validated problems of a run, in dataset order, held as ids and field digests.

    Iterating reads the datasets again and yields the Problems (the subset, if one was picked). `ids`,
    `len()`, `digest(i)` and `fingerprint()` need no reading.
    """

    def __init__(
        self,
        sources: list[Source],
        ids: list[str],
        digests: bytes,
        selected: bytearray | None,
        shapes: list[Problem],
    ) -> None:
        self._sources = sources
        self.ids = ids
        """The unique_ids, in dataset order."""
        self._digests = digests
        self._selected = selected
        self.shapes = shapes
        """One problem per prompt shape (benchmark prompt, MCQ or not, answer kind): what the templates'
        fingerprint depends on (prompts.Templates.fingerprint)."""

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self, index: int) -> bytes:
        """The field digest of the index-th problem (the signature a results line of it has, full mask)."""
        return self._digests[index * _DIGEST : (index + 1) * _DIGEST]

    signature_mask = FULL_SIGNATURE_MASK
    """The signature mask the digests are taken with (every compared field)."""

    def fingerprint(self) -> str:
        """The dataset fingerprint of the problems (benchmarks.dataset_fingerprint)."""
        return fingerprint_of(self.ids, [self.digest(i) for i in range(len(self.ids))])

    def __iter__(self) -> Iterator[Problem]:
        """The Problems, read again from the datasets.

        Raises:
            DatasetError: a dataset changed since it was loaded (a row's fields differ, or rows went missing).
        """
        index = 0
        position = 0
        for source in self._sources:
            for problem in source(None):
                chosen = self._selected is None or self._selected[position]
                position += 1
                if not chosen:
                    continue
                if (
                    index >= len(self.ids)
                    or problem.unique_id != self.ids[index]
                    or (field_digest(problem) != self.digest(index))
                ):
                    raise _changed(problem.unique_id)
                index += 1
                yield problem
        if index != len(self.ids):
            raise _changed(self.ids[index])

    def fetch(self, ids: Iterable[str]) -> list[Problem]:
        """The Problems with these ids (in dataset order), read again from the datasets."""
        wanted = set(ids)
        found = []
        for problem in self:
            if problem.unique_id in wanted:
                found.append(problem)
                if len(found) == len(wanted):
                    break
        return found


    def only(self, keep: Callable[[str], bool]) -> ProblemSet:
        """The problems whose unique_id `keep` accepts (e.g. one shard), in the same order; nothing is read.

        The prompt shapes stay those of the whole set, so every part of it has the same prompt fingerprint."""
        positions = len(self._selected) if self._selected is not None else len(self.ids)
        selected = bytearray(positions)
        ids: list[str] = []
        digests = bytearray()
        index = 0
        for position in range(positions):
            if self._selected is not None and not self._selected[position]:
                continue
            uid = self.ids[index]
            if keep(uid):
                selected[position] = 1
                ids.append(uid)
                digests += self.digest(index)
            index += 1
        return ProblemSet(self._sources, ids, bytes(digests), selected, self.shapes)


def _changed(uid: str) -> DatasetError:
    return DatasetError(
        f"the dataset changed while the run was reading it (at problem {uid!r})",
        hint="leave the dataset files as they are while `collect infer` runs, then rerun the same command",
    )


def open_problems(
    specs: list[str], num_problems: int | Literal["all"] = "all", dataset_map: Path | None = None
) -> ProblemSet:
    """Load and validate datasets as `load_problems` does (same problems, same order, same subset, same
    errors), keeping a compact index instead of the Problems.

    Raises:
        DatasetError, ConfigError: as `load_problems`.
    """
    sources = problem_sources(specs, num_problems, dataset_map)
    ids: list[str] = []
    digests = bytearray()
    group_of: array[int] = array("I")
    groups: dict[tuple[str, str], int] = {}
    shapes: dict[tuple[str | None, bool, str | None], Problem] = {}
    """One problem per prompt shape: any problem of a shape has the same template key."""
    shape_ids: dict[tuple[str | None, bool, str | None], int] = {}
    shape_of: array[int] = array("H")
    seen: dict[str, str] = {}
    for source in sources:
        for problem in source(seen):
            ids.append(problem.unique_id)
            digests += field_digest(problem)
            group_of.append(groups.setdefault((problem.dataset, problem.category), len(groups)))
            shape = (problem.prompt, problem.is_mcq, problem.answer_kind)
            shapes.setdefault(shape, problem)  # dicts keep insertion order: the n-th shape has index n
            shape_of.append(shape_ids.setdefault(shape, len(shape_ids)))
    del seen
    selected: bytearray | None = None
    if num_problems != "all" and num_problems < len(ids):
        table = list(groups)
        order = pick_order(ids, [table[group] for group in group_of])
        selected = bytearray(len(ids))
        for index in order[:num_problems]:
            selected[index] = 1
        ids = [uid for index, uid in enumerate(ids) if selected[index]]
        digests = bytearray(
            b"".join(digests[i * _DIGEST : (i + 1) * _DIGEST] for i in range(len(selected)) if selected[i])
        )
        kept_shapes = {shape_of[i] for i in range(len(selected)) if selected[i]}
        shapes = {key: problem for n, (key, problem) in enumerate(shapes.items()) if n in kept_shapes}
    return ProblemSet(sources, ids, bytes(digests), selected, list(shapes.values()))
