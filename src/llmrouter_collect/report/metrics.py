"""Pure metric functions: unbiased pass@k, maj@k with fractional ties, clustered Wilson intervals, splits."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist

import numpy as np

CORRECT_KEY = "\x00correct"
"""The vote key shared by every response graded correct (all of them equal the gold answer, so each other)."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021) for one problem: 1 - C(n-c, k) / C(n, k).

    Args:
        n: samples drawn for the problem.
        c: samples that are correct.
        k: the budget; must satisfy 1 <= k <= n.

    Returns:
        The probability that at least one of k samples drawn without replacement from the n is correct.

    Raises:
        ValueError: k outside 1..n, or c outside 0..n.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}")
    if n - c < k:
        return 1.0
    # Exact integer binomials: no cancellation error, and n is small (tens) in practice.
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(histogram: Mapping[tuple[int, int], int], k: int) -> tuple[float | None, int]:
    """pass@k averaged over problems with at least k samples.

    Args:
        histogram: (n, c) → number of problems with n samples of which c are correct.
        k: the budget.

    Returns:
        (mean pass@k or None when no problem has k samples, number of problems averaged).
    """
    total = 0.0
    count = 0
    for (n, c), problems in histogram.items():
        if n >= k:
            total += pass_at_k(n, c, k) * problems
            count += problems
    return (total / count if count else None), count


def normalize_answer(answer: str, *, is_mcq: bool = False) -> str:
    """The key under which an extracted answer votes: whitespace collapsed, MCQ letters upper-cased."""
    text = " ".join(answer.split())
    return text.upper() if is_mcq else text


def majority_vote(votes: Iterable[tuple[str | None, bool]], *, is_mcq: bool = False) -> tuple[float, str | None]:
    """maj@k for one problem: the share of credit the majority answer earns, and the winning wrong answer.

    Only responses with an extracted answer vote (unparsed, truncated and failed ones abstain). Every answer
    graded correct votes for one shared key; wrong answers vote by their normalized text. A tie at the top
    between m answers scores 1/m if the correct answer is among them (the expected score of breaking the tie
    at random), else 0. No votes at all scores 0.

    Args:
        votes: (extracted_answer, is_correct) per response.
        is_mcq: whether answers are choice letters (compared case-insensitively).

    Returns:
        (score in [0, 1], the single most-voted wrong answer when it wins outright, else None).
    """
    tally: Counter[str] = Counter()
    for answer, correct in votes:
        if correct:
            tally[CORRECT_KEY] += 1
        elif answer is not None and answer.strip():
            tally[normalize_answer(answer, is_mcq=is_mcq)] += 1
    if not tally:
        return 0.0, None
    top = max(tally.values())
    leaders = [key for key, count in tally.items() if count == top]
    if CORRECT_KEY in leaders:
        return 1.0 / len(leaders), None
    return 0.0, (leaders[0] if len(leaders) == 1 else None)


def clustered_interval(
    clusters: Mapping[tuple[int, int], int], confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """Accuracy over samples with a Wilson interval that treats a problem's samples as one cluster.

    The samples of one problem are not independent, so the interval uses the effective sample size
    p(1-p)/SE², where SE is the cluster-robust standard error of the ratio sum(c)/sum(n). With one sample per
    problem this is the ordinary Wilson score interval.

    Args:
        clusters: (n, c) → number of problems with n samples of which c are correct.
        confidence: the interval's coverage, e.g. 0.95.

    Returns:
        (accuracy, low, high), or None when there are no samples.
    """
    problems = sum(clusters.values())
    samples = sum(n * count for (n, _), count in clusters.items())
    if samples == 0:
        return None
    correct = sum(c * count for (_, c), count in clusters.items())
    p = correct / samples
    n_eff = float(samples)
    if problems > 1 and 0.0 < p < 1.0:
        squares = sum(((c - p * n) ** 2) * count for (n, c), count in clusters.items())
        variance = squares / samples**2 * problems / (problems - 1)
        if variance > 0.0:
            n_eff = min(float(samples), max(1.0, p * (1.0 - p) / variance))
    elif p in (0.0, 1.0):
        # No spread to estimate from: count each problem once (samples of one problem are correlated).
        n_eff = float(problems)
    low, high = wilson_interval(p, n_eff, confidence)
    return p, low, high


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a proportion p observed over n (maybe effective, fractional) trials."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(0.0, p * (1 - p) / n + z2 / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolating linearly between order statistics; None when empty."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, accuracy) not dominated by a cheaper-or-equal, at-least-as-accurate point.

    Returned in order of increasing cost.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for index in order:
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


SPLIT_SALT = "router-split:"
"""Prefix hashed with each unique_id for the split. `--num-problems` (dataset.select_subset) takes the problems
with the lowest *unsalted* SHA-256 of unique_id per category; hashing the bare id here too put almost every
problem of a small subset in `test` (193 of 200 in the quickstart). Salted, the two orders are independent."""

MIN_SPLIT_PROBLEMS = 20
"""A split side with fewer problems than this is flagged: held-out numbers over so few mean little."""


def assign_split(unique_id: str, test_fraction: float = 0.2) -> str:
    """`train` or `test` for a problem, from the SHA-256 of `"router-split:" + unique_id`: the same for every
    model, run and machine, and independent of which problems `--num-problems` picked.

    Every model's rows for one problem land on the same side, so a router is never tested on a problem it
    was trained on.
    """
    digest = hashlib.sha256((SPLIT_SALT + unique_id).encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    return "test" if position < test_fraction else "train"


def split_warning(train: int, test: int, test_fraction: float) -> str | None:
    """A one-line warning when a side of the train/test split is too small to mean anything, else None.

    A side is too small when it has fewer than MIN_SPLIT_PROBLEMS problems, or less than half the share asked
    for (`test_fraction` for test, the rest for train). A fraction of 0 or 1 asks for one side only: no warning.
    """
    total = train + test
    if total == 0 or not 0.0 < test_fraction < 1.0:
        return None
    for side, count, share in (("test", test, test_fraction), ("train", train, 1.0 - test_fraction)):
        if count < MIN_SPLIT_PROBLEMS or count < share / 2 * total:
            return (
                f"the {side} split has only {count:,} of {total:,} problems (asked: {share:.0%}); numbers held out "
                f"on so few mean little — use more problems or change --test-fraction"
            )
    return None
