"""The grading pool: results come back by key, and a check that will not stop is killed and replaced."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from llmrouter_collect.extract import Task
from llmrouter_collect.extract.math import Found
from llmrouter_collect.extract.pool import GradePool

SLOW = "10^{10^{10}} - 10^{10^{10}} + 1"  # sympy works on this for many seconds


def drain(pool: GradePool) -> dict[Hashable, Any]:
    results: dict[Hashable, Any] = {}
    while pool.busy:
        results.update(pool.collect(None))
    return results


def test_checks_and_batches_come_back_by_key() -> None:
    task = Task(is_mcq=False, gold="\\frac{1}{2}", choices=None)
    with GradePool(2, 5.0) as pool:
        pool.submit_verify(("a", "b"), "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}")
        pool.submit_verify(("c", "d"), "\\sqrt{3}", "\\sqrt{2}")
        pool.submit_batch(7, [(task, [{"full_response": "So \\boxed{0.5}.", "finish_reason": "stop", "error": None},
                                      {"full_response": None, "finish_reason": None, "error": True}])])
        results = drain(pool)
    assert results[("a", "b")] is True
    assert results[("c", "d")] is False
    [[first, second]] = results[7]
    assert first.outcome == "correct" and first.extraction_rule == "boxed"
    assert second.outcome == "error"


def test_soft_time_limit_stops_a_slow_check() -> None:
    with GradePool(1, 0.3) as pool:
        started = time.monotonic()
        pool.submit_verify("slow", SLOW, "1")
        results = drain(pool)
        assert results == {"slow": "timeout"}
        assert time.monotonic() - started < 10
        pool.submit_verify("next", "2", "2.0")  # the same worker (or its replacement) goes on
        assert drain(pool) == {"next": True}


def test_worker_that_does_not_stop_is_killed_and_replaced() -> None:
    # A zero soft limit disables the in-worker alarm, so only the hard deadline (a grace second) can stop it.
    with GradePool(1, 0.0) as pool:
        started = time.monotonic()
        pool.submit_verify("stuck", SLOW, "1")
        assert drain(pool) == {"stuck": "timeout"}
        assert pool.killed == 1
        assert time.monotonic() - started < 10
        pool.submit_batch(1, [(Task(False, "3", None), [{"full_response": "#### 3", "finish_reason": "stop",
                                                         "error": None}])])
        [[verdict]] = drain(pool)[1]
        assert verdict.outcome == "correct"


def test_found_answers_are_returned_for_symbolic_work() -> None:
    task = Task(is_mcq=False, gold="\\sqrt{2}", choices=None)
    with GradePool(1, 5.0) as pool:
        pool.submit_batch(0, [(task, [{"full_response": "\\boxed{2^{1/2}}", "finish_reason": "stop", "error": None}])])
        [[slot]] = drain(pool)[0]
    assert slot == Found("2^{1/2}", "boxed")
