"""Fault-suite fixtures and the end-of-session summary (seed, trials, failures); the machinery is in harness.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.fault.harness` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.fault import harness  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """`--fault-trials N` / `--fault-seed S`, when tests/conftest.py declares them, win over the environment."""
    trials = config.getoption("fault_trials", default=None)
    seed = config.getoption("fault_seed", default=None)
    if trials is not None:
        harness.TRIALS = max(1, int(trials))
    if seed is not None:
        harness.SEED = str(seed)


@pytest.fixture
def trials(request: pytest.FixtureRequest, tmp_path: Path) -> harness.Trials:
    """The trial runner of this test (COLLECT_FAULT_TRIALS trials, seeded from COLLECT_FAULT_SEED)."""
    return harness.Trials(request.node.name, tmp_path)


@pytest.fixture
def tagged_server() -> Iterator[harness.TaggedServer]:
    """A fresh tagged test server (key harness.SECRET), stopped after the test."""
    server = harness.TaggedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the seed and each fault test's trials and failures."""
    if not harness.RESULTS:
        return
    terminalreporter.write_sep(
        "-", f"fault suite: COLLECT_FAULT_SEED={harness.SEED} COLLECT_FAULT_TRIALS={harness.TRIALS}"
    )
    for row in harness.RESULTS:
        terminalreporter.write_line(
            f"{row['test']}: {row['trials']} trials, {row['failures']} failed, {row['seconds']} s"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scale the per-test timeout (pytest-timeout, 300 s in pyproject) with COLLECT_FAULT_TRIALS."""
    here = Path(__file__).parent
    seconds = max(300, 150 * harness.TRIALS)
    for item in items:
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))
