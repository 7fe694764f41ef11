"""`collect extract`: grade results files (flags → Settings → runner.grade_path) and print a summary per file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ..console import LiveStatus, err_console, info, out_console, warn
from ..console import print_error as print_collect_error
from . import app
from ._common import run_or_exit

if TYPE_CHECKING:
    from ..extract.runner import FileSummary

# The grader (regexes, the worker pool) and the settings (pydantic-settings) are imported when the command runs,
# so `collect --help` does not pay for them.


@app.command(no_args_is_help=True)
def extract(
    input_file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="A results file of `collect infer`, or a directory of them."),
    ] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", "-i", help="The same as FILE (the older spelling).")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o",
            help="Output file, or directory (an existing one, or a name ending in /). Default: X.graded.jsonl "
            "beside X, also for the files of a directory. Only earlier outputs of extract are replaced.",
        ),
    ] = None,
    by_category: Annotated[
        bool, typer.Option("--by-category", help="Also print a table per category.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")
    ] = None,
    grade_timeout: Annotated[
        float | None,
        typer.Option("--grade-timeout", help="Seconds one symbolic math check may take (default 5)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Audit a graded file: regrade it with the current grader and list the responses whose verdict "
            "would change. Nothing is written.",
        ),
    ] = False,
) -> None:
    """Grade responses: extract each final answer, compare it with the reference, write graded results.

    Every response gains `extracted_answer`, `is_correct`, `outcome` (correct, wrong, unparsed, truncated,
    error) and `extraction_rule`. The input is never modified; a file still being written is read up to its
    last complete line.

    Example: collect extract inference_results/model_math500.jsonl --by-category
    """
    input_path = _input(input_file, input_path)
    from ..extract.runner import FileFailure, grade_path
    from ..settings import load_settings

    settings = run_or_exit(lambda: load_settings(workers=workers, grade_timeout=grade_timeout))
    if check:
        _check(input_path, workers=settings.workers, timeout=settings.grade_timeout)
        return

    progress = _Progress()

    def announce(source: Path, target: Path) -> None:
        info(f"grading {source} → {target}")
        progress.file, progress.records, progress.started = source.name, 0, time.monotonic()

    def advance(records: int) -> None:
        progress.records = records

    def run() -> int:
        failures = 0
        results = grade_path(
            input_path, output, workers=settings.workers, timeout=settings.grade_timeout, on_file=announce,
            on_record=advance,
        )
        with LiveStatus(progress.render):
            for result in results:
                if isinstance(result, FileFailure):
                    failures += 1
                    print_collect_error(result.error)
                    continue
                _print_summary(result, by_category=by_category, timeout=settings.grade_timeout)
        return failures

    failures = run_or_exit(run)
    if failures:
        err_console.print(f"[bold red]{failures} file(s) could not be graded[/]")
        raise typer.Exit(1)


_CHANGES_SHOWN = 50


def _check(path: Path, *, workers: int | None, timeout: float) -> None:
    """`--check`: regrade a graded file in a temporary place and print the verdicts that would change."""
    from ..extract import grader_versions
    from ..extract.runner import check_file

    summary = run_or_exit(lambda: check_file(path, workers=workers, timeout=timeout))
    now = ", ".join(f"{name} {value}" for name, value in grader_versions().items())
    out_console.print(f"[bold]{escape(str(path))}[/]: {summary.responses} responses")
    for grader in sorted(summary.old_graders):
        out_console.print(f"  graded by:  {escape(grader)}")
    out_console.print(f"  regraded by: {escape(now)}")
    for change in summary.changes[:_CHANGES_SHOWN]:
        where = f"{change.model}/" if change.model else ""
        out_console.print(
            f"  {escape(where + change.unique_id)}#{change.index}: {change.old_outcome} "
            f"{change.old_answer!r} → {change.new_outcome} {change.new_answer!r}",
        )
    if len(summary.changes) > _CHANGES_SHOWN:
        out_console.print(f"  … and {len(summary.changes) - _CHANGES_SHOWN} more")
    if summary.missing:
        warn(f"{summary.missing} response(s) of the regraded file have no verdict in {path}")
    out_console.print(
        f"  {len(summary.changes)} of {summary.responses} verdicts would change; "
        + ("rerun `collect extract` on the results file to apply them" if summary.changes else "nothing to do")
    )


def _input(argument: Path | None, option: Path | None) -> Path:
    """The input: FILE or --input (both only when they agree)."""
    if argument is not None and option is not None and argument != option:
        err_console.print(f"error: two inputs given ({escape(str(argument))} and --input {escape(str(option))})")
        raise typer.Exit(2)
    given = argument or option
    if given is None:
        err_console.print("error: give the results file to grade: collect extract FILE (or --input FILE)")
        raise typer.Exit(2)
    return given


@dataclass
class _Progress:
    """What the live status line shows while a file is graded."""

    file: str = ""
    records: int = 0
    started: float = field(default_factory=time.monotonic)

    def render(self) -> str:
        return f"grading {self.file}: {self.records} problems, {time.monotonic() - self.started:.0f}s"


_SHORT = {"truncated": "trunc"}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _print_summary(summary: FileSummary, *, by_category: bool, timeout: float) -> None:
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table

    from ..extract import GRADER_ERROR, OUTCOMES
    from ..extract.runner import ratio

    if summary.torn_line is not None:
        warn(f"{summary.input}: line {summary.torn_line} is incomplete (a run still writing?); it was left out")
    if summary.short:
        warn(
            f"{summary.input}: {summary.short} problem(s) have fewer responses than asked (k_requested); the run "
            "is unfinished — rerun the same `collect infer` command to complete it, then grade again"
        )
    if summary.timeouts:
        warn(
            f"{summary.timeouts} math check(s) exceeded the {timeout:g}s limit and were graded wrong "
            "(raise --grade-timeout to retry them)"
        )
    if summary.grader_errors:
        warn(
            f"{summary.input}: the grader failed on {summary.grader_errors} response(s) (an error, or extraction past "
            f"--grade-timeout); they are graded unparsed with extraction_rule {GRADER_ERROR}, never wrong"
        )
    counts = summary.counts
    answered = counts["correct"] + counts["wrong"]
    out_console.print(
        f"[bold]{escape(str(summary.output))}[/]: {summary.responses} responses to {summary.records} problems"
    )
    out_console.print(
        f"  accuracy {_fmt(summary.accuracy)} ({counts['correct']}/{summary.responses})"
        f" · over answered {_fmt(summary.answered_accuracy)} ({counts['correct']}/{answered})"
    )
    out_console.print("  " + " · ".join(f"{outcome} {counts[outcome]}" for outcome in OUTCOMES))
    if by_category and summary.by_category:
        table = Table(
            title=f"by category — {escape(summary.input.name)}", title_justify="left", box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        headers = ["n", *(_SHORT.get(outcome, outcome) for outcome in OUTCOMES), "acc", "acc|ans"]
        rows = []
        for category in sorted(summary.by_category):
            row = summary.by_category[category]
            total = sum(row.values())
            rows.append(
                [escape(category), str(total), *(str(row[outcome]) for outcome in OUTCOMES),
                 _fmt(ratio(row["correct"], total)), _fmt(ratio(row["correct"], row["correct"] + row["wrong"]))]
            )  # fmt: skip
        total_row = [
            "all", str(summary.responses), *(str(counts[outcome]) for outcome in OUTCOMES),
            _fmt(summary.accuracy), _fmt(summary.answered_accuracy),
        ]  # fmt: skip
        # Names are never cut: on a narrow terminal they fold onto more lines; into a file or a pipe the table
        # takes its natural width.
        longest = max(len("category"), *(len(category) for category in summary.by_category))
        table.add_column("category", overflow="fold", min_width=min(longest, 16))
        for i, header in enumerate(headers, start=1):
            # Numbers are never cut: each column is at least as wide as its widest cell.
            widest = max(len(header), len(total_row[i]), *(len(r[i]) for r in rows))
            table.add_column(header, justify="right", min_width=widest, no_wrap=True)
        for cells in rows:
            table.add_row(*cells)
        table.add_section()
        table.add_row(*total_row)
        width = out_console.width
        measured = Measurement.get(out_console, out_console.options.update_width(10_000), table)
        # A narrow terminal gets what keeps every number whole (its lines then wrap, which loses nothing).
        out_console.width = max(width, measured.minimum if out_console.is_terminal else min(measured.maximum, 200))
        try:
            out_console.print(table, crop=False)
        finally:
            out_console.width = width
