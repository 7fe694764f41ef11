"""The router view across models: best single model, oracle, category router, unsolved and suspect problems.

Every number here is over the problems that all models answered, and each problem counts once: a model's
score on a problem is its fraction of correct samples (the chance that one request to it is right), and its
cost on a problem is the mean cost of one of its samples (the cost of one routed request).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .loader import Collection
from .metrics import assign_split, split_warning
from .prices import Price

_TIE = 1e-12


@dataclass(slots=True)
class ModelPoint:
    """One model on the common problems."""

    model: str
    accuracy: float
    cost_per_query: float | None


@dataclass(slots=True)
class Strategy:
    """A way of picking a model per problem, and how it scores on the common problems."""

    name: str
    accuracy: float
    cost_per_query: float | None
    routed: dict[str, int]
    """How many problems go to each model."""
    choices: dict[str, str] = field(default_factory=dict)
    """For the category router: group → chosen model."""


@dataclass(slots=True)
class FlaggedProblem:
    """A problem the router view points at: unsolved by every model, or the same wrong answer from all."""

    unique_id: str
    group: str
    answer: str | None = None


@dataclass(slots=True)
class HeldOut:
    """Strategies chosen on the train split and scored on the test split (no peeking at test answers)."""

    test_problems: int
    train_problems: int
    best_single_model: str
    best_single_accuracy: float
    category_router_accuracy: float
    category_router_choices: dict[str, str]
    oracle_accuracy: float


@dataclass(slots=True)
class RouterView:
    """The cross-model numbers a router builder starts from."""

    models: list[str]
    group_by: str
    common_problems: int
    missing: dict[str, int]
    """Per model: problems that some other model answered and this one did not (left out of this view)."""
    points: list[ModelPoint] = field(default_factory=list)
    best_single: Strategy | None = None
    oracle: Strategy | None = None
    category_router: Strategy | None = None
    coverage: float | None = None
    """Share of problems where at least one sample of at least one model is correct (pass@all)."""
    held_out: HeldOut | None = None
    split_warning: str | None = None
    """Set when a side of the train/test split is too small for held-out numbers to mean anything."""
    unsolved: list[FlaggedProblem] = field(default_factory=list)
    agreed_wrong: list[FlaggedProblem] = field(default_factory=list)


def build_router_view(collection: Collection, prices: Mapping[str, Price], *, test_fraction: float = 0.2) -> RouterView:
    """Compare the models of a collection on the problems they all answered.

    Ties in accuracy go to the cheaper model (only when every model has a price: partial prices would favour
    the unpriced models), then to the model ranked higher overall (more accurate, then cheaper, then by name).
    """
    names = sorted(collection.models)
    problem_sets = [set(collection.models[name].problems) for name in names]
    union = set().union(*problem_sets)
    common_set = set.intersection(*problem_sets) if problem_sets else set()
    common = sorted(common_set, key=natural_key)
    view = RouterView(
        models=names,
        group_by=collection.group_by,
        common_problems=len(common),
        missing={name: len(union) - len(problems) for name, problems in zip(names, problem_sets, strict=True)},
    )
    if not common:
        return view
    priced = all(name in prices for name in names)
    n_problems, n_models = len(common), len(names)
    score = np.zeros((n_problems, n_models))
    cost = np.zeros((n_problems, n_models))
    solved = np.zeros((n_problems, n_models), dtype=bool)
    for j, name in enumerate(names):
        results = collection.models[name].problems
        price = prices.get(name)
        for i, uid in enumerate(common):
            result = results[uid]
            score[i, j] = result.correct / result.samples
            solved[i, j] = result.correct > 0
            if priced and price is not None:
                cost[i, j] = price.cost(result.prompt_tokens, result.completion_tokens) / result.samples
    field_name = collection.group_by
    groups = np.array([collection.group_of(collection.problems[uid]) for uid in common])
    splits = np.array([assign_split(uid, test_fraction) for uid in common])

    # Rank models once (accuracy, then cost, then name) and order columns by rank, so argmax/argmin
    # picks the better-ranked model on exact ties.
    mean_score = score.mean(axis=0)
    mean_cost = cost.mean(axis=0)
    rank = sorted(range(n_models), key=lambda j: (-round(mean_score[j], 12), mean_cost[j], names[j]))
    names = [names[j] for j in rank]
    score, cost, solved = score[:, rank], cost[:, rank], solved[:, rank]
    mean_score, mean_cost = mean_score[rank], mean_cost[rank]

    def money(value: float) -> float | None:
        return float(value) if priced else None

    view.points = [
        ModelPoint(model=name, accuracy=float(mean_score[j]), cost_per_query=money(mean_cost[j]))
        for j, name in enumerate(names)
    ]
    view.best_single = Strategy(
        name=f"best single model ({names[0]})",
        accuracy=float(mean_score[0]),
        cost_per_query=money(mean_cost[0]),
        routed={names[0]: n_problems},
    )
    everything = np.ones(n_problems, dtype=bool)
    oracle_pick = _oracle_choice(score, cost)
    view.oracle = Strategy(
        name="oracle (best model per problem, cheapest on ties)",
        accuracy=float(score[np.arange(n_problems), oracle_pick].mean()),
        cost_per_query=money(cost[np.arange(n_problems), oracle_pick].mean()),
        routed=_routed(names, oracle_pick),
    )
    choices = _choose_per_group(score, cost, groups, everything, names)
    pick = np.array([names.index(choices[group]) for group in groups])
    view.category_router = Strategy(
        name=f"{field_name} router (best model per {field_name})",
        accuracy=float(score[np.arange(n_problems), pick].mean()),
        cost_per_query=money(cost[np.arange(n_problems), pick].mean()),
        routed=_routed(names, pick),
        choices=choices,
    )
    view.coverage = float(solved.any(axis=1).mean())
    view.held_out = _held_out(score, cost, groups, splits, names)
    view.split_warning = split_warning(int((splits == "train").sum()), int((splits == "test").sum()), test_fraction)
    view.unsolved = [
        FlaggedProblem(unique_id=common[i], group=str(groups[i])) for i in np.flatnonzero(~solved.any(axis=1))
    ]
    if n_models >= 2:
        for i, uid in enumerate(common):
            answers = {collection.models[name].problems[uid].majority_wrong for name in names}
            if len(answers) == 1 and None not in answers:
                view.agreed_wrong.append(FlaggedProblem(unique_id=uid, group=str(groups[i]), answer=answers.pop()))
    return view


def natural_key(unique_id: str) -> list[str | int]:
    """Sort key that puts `sample/2` before `sample/10` (runs of digits compare as numbers)."""
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", unique_id))]


def _oracle_choice(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    best = score.max(axis=1, keepdims=True)
    choice: np.ndarray = np.argmin(np.where(score >= best - _TIE, cost, np.inf), axis=1)
    return choice


def _routed(names: list[str], pick: np.ndarray) -> dict[str, int]:
    counts = np.bincount(pick, minlength=len(names))
    return {name: int(counts[j]) for j, name in enumerate(names) if counts[j]}


def _best_column(score: np.ndarray, cost: np.ndarray, rows: np.ndarray) -> int:
    acc = score[rows].mean(axis=0)
    spend = cost[rows].mean(axis=0)
    candidates = np.flatnonzero(acc >= acc.max() - _TIE)
    return int(candidates[np.argmin(spend[candidates])])


def _choose_per_group(
    score: np.ndarray, cost: np.ndarray, groups: np.ndarray, rows: np.ndarray, names: list[str]
) -> dict[str, str]:
    """Best model per group on the given rows; a group without rows gets the best model on all of them."""
    fallback = _best_column(score, cost, rows) if rows.any() else 0
    choices = {}
    for group in sorted(set(groups.tolist())):
        selected = rows & (groups == group)
        column = _best_column(score, cost, selected) if selected.any() else fallback
        choices[str(group)] = names[column]
    return choices


def _held_out(
    score: np.ndarray, cost: np.ndarray, groups: np.ndarray, splits: np.ndarray, names: list[str]
) -> HeldOut | None:
    train = splits == "train"
    test = splits == "test"
    if not train.any() or not test.any():
        return None
    single = _best_column(score, cost, train)
    choices = _choose_per_group(score, cost, groups, train, names)
    pick = np.array([names.index(choices[group]) for group in groups])
    rows = np.flatnonzero(test)
    return HeldOut(
        test_problems=int(test.sum()),
        train_problems=int(train.sum()),
        best_single_model=names[single],
        best_single_accuracy=float(score[rows, single].mean()),
        category_router_accuracy=float(score[rows, pick[rows]].mean()),
        category_router_choices=choices,
        oracle_accuracy=float(score[rows].max(axis=1).mean()),
    )
