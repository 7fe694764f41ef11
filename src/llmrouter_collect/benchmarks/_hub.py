"""Rows of a Hugging Face Hub dataset split, from the `datasets` cache or the Hub, with one clear error."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import DatasetError

_OFFLINE_HINT = (
    "without internet, use a local file: `--dataset path/to/file.jsonl` in the unified schema "
    '(docs/datasets.md), or a copy saved where there is internet: `python -c "import datasets; '
    "datasets.load_dataset('{repo}', split='{split}').to_json('{name}.jsonl')\"`, then "
    "`--dataset {name}.jsonl`"
)


@contextlib.contextmanager
def _quiet_hub_logs() -> Iterator[None]:
    """Hide the Hub clients' warnings (one per retried request when offline); a failure becomes one error."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def hub_rows(name: str, repo: str, split: str) -> list[dict[str, Any]]:
    """All rows of a Hugging Face dataset split, from the `datasets` cache or the Hub.

    Raises:
        DatasetError: the split cannot be loaded (no network and not cached, ...), with what to do instead.
    """
    try:
        import datasets  # type: ignore[import-untyped]  # imported here: slow, and only Hub datasets need it

        with _quiet_hub_logs():
            data = datasets.load_dataset(repo, split=split)
        rows: list[dict[str, Any]] = data.to_list()
        return rows
    except Exception as err:  # `datasets` raises many types (ConnectionError, FileNotFoundError, ...)
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise DatasetError(
            f"cannot load {name} ({repo}, split {split}) from the Hugging Face Hub or its cache: "
            f"{type(err).__name__}: {first_line}",
            hint=_OFFLINE_HINT.format(repo=repo, split=split, name=name),
        ) from None
