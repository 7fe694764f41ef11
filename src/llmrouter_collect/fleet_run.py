"""Running a fleet: every model's `run_infer` at once in one event loop, each at its own limits, into its own
results file (each resumable on its own), and one outcome per model.

A model that fails (its server refuses the key, its file is locked, ...) does not stop the others: its error is
its outcome. An interruption (Ctrl-C, a stop signal: the main task is cancelled) stops every model, each keeping
what it wrote, as a single run does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CollectError
from .fleet import FleetModel
from .infer import InferStats, InferSummary, RunPlan, output_path, plan_infer, run_infer


@dataclass(slots=True)
class FleetOutcome:
    """What became of one model of the fleet."""

    model: FleetModel
    stats: InferStats = field(default_factory=InferStats)
    plan: RunPlan | None = None
    summary: InferSummary | None = None
    error: CollectError | None = None
    elapsed_s: float = 0.0

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.name

    @property
    def problem(self) -> str | None:
        """Why this model did not finish its plan (an error, or why it stopped asking), or None."""
        if self.error is not None:
            return self.error.message
        if self.summary is not None and self.summary.stopped is not None:
            return self.summary.stopped.message
        return None

    @property
    def ok(self) -> bool:
        """No error, and every problem holds its k good responses (as a single run's exit code 0)."""
        if self.problem is not None:
            return False
        return self.summary is None or self.summary.left_failed == 0

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Where the model was asked: the fleet's endpoints, or the base URL the run used."""
        if self.model.endpoints:
            return self.model.endpoints
        return (self.plan.api_base,) if self.plan is not None else ()

    @property
    def output_path(self) -> Path:
        """The model's results file."""
        if self.summary is not None:
            return self.summary.output_path
        return output_path(self.model.settings, self.model.name)


def new_outcomes(models: Sequence[FleetModel]) -> list[FleetOutcome]:
    """One empty outcome per model, whose `stats` a progress display may read while the fleet runs."""
    return [FleetOutcome(model=model) for model in models]


async def run_fleet(
    outcomes: Sequence[FleetOutcome],
    *,
    warn: Callable[[str, str], None] = lambda name, message: None,
    on_plan: Callable[[str, RunPlan], None] = lambda name, plan: None,
) -> Sequence[FleetOutcome]:
    """Run every model's `run_infer` at once and fill in its outcome (from `new_outcomes`).

    Args:
        outcomes: one per model; their `stats` are updated live.
        warn: receives (model name, warning).
        on_plan: receives (model name, plan) before that model sends its first completion request.

    Returns:
        The outcomes, filled in. A CollectError of one model is its outcome's `error`; other exceptions (bugs)
        and cancellation stop every model and propagate.
    """
    async with asyncio.TaskGroup() as group:
        for outcome in outcomes:
            group.create_task(_run_one(outcome, warn, on_plan))
    return outcomes


async def plan_fleet(
    outcomes: Sequence[FleetOutcome], *, warn: Callable[[str, str], None] = lambda name, message: None
) -> Sequence[FleetOutcome]:
    """Every model's plan (`collect infer --fleet F --dry-run`), at once; a model's CollectError is its outcome."""
    async with asyncio.TaskGroup() as group:
        for outcome in outcomes:
            group.create_task(_plan_one(outcome, warn))
    return outcomes


async def _run_one(
    outcome: FleetOutcome,
    warn: Callable[[str, str], None],
    on_plan: Callable[[str, RunPlan], None],
) -> None:
    name = outcome.name

    def plan_told(plan: RunPlan) -> None:
        outcome.plan = plan
        on_plan(name, plan)

    started = time.monotonic()
    try:
        outcome.summary = await run_infer(
            outcome.model.settings,
            stats=outcome.stats,
            warn=lambda message: warn(name, message),
            on_plan=plan_told,
        )
    except CollectError as error:
        outcome.error = error
    finally:
        outcome.elapsed_s = time.monotonic() - started


async def _plan_one(outcome: FleetOutcome, warn: Callable[[str, str], None]) -> None:
    try:
        outcome.plan = await plan_infer(outcome.model.settings, warn=lambda message: warn(outcome.name, message))
    except CollectError as error:
        outcome.error = error


def fleet_failed(outcomes: Sequence[FleetOutcome]) -> bool:
    """True if any model failed or left problems without their k responses (the fleet's exit code is 1)."""
    return not all(outcome.ok for outcome in outcomes)

