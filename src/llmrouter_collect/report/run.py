"""One report run: resolve prices, read the files once (feeding the exporter), summarize, write plots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .export import Exporter
from .loader import load
from .prices import resolve_prices, unpriced
from .summary import Report, build_report


@dataclass(slots=True)
class ReportResult:
    """The report, and the files written beside it."""

    report: Report
    written: list[Path] = field(default_factory=list)


def run_report(
    paths: Sequence[Path],
    *,
    group_by: str = "category",
    price_flags: Sequence[str] = (),
    prices_file: Path | None = None,
    export_dir: Path | None = None,
    plots_dir: Path | None = None,
    test_fraction: float = 0.2,
    confidence: float = 0.95,
    warn: Callable[[str], None] | None = None,
) -> ReportResult:
    """Build the report of graded results files, and write the exports and plots asked for.

    Raises:
        CollectError: bad prices or an --export/--plots path that is a file (ConfigError), files that are not
            graded (GradeError), unwritable outputs (StoreError).
    """
    for flag, directory in (("--export", export_dir), ("--plots", plots_dir)):
        if directory is not None and directory.exists() and not directory.is_dir():
            raise ConfigError(f"{flag} {directory} is a file", hint=f"pass a directory to {flag} (created if needed)")
    prices = resolve_prices(price_flags, prices_file)
    exporter = Exporter(export_dir, prices, test_fraction=test_fraction) if export_dir is not None else None
    try:
        collection = load(paths, group_by=group_by, sinks=[exporter] if exporter else [], warn=warn)
        missing = unpriced(sorted(collection.models), prices)
        if prices and missing and warn is not None:
            warn("no price for " + ", ".join(missing) + "; their costs (and the router's) are left out")
        unused = sorted(set(prices) - set(collection.models))
        if unused and warn is not None:
            warn("prices given for models not in the files: " + ", ".join(unused))
        report = build_report(collection, prices, confidence=confidence, test_fraction=test_fraction)
        result = ReportResult(report=report)
        if exporter is not None:
            result.written.extend(exporter.finish(collection))
            if exporter.split_warning is not None and warn is not None:
                warn(f"--export: {exporter.split_warning}")
    except BaseException:
        if exporter is not None:
            exporter.abort()  # no temp file left behind, earlier exports left as they were
        raise
    if plots_dir is not None:
        from .plots import write_plots

        result.written.extend(write_plots(report, plots_dir))
    return result
