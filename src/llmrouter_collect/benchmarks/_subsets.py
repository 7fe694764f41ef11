"""Stable subsets (spread over datasets and categories, nested) and dataset fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from ..records import COMPARED_PROBLEM_FIELDS, Problem, problem_signature


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
    return pick_order(
        [problem.unique_id for problem in problems], [(problem.dataset, problem.category) for problem in problems]
    )


def pick_order(ids: Sequence[str], groups: Sequence[tuple[str, str]]) -> list[int]:
    """`selection_order` from the problems' ids and their (dataset, category) pairs alone."""
    by_group: dict[str, dict[str, list[int]]] = {}
    for index, (dataset, category) in enumerate(groups):
        by_group.setdefault(dataset, {}).setdefault(category, []).append(index)
    per_dataset: list[list[int]] = []
    for dataset in sorted(by_group, key=_rank):
        categories = by_group[dataset]
        per_category = [
            sorted(categories[category], key=lambda i: (_rank(ids[i]), i)) for category in sorted(categories, key=_rank)
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
    """`sha256:<hex>` of the problems' ids and fields as a results record holds them (question, choices,
    answers, explanation, category, dataset), independent of their order."""
    return fingerprint_of([problem.unique_id for problem in problems], [field_digest(p) for p in problems])


def field_digest(problem: Problem) -> bytes:
    """A short digest of a problem's record fields: the one a results file's `scan` takes of a line."""
    return problem_signature(problem.to_record_fields(), FULL_SIGNATURE_MASK)[1]


FULL_SIGNATURE_MASK = (1 << len(COMPARED_PROBLEM_FIELDS)) - 1
"""The signature mask of a record that has every compared field (all records this version writes)."""


def fingerprint_of(ids: Sequence[str], digests: Sequence[bytes]) -> str:
    """`dataset_fingerprint` from the problems' ids and `field_digest`s."""
    digest = hashlib.sha256()
    for index in sorted(range(len(ids)), key=ids.__getitem__):
        digest.update(orjson.dumps(ids[index]))
        digest.update(digests[index])
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
