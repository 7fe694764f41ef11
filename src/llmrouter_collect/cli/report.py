"""`collect report`: graded results → accuracy tables, the router view, training exports and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..console import info, out_console, warn
from ..errors import ConfigError
from . import app
from ._common import run_or_exit

_FORMATS = ("table", "json", "csv", "markdown")


@app.command()
def report(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Graded results files (from `collect extract`), or directories of them (*.jsonl)."),
    ] = None,
    inputs: Annotated[
        list[Path] | None,
        typer.Option("--input", "-i", help="Same as the PATHS arguments (repeatable), as in `collect extract`."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, csv or markdown (to stdout).")
    ] = "table",
    price: Annotated[
        list[str] | None,
        typer.Option("--price", help="MODEL=IN,OUT: USD per million input and output tokens (repeatable)."),
    ] = None,
    prices: Annotated[
        Path | None, typer.Option("--prices", help="Prices file: TOML, JSON or CSV (model,input,output).")
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Write router training data here: long and wide tables (parquet, jsonl, csv)."),
    ] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Write PNG plots here.")] = None,
    by: Annotated[str, typer.Option("--by", help="Break tables down by `category` or `dataset`.")] = "category",
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Share of problems in the test split (by hash of unique_id)."),
    ] = 0.2,
    confidence: Annotated[float, typer.Option("--confidence", help="Coverage of accuracy intervals.")] = 0.95,
    limit: Annotated[
        int, typer.Option("--limit", help="Problems listed in the unsolved / same-wrong-answer tables.")
    ] = 10,
    list_files: Annotated[
        bool,
        typer.Option("--list", help="Only list the files the report would read or skip, with their models, and why."),
    ] = False,
) -> None:
    """Accuracy, pass@k and maj@k per model and category, the router view across models, exports and plots.

    Example: collect report inference_results/ --price gpt-4o=2.5,10 --prices prices.toml --export data/
    """

    def action() -> None:
        from ..report.run import run_report

        output_format = fmt.strip().lower()
        group_by = by.strip().lower()
        given = [*(paths or []), *(inputs or [])]
        if not given:
            raise ConfigError("no input", hint="pass graded results files or directories: collect report DIR")
        if output_format == "md":
            output_format = "markdown"
        if output_format not in _FORMATS:
            raise ConfigError(f"invalid --format {fmt!r}", hint=f"use one of: {', '.join(_FORMATS)}")
        if not 0.0 <= test_fraction <= 1.0:
            raise ConfigError(f"invalid --test-fraction {test_fraction}", hint="a share between 0 and 1, e.g. 0.2")
        if not 0.0 < confidence < 1.0:
            raise ConfigError(f"invalid --confidence {confidence}", hint="a coverage between 0 and 1, e.g. 0.95")
        if limit < 0:
            raise ConfigError(f"invalid --limit {limit}", hint="a whole number, 0 or more")
        if list_files:
            _list_files(given, group_by)
            return
        result = run_report(
            given,
            group_by=group_by,
            price_flags=price or [],
            prices_file=prices,
            export_dir=export,
            plots_dir=plots,
            test_fraction=test_fraction,
            confidence=confidence,
            warn=warn,
        )
        from ..report import render

        if output_format == "table":
            tables = render.render_rich(result.report, limit=limit)
            # Never fold or cut a number: widen the console to what the tables need (a narrow terminal
            # then wraps lines, which loses nothing), and put its width back afterwards. Into a file or
            # a pipe, tables keep their natural width.
            width = out_console.width
            natural = not out_console.is_terminal
            out_console.width = max(width, render.needed_width(out_console, tables, natural=natural))
            try:
                out_console.print(tables, crop=False)
            finally:
                out_console.width = width
        elif output_format == "json":
            out_console.out(render.render_json(result.report), end="", highlight=False)
        elif output_format == "csv":
            out_console.out(render.render_csv(result.report), end="", highlight=False)
        else:
            out_console.out(render.render_markdown(result.report, limit=limit), end="", highlight=False)
        for path in result.written:
            info(f"wrote {path}")

    run_or_exit(action)


def _list_files(paths: list[Path], group_by: str) -> None:
    """Print the files `report` reads (and skips), one line each in reading order (greppable)."""
    from ..report.loader import load

    collection = load(paths, group_by=group_by, warn=warn)
    for source in collection.sources:
        line = f"{source.path}: {source.status}"
        if source.models:
            line += " — " + ", ".join(f"{name}: {count:,} problems" for name, count in sorted(source.models.items()))
        if source.shadowed:
            newer = ", ".join(path.name for path in sorted(source.newer))
            line += f"; {source.shadowed:,} left out (also in the newer {newer})"
        out_console.out(line, highlight=False)
