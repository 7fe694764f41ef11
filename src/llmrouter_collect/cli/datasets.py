"""`collect datasets`: list the built-in benchmarks (source, size, kind, categories, gated, cached)."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich import box
from rich.measure import Measurement
from rich.table import Table

from ..console import out_console
from . import app


@app.command("datasets")
def datasets_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout instead of a table.")] = False,
) -> None:
    """List the built-in benchmarks for `collect infer --dataset NAME`: source, size, kind, gated, cached.

    `cached` means `datasets` has the benchmark in its local cache (HF_DATASETS_CACHE), so it loads offline.
    Any other Hub dataset: `--dataset hf:OWNER/NAME[:CONFIG][@SPLIT] --dataset-map map.toml`.

    Example: collect datasets
    """
    from ..benchmarks import list_benchmarks  # imported here: the cache check imports `datasets`

    rows = list_benchmarks()
    if as_json:
        typer.echo(orjson.dumps([row.as_dict() for row in rows], option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "source", "size", "kind", "categories", "gated", "cached"):
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=True)
    for row in rows:
        table.add_row(
            row.name,
            row.source,
            f"{row.size:,}",
            row.kind,
            row.categories,
            "gated" if row.gated else "",
            "yes" if row.cached else "no",
        )
    # Every cell whole: a pipe or a narrow terminal gets long lines rather than cut names.
    width = out_console.width
    measured = Measurement.get(out_console, out_console.options.update_width(10_000), table)
    out_console.width = max(width, measured.maximum)
    try:
        out_console.print(table, crop=False)
    finally:
        out_console.width = width
