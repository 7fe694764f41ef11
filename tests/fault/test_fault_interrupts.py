"""kill -9, Ctrl-C and SIGTERM at random moments of `collect infer`, then resume: nothing lost, nothing doubled.

Each trial picks a problem count, k, how the server hands out samples (all k in one request; one choice per
request, FewerChoices(1); or n>1 refused, RejectN, so the client falls back to n=1), a latency and a
concurrency, interrupts one to three runs at random moments, then reruns the same command to the end.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from tests.fault.harness import Plan, Trials, resume_trial

SHAPES = ["n", "fewer", "reject-n"]


def random_plan(rng: random.Random, signals: list[int]) -> Plan:
    return Plan(
        problems=rng.randint(8, 16),
        k=rng.randint(3, 5),
        shape=rng.choice(SHAPES),
        latency=rng.uniform(0.01, 0.08),
        concurrency=rng.randint(1, 4),
        interrupts=signals,
    )


def test_kill_9_at_random_moments_then_resume(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        resume_trial(random_plan(rng, [signal.SIGKILL] * rng.randint(1, 3)), rng, directory)

    trials.run(trial)


def test_ctrl_c_at_random_moments_then_resume(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        signals = [signal.SIGINT] * rng.randint(1, 2)
        if rng.random() < 0.5:
            signals.insert(rng.randint(0, len(signals)), signal.SIGKILL)
        resume_trial(random_plan(rng, signals), rng, directory)

    trials.run(trial)


def test_sigterm_at_random_moments_then_resume(trials: Trials) -> None:
    """SIGTERM (`timeout`, a cancelled CI job, `kill`) behaves like Ctrl-C: the resume hint and exit 143."""

    def trial(rng: random.Random, directory: Path, index: int) -> None:
        resume_trial(random_plan(rng, [signal.SIGTERM] * rng.randint(1, 2)), rng, directory)

    trials.run(trial)
