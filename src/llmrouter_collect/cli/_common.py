"""Helpers shared by the command modules: run a core function and turn CollectError/Ctrl-C into exit codes."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

import typer

from ..console import err_console, print_error
from ..errors import CollectError

T = TypeVar("T")

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT); a stop signal gives 128 + its number (SIGTERM 143, SIGHUP 129)."""

STOP_SIGNALS = tuple(
    sig for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if sig is not None
)
"""Signals that ask a long command to stop (`timeout`, Slurm, `docker stop`, a closed terminal)."""


INTERRUPTED = "interrupted; earlier outputs were left as they were — rerun the same command"


def run_or_exit(action: Callable[[], T], *, interrupted: str = INTERRUPTED, stop_signals: bool = False) -> T:
    """Run `action`; a CollectError becomes a short message and exit 1, Ctrl-C becomes exit 130 with the
    `interrupted` message.

    With `stop_signals`, SIGTERM and SIGHUP are handled exactly like Ctrl-C while `action` runs (inside
    `asyncio.run` the running task is cancelled, so files are synced and locks released), and the exit
    code is 128 + the signal's number.
    """
    received: list[int] = []
    try:
        with _stop_signals_as_interrupt(received) if stop_signals else contextlib.nullcontext():
            return action()
    except CollectError as error:
        print_error(error)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            err_console.print(interrupted)
        raise typer.Exit(128 + received[0] if received else EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def _stop_signals_as_interrupt(received: list[int]) -> Iterator[None]:
    """While the block runs, a stop signal does what Ctrl-C does: it calls the current SIGINT handler
    (asyncio.run's, which cancels the main task; or Python's, which raises KeyboardInterrupt)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = {}
    for sig in STOP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave the signal alone
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)
