"""The only module that talks to the terminal: a stderr console, error lines, and plain-vs-rich detection."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from .errors import CollectError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
"""Humans read stderr: progress, warnings, errors."""

out_console = Console(highlight=False, soft_wrap=True)
"""Data (tables of `report`, summaries) goes to stdout."""


def is_interactive() -> bool:
    """True when stderr is a terminal (live progress bars); False for logs and pipes (plain lines)."""
    return err_console.is_terminal


def print_error(error: CollectError) -> None:
    """Print a CollectError as `error: message` and a dim hint, on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        err_console.print(f"[dim]{escape(error.hint)}[/]")


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str) -> None:
    """Print one informational line on stderr."""
    err_console.print(escape(message))
