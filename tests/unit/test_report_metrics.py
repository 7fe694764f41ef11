"""Metric functions of `collect report`: pass@k against brute force, maj@k ties, intervals, splits, Pareto."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from llmrouter_collect.report.metrics import (
    assign_split,
    clustered_interval,
    majority_vote,
    mean_pass_at_k,
    pareto_front,
    pass_at_k,
    percentile,
    wilson_interval,
)


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of the k-subsets of n samples (c correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(1 for subset in subsets if any(samples[i] for i in subset))
    return Fraction(hits, len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_brute_force_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)), abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_fraction_correct() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 0, 5) == 0.0
    assert pass_at_k(5, 5, 1) == 1.0


def test_pass_at_k_rejects_k_above_n() -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)


def test_mean_pass_at_k_skips_problems_with_fewer_samples() -> None:
    histogram = {(3, 1): 2, (2, 2): 1}
    value, count = mean_pass_at_k(histogram, 3)
    assert count == 2
    assert value == pytest.approx(1.0)  # a problem with 1 correct of 3 always passes at k=3
    value, count = mean_pass_at_k(histogram, 2)
    assert count == 3
    assert value == pytest.approx((2 * (1 - 1 / 3) + 1.0) / 3)
    assert mean_pass_at_k({(1, 0): 4}, 2) == (None, 0)


@pytest.mark.parametrize(
    ("votes", "is_mcq", "score", "wrong"),
    [
        ([("A", True), ("A", True), ("B", False)], True, 1.0, None),
        ([("B", False), ("B", False), ("A", True)], True, 0.0, "B"),
        # a two-way tie that includes the correct answer earns half
        ([("A", True), ("B", False)], True, 0.5, None),
        # a three-way tie earns a third
        ([("A", True), ("B", False), ("C", False)], True, pytest.approx(1 / 3), None),
        # a tie between two wrong answers: no credit and no single wrong answer
        ([("B", False), ("C", False), ("B", False), ("C", False), ("A", True)], True, 0.0, None),
        # unparsed, truncated and failed responses abstain
        ([("A", True), (None, False), (None, False), (None, False)], True, 1.0, None),
        ([(None, False), (None, False)], False, 0.0, None),
        ([], False, 0.0, None),
        # MCQ letters compare case-insensitively; math answers by text with whitespace collapsed
        ([("b", False), ("B ", False), ("A", True)], True, 0.0, "B"),
        ([("x  +1", False), ("x +1", False), ("2", True)], False, 0.0, "x +1"),
        # two differently written correct answers vote together (both equal the gold answer)
        ([("1/2", True), ("\\frac{1}{2}", True), ("3", False)], False, 1.0, None),
    ],
)
def test_majority_vote(votes: list[tuple[str | None, bool]], is_mcq: bool, score: float, wrong: str | None) -> None:
    assert majority_vote(votes, is_mcq=is_mcq) == (score, wrong)


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(0.5, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    low, high = wilson_interval(0.0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_clustered_interval_with_one_sample_per_problem_is_wilson() -> None:
    p, low, high = clustered_interval({(1, 1): 30, (1, 0): 70})
    assert p == pytest.approx(0.3)
    # the cluster-robust variance carries the n/(n-1) small-sample factor
    expected = wilson_interval(0.3, 0.3 * 0.7 / (0.3 * 0.7 / 100 * 100 / 99))
    assert (low, high) == (pytest.approx(expected[0]), pytest.approx(expected[1]))


def test_clustered_interval_is_wider_when_samples_of_a_problem_agree() -> None:
    # 50 problems always right and 50 always wrong (k=4): effectively 100 observations, not 400
    p, low, high = clustered_interval({(4, 4): 50, (4, 0): 50})
    independent = wilson_interval(0.5, 400)
    assert p == 0.5
    assert high - low > independent[1] - independent[0]
    assert (low, high) == (pytest.approx(wilson_interval(0.5, 99)[0]), pytest.approx(wilson_interval(0.5, 99)[1]))


def test_clustered_interval_edges() -> None:
    assert clustered_interval({}) is None
    p, low, high = clustered_interval({(5, 5): 3})
    assert (p, high) == (1.0, 1.0)
    assert low == pytest.approx(wilson_interval(1.0, 3)[0])


def test_percentile_matches_numpy() -> None:
    values = [3.0, 1.0, 2.0, 10.0, 7.5]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(float(np.percentile(values, 95)))
    assert percentile([], 50) is None


def test_pareto_front() -> None:
    points = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.7), (0.5, 0.2), (3.0, 0.6)]
    assert pareto_front(points) == [3, 0, 2]


def test_assign_split_is_stable_and_near_the_fraction() -> None:
    # fixed values: the split must never change between versions, or train/test would leak (changed once, on
    # purpose, to the salted hash; see test_report_split.py)
    assert assign_split("test/algebra/1098.json") == assign_split("test/algebra/1098.json")
    assert [assign_split(f"mmlu_pro/test/{i}") for i in range(12)] == ["test"] * 6 + ["train"] * 5 + ["test"]
    shares = [assign_split(f"p/{i}", 0.2) == "test" for i in range(5000)]
    assert math.isclose(sum(shares) / len(shares), 0.2, abs_tol=0.02)
    assert assign_split("anything", 0.0) == "train"
    assert assign_split("anything", 1.0) == "test"
