"""Render a Report as rich tables, Markdown, CSV or JSON (plain strings and renderables; no printing here)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .loader import OUTCOMES
from .summary import GroupSummary, Report

FORMATS = ("table", "json", "csv", "markdown")


@dataclass(slots=True)
class Section:
    """One table of the report: a title, column names, rows of cells, and notes printed under it."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    bold: set[tuple[int, int]] = field(default_factory=set)
    """(row, column) cells to emphasize (the best value of a row)."""
    rule_before: set[int] = field(default_factory=set)
    """Rows preceded by a separator line."""


def pct(value: float | None, digits: int = 1) -> str:
    """0.4631 → `46.3`; None → `—`."""
    return "—" if value is None else f"{100 * value:.{digits}f}"


def money(value: float | None) -> str:
    """USD with enough digits to compare small per-request costs; None → `—`."""
    if value is None:
        return "—"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:.2f}"
    if value == 0:
        return "$0"
    # three significant digits, never in exponent notation: $0.0000548, $0.00131, $0.405
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


def seconds(value: float | None) -> str:
    """Seconds with one decimal; None → `—`."""
    return "—" if value is None else f"{value:.1f}"


def number(value: float | None) -> str:
    """A mean count, rounded; None → `—`."""
    return "—" if value is None else f"{value:,.0f}"


def _interval(row: GroupSummary) -> str:
    if row.accuracy is None:
        return "—"
    return f"{pct(row.accuracy)} [{pct(row.ci_low)}, {pct(row.ci_high)}]"


def build_sections(report: Report, *, limit: int = 10) -> list[Section]:
    """The report's tables, in reading order, as plain cells shared by the table and Markdown renderers."""
    priced = any(model.price is not None for model in report.models)
    level = f"{round(report.confidence * 100):d}%"
    sections: list[Section] = []

    accuracy = Section(
        title="Accuracy (" + ("each model over its own problems" if report.problem_sets_differ else "all problems")
        + "; %)",
        columns=["model", "problems", "k", f"accuracy [{level} CI]", "answered", "pass@1", "pass@k", "maj@k"],
        rows=[],
        notes=[
            "accuracy: correct / all responses (errors, unparsed and truncated count as not correct); "
            "answered: correct / (correct + wrong), over responses with a final answer",
            "pass@k: unbiased estimator at the model's k; maj@k: majority vote over extracted answers, "
            "a tie that includes the correct answer scores 1/(answers tied)",
        ],
    )
    for model in report.models:
        row = model.overall
        accuracy.rows.append(
            [
                model.model,
                f"{row.problems:,}",
                str(row.k),
                _interval(row),
                pct(row.accuracy_answered),
                pct(row.pass_at.get(1)),
                pct(row.pass_at_k),
                pct(row.majority),
            ]
        )
    _bold_best_in_columns(accuracy, [3, 4, 5, 6, 7])
    if report.problem_sets_differ:
        _add_common_column(report, accuracy)
    sections.append(accuracy)

    outcomes = Section(
        title="Outcomes (% of responses)",
        columns=["model", "responses", *OUTCOMES],
        rows=[
            [model.model, f"{model.overall.responses:,}", *[pct(model.overall.rates[o]) for o in OUTCOMES]]
            for model in report.models
        ],
        notes=["error: the request failed; unparsed: no final answer; truncated: cut at max_tokens, no answer"],
    )
    sections.append(outcomes)

    usage_columns = ["model", "in tok", "out tok", "p50 s", "p95 s"]
    if priced:
        usage_columns += ["$/problem", "$/correct", "$ total"]
    usage = Section(
        title="Tokens and latency per response" + (", cost" if priced else ""),
        columns=usage_columns,
        rows=[],
        notes=["tokens and latency over responses whose request did not fail"],
    )
    if priced:
        usage.notes.append("$/problem is the cost of all k samples of a problem")
    for model in report.models:
        row = model.overall
        cells = [
            model.model,
            number(row.prompt_tokens_mean),
            number(row.completion_tokens_mean),
            seconds(row.latency_p50),
            seconds(row.latency_p95),
        ]
        if priced:
            cells += [money(row.cost_per_problem), money(row.cost_per_correct), money(row.cost_total)]
        usage.rows.append(cells)
    if report.unpriced and priced:
        usage.notes.append("no price for: " + ", ".join(report.unpriced))
    sections.append(usage)

    group_title = report.group_by
    for model in report.models:
        sampled = model.overall.k > 1  # with one sample, pass@k and maj@k repeat the accuracy
        columns = [group_title, "problems", f"accuracy [{level} CI]", "answered"]
        columns += ["pass@k", "maj@k"] if sampled else []
        columns += ["no answer", "error", "out tok"]
        columns += ["$/problem"] if priced else []
        section = Section(
            title=f"{model.model} by {group_title} (%)",
            columns=columns,
            rows=[],
            notes=(
                ["no answer: unparsed or truncated; per-group prompt tokens and latency are in --format csv/json"]
                if model is report.models[-1]
                else []
            ),
        )
        for row in [*model.groups, model.overall]:
            cells = [row.group, f"{row.problems:,}", _interval(row), pct(row.accuracy_answered)]
            cells += [pct(row.pass_at_k), pct(row.majority)] if sampled else []
            no_answer = (row.rates["unparsed"] or 0.0) + (row.rates["truncated"] or 0.0)
            cells += [pct(no_answer if row.responses else None), pct(row.rates["error"])]
            cells.append(number(row.completion_tokens_mean))
            cells += [money(row.cost_per_problem)] if priced else []
            section.rows.append(cells)
        section.rule_before.add(len(model.groups))
        sections.append(section)

    if len(report.models) > 1:
        sections.append(_side_by_side(report))
    sections.append(_pass_curve(report))
    sections.extend(_router_sections(report, limit=limit, priced=priced))
    return sections


def _add_common_column(report: Report, section: Section) -> None:
    """The models answered different problems: say so, and add their accuracy on the problems they share."""
    common = report.router.common_problems
    column = len(section.columns)
    section.columns.append(f"common {common:,}")
    for row, model in zip(section.rows, report.models, strict=True):
        row.append(pct(model.common_accuracy))
    # "best" over different problem sets is the comparison this column replaces: only its best is bold
    section.bold = set()
    _bold_best_in_columns(section, [column])
    counts = ", ".join(f"{model.model}: {model.overall.problems:,}" for model in report.models)
    section.notes.insert(
        0,
        f"the models answered different problems ({counts}), so the rows above do not compare like for like; "
        f"common {common:,}: accuracy over the {common:,} problems every model answered",
    )


def _bold_best_in_columns(section: Section, columns: list[int]) -> None:
    if len(section.rows) < 2:
        return
    for column in columns:
        values = [_leading_number(row[column]) for row in section.rows]
        best = max((v for v in values if v is not None), default=None)
        if best is None:
            continue
        for index, value in enumerate(values):
            if value == best:
                section.bold.add((index, column))


def _leading_number(cell: str) -> float | None:
    head = cell.split(" ")[0]
    try:
        return float(head)
    except ValueError:
        return None


def _side_by_side(report: Report) -> Section:
    names = [model.model for model in report.models]
    groups = sorted({row.group for model in report.models for row in model.groups})
    lookup = {(row.model, row.group): row for model in report.models for row in [*model.groups, model.overall]}
    section = Section(
        title=f"Accuracy by {report.group_by}, side by side (%; best in bold)",
        columns=[report.group_by, *names],
        rows=[],
    )
    for group in [*groups, "ALL"]:
        cells = [group]
        values: list[float | None] = []
        for name in names:
            row = lookup.get((name, group))
            values.append(row.accuracy if row is not None else None)
            cells.append(pct(values[-1]))
        section.rows.append(cells)
        present = [v for v in values if v is not None]
        if len(present) > 1:
            best = max(present)
            for j, value in enumerate(values):
                if value is not None and abs(value - best) < 1e-12:
                    section.bold.add((len(section.rows) - 1, j + 1))
    section.rule_before.add(len(groups))
    return section


def _pass_curve(report: Report) -> Section:
    top = max((model.overall.k for model in report.models), default=0)
    ks = _k_columns(top)
    section = Section(
        title="pass@k by k (%)",
        columns=["model", *[f"k={k}" for k in ks], "maj@k"],
        rows=[],
        notes=["pass@k averages over problems with at least k samples"],
    )
    for model in report.models:
        row = model.overall
        section.rows.append([model.model, *[pct(row.pass_at.get(k)) for k in ks], pct(row.majority)])
    return section


def _k_columns(top: int) -> list[int]:
    if top <= 10:
        return list(range(1, top + 1))
    picks = {1, 2, 4, 8, 16, 32, 64, 128, 256, top}
    return sorted(k for k in picks if k <= top)


def _router_sections(report: Report, *, limit: int, priced: bool) -> list[Section]:
    view = report.router
    if view.common_problems == 0:
        return [
            Section(
                title="Router view",
                columns=["note"],
                rows=[["no problem was answered by every model, so models cannot be compared"]],
            )
        ]
    sections: list[Section] = []
    missing = {name: count for name, count in view.missing.items() if count}
    notes = [
        f"over the {view.common_problems:,} problems every model answered; each problem counts once, "
        "a model scores its fraction of correct samples on it",
    ]
    if missing:
        notes.append(
            "not in the router view: "
            + "; ".join(f"{m} is missing {c:,} problem(s) the others have" for m, c in missing.items())
        )
    if len(view.models) > 1:
        columns = ["strategy", "accuracy %", "$/query" if priced else "", "routed to"]
        columns = [column for column in columns if column]
        strategies = Section(title="Router view", columns=columns, rows=[], notes=notes)
        for point in view.points:
            cells = [point.model, pct(point.accuracy)]
            if priced:
                cells.append(money(point.cost_per_query))
            cells.append("")
            strategies.rows.append(cells)
        strategies.rule_before.add(len(view.points))
        for strategy in [view.best_single, view.category_router, view.oracle]:
            if strategy is None:
                continue
            cells = [strategy.name, pct(strategy.accuracy)]
            if priced:
                cells.append(money(strategy.cost_per_query))
            cells.append(_routed(strategy.routed))
            strategies.rows.append(cells)
        if view.coverage is not None:
            cells = ["any sample of any model correct", pct(view.coverage)]
            if priced:
                cells.append("")
            cells.append("")
            strategies.rows.append(cells)
        if view.held_out is not None:
            held = view.held_out
            strategies.notes.append(
                f"held out ({held.test_problems:,} test-split problems, choices made on {held.train_problems:,} "
                f"train-split ones): best single "
                f"{held.best_single_model} {pct(held.best_single_accuracy)}%, {report.group_by} router "
                f"{pct(held.category_router_accuracy)}%, oracle {pct(held.oracle_accuracy)}%"
            )
        if view.split_warning is not None:
            strategies.notes.append(f"warning: {view.split_warning}")
        if priced:
            strategies.notes.append("$/query: the cost of one request to the chosen model")
        elif report.unpriced:
            strategies.notes.append("costs need prices: --price MODEL=IN,OUT (USD per million tokens) or --prices")
        sections.append(strategies)
        if view.category_router is not None:
            sections.append(
                Section(
                    title=f"{report.group_by.capitalize()} router choices",
                    columns=[report.group_by, "model"],
                    rows=[[group, model] for group, model in view.category_router.choices.items()],
                )
            )
    unsolved = Section(
        title=f"Unsolved by every model: {len(view.unsolved):,} of {view.common_problems:,} problems",
        columns=["unique_id", report.group_by],
        rows=[[item.unique_id, item.group] for item in view.unsolved[:limit]],
    )
    if len(view.unsolved) > limit:
        unsolved.notes.append(f"… and {len(view.unsolved) - limit:,} more (all of them in --format json)")
    if view.unsolved:
        sections.append(unsolved)
    else:
        sections.append(Section(title="Unsolved by every model: none", columns=[], rows=[]))
    if len(view.models) > 1:
        count = len(view.agreed_wrong)
        agreed = Section(
            title=f"Same wrong answer from every model: {count:,} (is the gold answer right?)",
            columns=["unique_id", report.group_by, "answer"],
            rows=[[item.unique_id, item.group, item.answer or ""] for item in view.agreed_wrong[:limit]],
        )
        if len(view.agreed_wrong) > limit:
            agreed.notes.append(f"… and {len(view.agreed_wrong) - limit:,} more (all of them in --format json)")
        sections.append(agreed if view.agreed_wrong else Section(title=agreed.title, columns=[], rows=[]))
    return sections


def _routed(routed: dict[str, int]) -> str:
    total = sum(routed.values())
    if len(routed) == 1:
        return next(iter(routed))
    parts = sorted(routed.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{name} {100 * count / total:.0f}%" for name, count in parts[:3])
    rest = sum(count for _, count in parts[3:])
    return shown + (f", {len(parts) - 3} others {100 * rest / total:.0f}%" if rest else "")


def render_rich(report: Report, *, limit: int = 10) -> Group:
    """The report as rich tables, for the terminal."""
    parts: list[RenderableType] = []
    for section in build_sections(report, limit=limit):
        if not section.columns:
            parts.append(Text(section.title, style="bold"))
            parts.append(Text(""))
            continue
        table = Table(title=section.title, title_justify="left", title_style="bold", header_style="bold cyan")
        for index, column in enumerate(section.columns):
            numeric = index > 0 and all(_looks_numeric(row[index]) for row in section.rows)
            # a number is never cut or folded: its column is at least as wide as its widest cell
            widest = max((len(row[index]) for row in section.rows), default=0)
            table.add_column(
                column,
                justify="right" if numeric else "left",
                overflow="fold",
                min_width=max(widest, 4) if numeric else min(widest, 12),
            )
        for r, row in enumerate(section.rows):
            styled = [Text(cell, style="bold green" if (r, c) in section.bold else "") for c, cell in enumerate(row)]
            table.add_row(*styled, end_section=(r + 1) in section.rule_before)
        parts.append(table)
        for note in section.notes:
            parts.append(Text(note, style="dim"))
        parts.append(Text(""))
    return Group(*parts)


def needed_width(console: Console, renderable: Group, *, natural: bool = False) -> int:
    """The width the report's tables need.

    Args:
        console: the console they will be printed on.
        renderable: the output of `render_rich`.
        natural: the width that shows every cell on one line (for files and pipes, capped at 160
            columns); else the narrowest width that keeps every number whole (names may fold).
    """
    widths = []
    for part in renderable.renderables:
        if isinstance(part, Table):
            measured = Measurement.get(console, console.options.update_width(10_000), part)
            widths.append(min(measured.maximum, 160) if natural else measured.minimum)
    return max(widths, default=console.width)


def _looks_numeric(cell: str) -> bool:
    return cell == "" or cell[0] in "0123456789$—-"


def render_markdown(report: Report, *, limit: int = 10) -> str:
    """The report as GitHub-flavoured Markdown tables, for papers and READMEs."""
    out: list[str] = []
    for section in build_sections(report, limit=limit):
        out.append(f"### {section.title}")
        out.append("")
        if section.columns:
            out.append("| " + " | ".join(_md(column) for column in section.columns) + " |")
            aligns = [
                "---:" if i > 0 and all(_looks_numeric(row[i]) for row in section.rows) else "---"
                for i in range(len(section.columns))
            ]
            out.append("| " + " | ".join(aligns) + " |")
            for r, row in enumerate(section.rows):
                cells = [f"**{_md(cell)}**" if (r, c) in section.bold else _md(cell) for c, cell in enumerate(row)]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        for note in section.notes:
            out.append(f"_{_md(note)}_  ")
        if section.notes:
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_json(report: Report) -> str:
    """The full report as JSON (every unsolved and suspect problem included)."""
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """One flat row per model × group (group `ALL` is the model overall), then one per router strategy."""
    top = max((model.overall.k for model in report.models), default=0)
    rows: list[dict[str, Any]] = []
    for model in report.models:
        for row in [model.overall, *model.groups]:
            flat: dict[str, Any] = {
                "kind": "model",
                "model": row.model,
                "group": row.group,
                "problems": row.problems,
                "responses": row.responses,
                "k": row.k,
                "accuracy": row.accuracy,
                "ci_low": row.ci_low,
                "ci_high": row.ci_high,
                "accuracy_answered": row.accuracy_answered,
            }
            for k in range(1, top + 1):
                flat[f"pass@{k}"] = row.pass_at.get(k)
            flat["maj@k"] = row.majority
            for outcome in OUTCOMES:
                flat[f"{outcome}_rate"] = row.rates[outcome]
            for outcome in OUTCOMES:
                flat[f"{outcome}_count"] = row.counts[outcome]
            flat.update(
                prompt_tokens_mean=row.prompt_tokens_mean,
                completion_tokens_mean=row.completion_tokens_mean,
                reasoning_tokens_mean=row.reasoning_tokens_mean,
                latency_p50_s=row.latency_p50,
                latency_p95_s=row.latency_p95,
                cost_total=row.cost_total,
                cost_per_problem=row.cost_per_problem,
                cost_per_correct=row.cost_per_correct,
                cost_per_query=None,
            )
            if report.problem_sets_differ:
                flat["common_accuracy"] = model.common_accuracy if row is model.overall else None
            rows.append(flat)
    view = report.router
    if len(view.models) > 1:
        strategies = [s for s in (view.best_single, view.category_router, view.oracle) if s is not None]
        for strategy in strategies:
            rows.append(
                {
                    "kind": "router",
                    "model": strategy.name,
                    "group": "ALL",
                    "problems": view.common_problems,
                    "accuracy": strategy.accuracy,
                    "cost_per_query": strategy.cost_per_query,
                }
            )
    return rows


def render_csv(report: Report) -> str:
    """The numbers as one CSV table: a row per model × group, then a row per router strategy."""
    rows = csv_rows(report)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if value is None else value) for key, value in row.items()})
    return buffer.getvalue()
