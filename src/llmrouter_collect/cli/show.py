"""`collect show`: read responses beside their extracted answers and verdicts, filtered, in the terminal or HTML."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..console import info, out_console, warn
from ..errors import ConfigError
from . import app
from ._common import run_or_exit

if TYPE_CHECKING:
    from ..view import Filters, Problem, Shown

# The viewer (rich renderables, the store reader) is imported when the command runs.


@app.command(no_args_is_help=True)
def show(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Graded files (from `collect extract`) or results files (from `collect infer`), "
                       "or directories of them (*.jsonl).", show_default=False),
    ],
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only this model (repeatable; * and ? match any).")
    ] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option("--outcome", "-O", help="Only this outcome: correct, wrong, unparsed, truncated, error "
                     "(repeatable).", show_default=False),
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="Only this category (repeatable; any case).")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="Only this dataset (repeatable; any case).")
    ] = None,
    problem: Annotated[
        list[str] | None, typer.Option("--problem", "-p", help="Only this unique_id (repeatable; * matches any).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most N responses (0: all).")] = 20,
    max_chars: Annotated[
        int,
        typer.Option("--max-chars", help="Cut the middle of longer responses, keeping the end (0: never cut)."),
    ] = 2000,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML page here instead of the terminal.")
    ] = None,
    pager: Annotated[
        bool, typer.Option("--pager/--no-pager", help="Page the output in a terminal (less).")
    ] = True,
) -> None:
    """Show responses with their question, reference, extracted answer, outcome and extraction rule.

    Reads graded files (and results files of `collect infer`, whose responses have no verdict yet), streaming.
    Long responses keep their start and their end, where the final answer is.

    Example: collect show inference_results/ --outcome unparsed --model my-model --limit 5
    """

    def action() -> None:
        from ..view import DEFAULT_MAX_CHARS, Filters, Tally, iter_shown, pick_files

        if limit < 0:
            raise ConfigError(f"invalid --limit {limit}", hint="a whole number, 0 (all) or more")
        if max_chars < 0:
            raise ConfigError(f"invalid --max-chars {max_chars}", hint=f"a whole number, e.g. {DEFAULT_MAX_CHARS}")
        filters = Filters(
            models=tuple(model or ()),
            outcomes=tuple(value.strip().lower() for value in outcome or ()),
            categories=tuple(category or ()),
            datasets=tuple(dataset or ()),
            problems=tuple(problem or ()),
        )
        files = pick_files(paths)
        tally = Tally()
        items = iter_shown(files, filters, tally)
        if html_out is not None:
            shown, more = _write_html(html_out, items, filters, limit=limit, max_chars=max_chars)
        else:
            shown, more = _print(items, limit=limit, max_chars=max_chars, page=pager and limit > 0)
        for line in tally.skipped:
            warn(line)
        if filters.outcomes:
            for path, count in tally.ungraded.items():
                warn(f"{path}: {count:,} responses are not graded, so --outcome does not match them "
                     f"(run `collect extract -i {path}` first)")
        for line in _summary(shown, more, filters, limit):
            info(line)
        if html_out is not None:
            info(f"wrote {html_out}")

    run_or_exit(action)


def _summary(shown: int, more: bool, filters: Filters, limit: int) -> list[str]:
    if shown == 0:
        return [f"no response matches ({filters.describe()})"]
    lines = [f"{shown:,} response(s) shown ({filters.describe()})"]
    if more:
        lines.append(f"more responses match: raise --limit (now {limit}; 0 shows all) or narrow the filters")
    return lines


def _print(items: Iterator[Shown], *, limit: int, max_chars: int, page: bool) -> tuple[int, bool]:
    from ..view import render_problem, render_response

    shown = 0
    more = False
    last: Problem | None = None
    use_pager = page and out_console.is_terminal
    if use_pager:
        # As git does: less passes colours through, quits when the text fits one screen and leaves it there.
        os.environ.setdefault("LESS", "FRX")
    with out_console.pager(styles=True) if use_pager else contextlib.nullcontext():
        for item in items:
            if limit and shown == limit:
                more = True
                break
            if item.problem is not last:
                out_console.print(render_problem(item.problem, max_chars=max_chars), soft_wrap=False)
                last = item.problem
            out_console.print(render_response(item, max_chars=max_chars), soft_wrap=False)
            shown += 1
    return shown, more


def _write_html(
    path: Path, items: Iterator[Shown], filters: Filters, *, limit: int, max_chars: int
) -> tuple[int, bool]:
    from ..errors import StoreError
    from ..fileio import atomic_open
    from ..view import HtmlPage

    if path.is_dir():
        raise ConfigError(f"--html {path} is a directory", hint="pass a file name, e.g. --html responses.html")
    shown = 0
    more = False
    try:
        with atomic_open(path) as handle:
            page = HtmlPage(handle, title=f"collect show: {filters.describe()}", max_chars=max_chars)
            for item in items:
                if limit and shown == limit:
                    more = True
                    break
                page.add(item)
                shown += 1
            page.close(_summary(shown, more, filters, limit))
    except OSError as err:
        raise StoreError(f"cannot write --html {path}: {err.strerror}") from None
    return shown, more
