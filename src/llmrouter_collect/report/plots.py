"""PNG plots of a Report: accuracy by group per model, accuracy against cost (Pareto, oracle), pass@k by k.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no display needed).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..errors import StoreError
from ..fileio import atomic_open
from .metrics import pareto_front
from .summary import GroupSummary, Report

_DPI = 150


def write_plots(report: Report, directory: Path) -> list[Path]:
    """Write the report's plots as PNG files in `directory`.

    Returns:
        The files written.

    Raises:
        StoreError: the directory cannot be written.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = [
            _save(_accuracy_by_group(report), directory / f"accuracy_by_{report.group_by}.png"),
            _save(_pass_at_k(report), directory / "pass_at_k.png"),
        ]
        figure = _accuracy_vs_cost(report)
        if figure is not None:
            written.append(_save(figure, directory / "accuracy_vs_cost.png"))
        return written
    except OSError as err:
        raise StoreError(f"cannot write plots to --plots {directory}: {err.strerror}") from None


def _save(figure: Figure, path: Path) -> Path:
    """Write one PNG atomically (fresh temp file, fsync, rename): an earlier plot stays whole until replaced."""
    FigureCanvasAgg(figure)
    with atomic_open(path) as handle:
        figure.savefig(handle, dpi=_DPI, format="png", bbox_inches="tight")
    return path


def _accuracy_by_group(report: Report) -> Figure:
    groups = sorted({row.group for model in report.models for row in model.groups})
    labels = [*groups, "ALL"]
    n_models = len(report.models)
    height = max(3.0, 0.35 * len(labels) * max(1, n_models) ** 0.5 + 1.5)
    figure = Figure(figsize=(9, height))
    axes = figure.add_subplot()
    positions = np.arange(len(labels))
    bar = 0.8 / max(1, n_models)
    absent = False
    for index, model in enumerate(report.models):
        rows = {row.group: row for row in [*model.groups, model.overall]}
        values, low, high = [], [], []
        for label in labels:
            row = rows.get(label)
            accuracy = row.accuracy if row is not None and row.accuracy is not None else np.nan
            values.append(100 * accuracy)
            low.append(100 * (accuracy - row.ci_low) if row is not None and row.ci_low is not None else 0.0)
            high.append(100 * (row.ci_high - accuracy) if row is not None and row.ci_high is not None else 0.0)
        offset = (index - (n_models - 1) / 2) * bar
        bars = axes.barh(
            positions + offset,
            values,
            height=bar,
            xerr=[low, high],
            label=model.model,
            color=f"C{index % 10}",  # fixed, so the hatched placeholders below do not shift the colour cycle
            error_kw={"elinewidth": 0.8, "capsize": 2, "alpha": 0.7},
        )
        color = bars.patches[0].get_facecolor() if bars.patches else "grey"
        for position, value in zip(positions + offset, values, strict=True):
            if np.isnan(value):
                # No problem of this model in the group: a hatched outline across the axis, never a 0% bar.
                absent = True
                axes.barh(position, 100, height=bar, fill=False, hatch="///", edgecolor=color, linewidth=0, alpha=0.5)
                axes.text(1, position, "no problems", va="center", fontsize="x-small", color="dimgrey")
            elif value == 0:
                axes.text(1, position, "0%", va="center", fontsize="x-small", color="dimgrey")
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.xaxis.set_major_formatter(_PERCENT)
    axes.set_xlabel(f"accuracy over all samples, {round(report.confidence * 100)}% interval")
    axes.set_title(f"Accuracy by {report.group_by} (errors, unparsed and truncated count as not correct)")
    axes.grid(axis="x", alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    if absent:
        handles.append(Patch(fill=False, hatch="///", edgecolor="grey", linewidth=0))
        names.append("no problems in the group\n(not 0%)")
    axes.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return figure


def _pass_at_k(report: Report) -> Figure:
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    top = 1
    # Models with the same curve would hide each other: one line, labelled with all their names.
    curves: dict[tuple[object, ...], list[str]] = {}
    rows: dict[tuple[object, ...], GroupSummary] = {}
    for model in report.models:
        row = model.overall
        key: tuple[object, ...] = (
            *[(k, round(v, 9)) for k, v in sorted(row.pass_at.items()) if v is not None],
            row.majority,
        )
        curves.setdefault(key, []).append(model.model)
        rows.setdefault(key, row)
    for key, names in curves.items():
        row = rows[key]
        ks = [k for k, value in sorted(row.pass_at.items()) if value is not None]
        if not ks:
            continue
        top = max(top, ks[-1])
        label = " = ".join(names) if len(names) > 1 else names[0]
        (line,) = axes.plot(ks, [100 * (row.pass_at[k] or 0.0) for k in ks], marker="o", label=label)
        if row.majority is not None:
            axes.scatter(
                [row.k],
                [100 * row.majority],
                marker="s",
                facecolors="none",
                edgecolors=line.get_color(),
                s=60,
            )
    axes.scatter([], [], marker="s", facecolors="none", edgecolors="grey", label="maj@k (at k)")
    if top > 10:
        axes.set_xscale("log", base=2)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("k (samples per problem)")
    axes.set_ylabel("pass@k")
    axes.set_ylim(0, 100)
    axes.yaxis.set_major_formatter(_PERCENT)
    axes.set_title("pass@k by k (unbiased estimator) and maj@k")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return figure


_PERCENT = FuncFormatter(lambda value, _: f"{value:g}%")
"""Axes in percent points: `40%`, `12.5%`, never `0.1825`."""

_ROUND_STEPS = [1, 2, 5, 10]
"""Tick steps of 1, 2 or 5 times a power of ten: round labels ($0.0002, 12%), never 0.1825."""

_LABEL_NEAR = 0.03
"""Two points closer than this share of both axes' ranges get one label (or labels stacked apart)."""


def _dollars(value: float) -> str:
    """A tick label: two significant digits, no exponent ($0.00004, $0.0012, $1.5)."""
    return "$" + np.format_float_positional(value, precision=2, fractional=False, trim="-")


class _StepFormatter(Formatter):
    """Linear-axis tick labels with as many decimals as the tick step needs, so two ticks never read the same
    (points with nearly equal x give ticks such as 11.98, 12.00, 12.02)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, x: float, pos: int | None = None) -> str:
        steps = [b - a for a, b in itertools.pairwise(sorted(self.locs)) if b > a]
        if not steps:
            return self.prefix + (_dollars(x)[1:] if self.prefix else f"{x:,.0f}")
        step = min(steps)
        decimals = max(0, -math.floor(math.log10(step)))
        if abs(round(step, decimals) - step) > step * 1e-6:  # a step such as 0.0025 needs one more
            decimals += 1
        return f"{self.prefix}{x:,.{decimals}f}"


def _accuracy_vs_cost(report: Report) -> Figure | None:
    view = report.router
    if not view.points:
        return None
    priced = all(point.cost_per_query is not None for point in view.points)
    if priced:
        xs = [point.cost_per_query or 0.0 for point in view.points]
        xlabel = "cost per query (USD, one request to the model)"
    else:
        tokens = {model.model: model.overall.completion_tokens_mean or 0.0 for model in report.models}
        xs = [tokens.get(point.model, 0.0) for point in view.points]
        xlabel = "completion tokens per response (no prices given: a cost proxy)"
    ys = [100 * point.accuracy for point in view.points]
    figure = Figure(figsize=(7.5, 5))
    axes = figure.add_subplot()
    axes.scatter(xs, ys, s=50, zorder=3, color="tab:blue", label="models")
    for x, y, label, stack in _point_labels(xs, ys, [point.model for point in view.points]):
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4 - 11 * stack), fontsize="small")
    front = pareto_front(list(zip(xs, ys, strict=True)))
    axes.plot(
        [xs[i] for i in front],
        [ys[i] for i in front],
        linestyle="--",
        color="grey",
        label="Pareto front (models)",
    )
    if priced and len(view.points) > 1:
        for strategy, marker, label in [
            (view.oracle, "*", "oracle"),
            (view.category_router, "D", f"{report.group_by} router"),
        ]:
            if strategy is not None and strategy.cost_per_query is not None:
                # Hollow, under the model points: a strategy that routes everything to one model sits on it.
                axes.scatter(
                    [strategy.cost_per_query],
                    [100 * strategy.accuracy],
                    marker=marker,
                    s=160,
                    zorder=2,
                    facecolors="none",
                    edgecolors="tab:orange" if marker == "*" else "tab:green",
                    linewidths=1.5,
                    label=label,
                )
    elif view.oracle is not None and len(view.points) > 1:
        axes.axhline(100 * view.oracle.accuracy, color="tab:red", linestyle=":", label="oracle accuracy")
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) > 20:
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_minor_formatter(NullFormatter())
    else:
        # Dollar labels of small costs are long ($0.000025): few ticks, so they never run into each other.
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2, steps=_ROUND_STEPS))
    low, high = min(ys), max(ys)
    if high - low < 10:  # nearly equal accuracies: a range of 10 points, not ticks at 18.225, 18.250, …
        middle = (low + high) / 2
        axes.set_ylim(max(0.0, middle - 6), min(100.0, max(middle + 6, 12.0)))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=_ROUND_STEPS))
    axes.yaxis.set_major_formatter(_PERCENT)
    if axes.get_xscale() == "log":
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _dollars(value) if priced else f"{value:,.0f}"))
    else:
        axes.xaxis.set_major_formatter(_StepFormatter("$" if priced else ""))
    axes.set_xlabel(xlabel)
    axes.set_ylabel("accuracy, each problem once")
    axes.set_title(f"Accuracy against cost on {view.common_problems:,} problems all models answered")
    axes.grid(alpha=0.3)
    # Outside the axes, below: a legend inside would hide whichever model sits in its corner.
    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=4, frameon=False)
    return figure


def _point_labels(xs: list[float], ys: list[float], names: list[str]) -> list[tuple[float, float, str, int]]:
    """One label per distinct point: models at the same place share a label (`a, b`), and a label whose point is
    near an earlier labelled one is stacked below it, so labels never print on top of each other.

    Returns (x, y, label, stack) with stack the number of lines to move the label down.
    """
    x_span = (max(xs) - min(xs)) or 1.0
    y_span = (max(ys) - min(ys)) or 1.0
    merged: dict[tuple[float, float], list[str]] = {}
    for x, y, name in zip(xs, ys, names, strict=True):
        merged.setdefault((round(x, 12), round(y, 9)), []).append(name)
    placed: list[tuple[float, float, str, int]] = []
    for (x, y), group in sorted(merged.items(), key=lambda item: (-item[0][1], item[0][0])):
        near = [
            stack
            for px, py, _, stack in placed
            if abs(px - x) / x_span < _LABEL_NEAR * 3 and abs(py - y) / y_span < _LABEL_NEAR
        ]
        placed.append((x, y, ", ".join(group), max(near) + 1 if near else 0))
    return placed
