"""Stable subsets (spread over datasets and categories, nested) and dataset fingerprints."""

from __future__ import annotations

import hashlib

import orjson

from ..records import Problem


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
