"""llmrouter-collect: collect, grade and report LLM responses on benchmarks, for training LLM routers.

Every command is a thin layer over a function usable from Python::

    from llmrouter_collect import load_settings, run_infer, grade_path, run_report
    summary = asyncio.run(run_infer(load_settings(dataset="sample", k_responses=3, api_base=URL)))

These names are imported on first use, so `import llmrouter_collect` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
"""The package version (pyproject.toml reads it from here)."""

_PUBLIC = {
    "load_settings": "llmrouter_collect.settings",
    "Settings": "llmrouter_collect.settings",
    "load_problems": "llmrouter_collect.benchmarks",
    "run_infer": "llmrouter_collect.infer",
    "grade_file": "llmrouter_collect.extract.runner",
    "grade_path": "llmrouter_collect.extract.runner",
    "run_report": "llmrouter_collect.report.run",
    "start_server": "llmrouter_collect.server",
    "start_servers": "llmrouter_collect.server",
    "stop_server": "llmrouter_collect.server",
    "iter_records": "llmrouter_collect.store",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'llmrouter_collect' has no attribute {name!r}")
