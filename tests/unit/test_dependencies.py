"""pyproject.toml declares what the package imports, and nothing it never imports without a reason."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "llmrouter_collect"

NOT_IMPORTED_ON_PURPOSE: dict[str, str] = {
    "aiohttp": "the HTTP transport under httpx-aiohttp (client.py); declared for its version floor",
    "latex2sympy2-extended": "math-verify's LaTeX parser; its major version is pinned because it decides verdicts",
}
"""Declared distributions the package never imports by name, with the reason they are declared."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_canonical(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution → the source files importing it (third-party top-level imports only)."""
    owners = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "llmrouter_collect":
                    continue
                for distribution in owners.get(top, [top]):
                    found.setdefault(_canonical(distribution), set()).add(path.name)
    return found


def test_every_imported_distribution_is_declared() -> None:
    missing = {name: files for name, files in _imported_distributions().items() if name not in _declared()}
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_every_declared_distribution_is_imported_or_explained() -> None:
    unused = _declared() - set(_imported_distributions()) - set(NOT_IMPORTED_ON_PURPOSE)
    assert not unused, f"declared but never imported: {sorted(unused)}"
