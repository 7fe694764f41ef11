"""What `collect datasets` shows: the catalogue, with whether each benchmark is in the local `datasets` cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._catalogue import CATALOGUE
from ._hub import is_cached


@dataclass(frozen=True)
class BenchmarkInfo:
    """One line of `collect datasets`."""

    name: str
    source: str
    size: int
    kind: str
    categories: str
    gated: bool
    cached: bool

    def as_dict(self) -> dict[str, Any]:
        """The fields, for JSON output."""
        return asdict(self)


SAMPLE_INFO = BenchmarkInfo("sample", "inside the package (data/sample.jsonl)", 26, "mcq, math", "12", False, True)


def list_benchmarks() -> list[BenchmarkInfo]:
    """The catalogue's benchmarks (and `sample`), with whether each is in the `datasets` cache.

    Only the cache folders are looked at; nothing is downloaded.
    """
    rows = [
        BenchmarkInfo(
            benchmark.name,
            benchmark.source,
            benchmark.size,
            benchmark.kind,
            benchmark.categories,
            benchmark.gated,
            is_cached(benchmark.repo, benchmark.config),
        )
        for benchmark in CATALOGUE
    ]
    return [*rows, SAMPLE_INFO]
