"""`collect infer --fleet F` (or `--model a --model b`): build the fleet, run it with one status line per model,
and close with one summary table (stderr). The work is `..fleet` and `..fleet_run`; this module only renders."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from ..console import err_console, info, print_error, warn
from ..errors import CollectError, ConfigError, EndpointError
from ._common import run_or_exit
from .infer import print_endpoints, print_plan, status_line

if TYPE_CHECKING:
    from ..fleet import FleetModel
    from ..fleet_run import FleetOutcome
    from ..settings import Settings


def infer_fleet(settings: Settings, names: Sequence[str] | None, *, dry_run: bool) -> None:
    """Run (or, with `dry_run`, plan) every model of the fleet; exit 1 if any model failed or left problems."""
    from ..benchmarks import is_hub_spec
    from ..fleet_run import fleet_failed, new_outcomes, plan_fleet, run_fleet

    models = run_or_exit(lambda: _build(settings, names))
    hub = sorted({name for model in models for name in model.settings.dataset_names if is_hub_spec(name)})
    if hub:
        info(f"loading {', '.join(hub)} (Hugging Face Hub or its local cache) …")
    outcomes = new_outcomes(models)
    if dry_run:
        run_or_exit(lambda: asyncio.run(plan_fleet(outcomes, warn=_warn)))
        for outcome in outcomes:
            if outcome.plan is not None:
                print_plan(outcome.plan)
            _print_problem(outcome)
        info(f"dry run of {len(outcomes)} models: nothing was sent (but GET /models) and nothing was written")
        if any(outcome.error is not None for outcome in outcomes):
            raise typer.Exit(1)
        return
    width = max(len(outcome.name) for outcome in outcomes)

    def status() -> str:
        return "\n".join(f"{outcome.name:<{width}}  {_status(outcome)}" for outcome in outcomes)

    from ..console import LiveStatus

    with LiveStatus(status):
        run_or_exit(
            lambda: asyncio.run(run_fleet(outcomes, warn=_warn, on_plan=lambda name, plan: print_plan(plan))),
            interrupted="interrupted; every finished response of every model is saved — rerun the same command "
            "to resume",
            stop_signals=True,
        )
    print_fleet_summary(outcomes)
    if fleet_failed(outcomes):
        raise typer.Exit(1)


def _build(settings: Settings, names: Sequence[str] | None) -> list[FleetModel]:
    from ..fleet import load_fleet, models_fleet

    if settings.fleet is not None:
        if names:
            raise ConfigError(
                f"--model and --fleet {settings.fleet} both name models", hint="list every model in the fleet file"
            )
        return load_fleet(settings.fleet, settings, os.environ)
    return models_fleet(names or [], settings)


def _warn(name: str, message: str) -> None:
    warn(f"{name}: {message}")


def _status(outcome: FleetOutcome) -> str:
    if outcome.error is not None:
        return "stopped: " + outcome.error.message[:100]
    if outcome.plan is None:
        return "starting …"
    if outcome.summary is not None:
        return "finished"
    return status_line(outcome.stats)


def print_fleet_summary(outcomes: Sequence[FleetOutcome]) -> None:
    """One table, one row per model (stderr), then each model's error or what is left to retry."""
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title="fleet", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("model", "endpoint", "done", "failed", "responses", "tokens in/out", "time", "output", "result"):
        table.add_column(column, justify="right" if column in ("done", "failed", "responses", "time") else "left")
    for outcome in outcomes:
        stats = outcome.stats
        if outcome.problem is not None:
            result = "[red]error[/]"
        elif outcome.ok:
            result = "[green]ok[/]"
        else:
            result = "[yellow]incomplete[/]"
        table.add_row(
            outcome.name,
            "\n".join(outcome.endpoints) or "-",
            f"{stats.problems_done}" + (f" (+{stats.skipped_done} held)" if stats.skipped_done else ""),
            str(stats.problems_failed + stats.problems_not_asked + stats.skipped_exhausted),
            str(stats.responses),
            f"{stats.prompt_tokens}/{stats.completion_tokens}",
            f"{outcome.elapsed_s:.1f} s",
            str(outcome.output_path),
            result,
            end_section=False,
        )
    # Never cut a path or a URL: widen the console to the table's natural width (a narrow terminal then wraps
    # its lines, losing nothing), as `collect report` does, and put the width back.
    width = err_console.width
    natural = Measurement.get(err_console, err_console.options.update(width=10_000), table).maximum
    err_console.width = max(width, natural)
    try:
        err_console.print(table, crop=False)
    finally:
        err_console.width = width
    for outcome in outcomes:
        print_endpoints(outcome.stats.endpoints, prefix=f"{outcome.name}: ")
        _print_problem(outcome)
        for message, count in outcome.stats.errors_by_message.most_common(3):
            warn(f"{outcome.name}: {count} failed request(s): {message}")
        if outcome.problem is None and not outcome.ok:
            info(f"{outcome.name}: problems left without k responses: rerun the same command to retry them")


def _print_problem(outcome: FleetOutcome) -> None:
    """A model's error (or why it stopped asking), as `error: MODEL: message` and its hint."""
    error = outcome.error
    if error is not None:
        hint = error.hint
        variable = outcome.model.api_key_env
        if isinstance(error, EndpointError) and error.status in (401, 403) and variable:
            hint = f"check the key in {variable} (the fleet file's api_key_env for {outcome.name})"
        print_error(CollectError(f"{outcome.name}: {error.message}", hint=hint))
    elif outcome.summary is not None and outcome.summary.stopped is not None:
        stopped = outcome.summary.stopped
        print_error(CollectError(f"{outcome.name}: {stopped.message}", hint=stopped.hint))
