"""Rows of a Hugging Face Hub dataset split, from the `datasets` cache or the Hub, with one clear error."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DatasetError

_OFFLINE_HINT = (
    "without internet, use a local file: `--dataset path/to/file.jsonl` in the unified schema "
    '(docs/datasets.md), or a copy saved where there is internet: `python -c "import datasets; '
    "datasets.load_dataset('{repo}'{config}, split='{split}').to_json('{name}.jsonl')\"`, then "
    "`--dataset {name}.jsonl`"
)
_GATED_HINT = (
    "{repo} is gated on the Hugging Face Hub: sign in at https://huggingface.co/datasets/{repo} and accept its "
    "conditions, then `huggingface-cli login` (or set HF_TOKEN) on this machine; "
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


def hub_rows(
    name: str, repo: str, split: str, config: str | None = None, *, gated: bool = False
) -> list[dict[str, Any]]:
    """All rows of a Hugging Face dataset split, from the `datasets` cache or the Hub.

    Raises:
        DatasetError: the split cannot be loaded (no network and not cached, no access, ...), with what to do.
    """
    try:
        import datasets  # type: ignore[import-untyped]  # imported here: slow, and only Hub datasets need it

        with _quiet_hub_logs():
            data = datasets.load_dataset(repo, config, split=split)
        rows: list[dict[str, Any]] = data.to_list()
        return rows
    except Exception as err:  # `datasets` raises many types (ConnectionError, FileNotFoundError, ...)
        first_line = (str(err).strip().splitlines() or [""])[0]
        where = f"{repo}, {config}, split {split}" if config else f"{repo}, split {split}"
        hint = _OFFLINE_HINT.format(repo=repo, split=split, name=name, config=f", '{config}'" if config else "")
        access = gated or any(word in str(err).lower() for word in ("gated", "401", "403", "authenticat"))
        raise DatasetError(
            f"cannot load {name} ({where}) from the Hugging Face Hub or its cache: {type(err).__name__}: {first_line}",
            hint=(_GATED_HINT.format(repo=repo) + hint) if access else hint,
        ) from None


def is_cached(repo: str, config: str | None) -> bool:
    """Whether `datasets` has prepared this dataset (config) in its cache: `<cache>/<owner>___<name>/<config>`."""
    import datasets.config  # type: ignore[import-untyped]  # imported here: slow

    root = Path(datasets.config.HF_DATASETS_CACHE)
    folders = {root / repo.replace("/", "___"), root / repo.replace("/", "___").lower()}
    return any((folder / (config or "default")).is_dir() for folder in folders)
