"""Helpers shared by the command modules: run a core function and turn CollectError/Ctrl-C into exit codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from ..console import err_console, print_error
from ..errors import CollectError

T = TypeVar("T")

EXIT_INTERRUPTED = 130


INTERRUPTED = "interrupted; earlier outputs were left as they were — rerun the same command"


def run_or_exit(action: Callable[[], T], *, interrupted: str = INTERRUPTED) -> T:
    """Run `action`; a CollectError becomes a short message and exit 1, Ctrl-C becomes exit 130 with the
    `interrupted` message."""
    try:
        return action()
    except CollectError as error:
        print_error(error)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print(interrupted)
        raise typer.Exit(EXIT_INTERRUPTED) from None
