"""The only module that talks to the terminal: a stderr console, error lines, and plain-vs-rich detection."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from .errors import CollectError

if TYPE_CHECKING:
    from rich.live import Live

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


class _NoticeHandler(logging.Handler):
    """Shows what the library logs for the user (e.g. which .env was read) as one stderr line each."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                warn(message)
            else:
                info(message)
        except Exception:  # a logging handler must not raise
            self.handleError(record)


_NOTICES = _NoticeHandler(logging.INFO)


def show_library_notices() -> None:
    """Print the package's INFO and WARNING log records on stderr (once, however often it is called)."""
    package = logging.getLogger("llmrouter_collect")
    package.setLevel(logging.INFO)
    if _NOTICES not in package.handlers:
        package.addHandler(_NOTICES)


class LiveStatus:
    """Shows a line of live status on stderr while a long command runs: redrawn on a terminal, else a plain
    line every `plain_every` seconds (readable in logs). `render` returns the current text."""

    def __init__(self, render: Callable[[], str], *, plain_every: float = 30.0) -> None:
        self._render = render
        self._plain_every = plain_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def __enter__(self) -> LiveStatus:
        if is_interactive():
            from rich.live import Live  # only for a terminal
            from rich.text import Text

            self._live = Live(Text(""), console=err_console, refresh_per_second=4, transient=True)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="collect-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        interval = 0.25 if self._live else self._plain_every
        while not self._stop.wait(interval):
            text = self._render()
            if self._live:
                from rich.text import Text

                self._live.update(Text(text))
            else:
                err_console.print(text)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._live:
            self._live.stop()
