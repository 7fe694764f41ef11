"""Shared fixtures: every test runs in its own temp directory with no COLLECT_* variables from the caller."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer .env or COLLECT_* variable leaks into a test; the working directory is a temp dir."""
    for key in list(os.environ):
        if key.startswith("COLLECT_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the fault suite (tests/fault/; docs/reliability.md)."""
    group = parser.getgroup("fault suite")
    group.addoption(
        "--fault-trials", type=int, default=None, help="trials per fault test (default: COLLECT_FAULT_TRIALS or 2)"
    )
    group.addoption(
        "--fault-seed", default=None, help="seed of the fault trials (default: COLLECT_FAULT_SEED or random)"
    )
