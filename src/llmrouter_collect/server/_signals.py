"""Signals while a server starts: SIGTERM/SIGHUP as interrupts, held back from launch to record, ignored in clean-up."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StartInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while `start_server` was starting a server (inside `termination_as_interrupt`);
    the half-started server was stopped first."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_TERMINATION = (signal.SIGTERM, signal.SIGHUP)
_INTERRUPTIONS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise StartInterrupted, as Ctrl-C raises KeyboardInterrupt.

    For a program (such as the CLI) that wants to handle them after `start_server` stopped the half-started
    server, instead of ending at once. Main thread only; elsewhere nothing changes.
    """
    with _termination_as_interrupt(only_default=False):
        yield


@contextlib.contextmanager
def _termination_as_interrupt(only_default: bool = True) -> Iterator[set[int]]:
    """SIGTERM and SIGHUP raise StartInterrupted inside the block; with `only_default`, only where the program
    left them at SIG_DFL (its own handlers and SIG_IGN are kept). Yields the signals it took over.

    Main thread only (signal handlers cannot be set elsewhere; elsewhere the signals reach the main thread).
    """
    if not _in_main_thread():
        yield set()
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise StartInterrupted(signum)

    previous = {sig: signal.getsignal(sig) for sig in _TERMINATION}
    replaced = {sig: old for sig, old in previous.items() if old == signal.SIG_DFL or not only_default}
    for sig in replaced:
        signal.signal(sig, handler)
    try:
        yield set(replaced)
    finally:
        for sig, old in replaced.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back Ctrl-C, SIGTERM and SIGHUP inside the block; the first one that arrived is raised again after it
    (so its handler runs, usually raising KeyboardInterrupt or StartInterrupted, outside the block).

    Main thread only; elsewhere the block runs as it is (the signals reach the main thread, not this one).
    """
    if not _in_main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.getsignal(sig) for sig in _INTERRUPTIONS}
    held = {sig: old for sig, old in previous.items() if old not in (signal.SIG_IGN, None)}
    for sig in held:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, old in held.items():
            signal.signal(sig, old)
        if caught:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP inside the block (a clean-up of a few seconds that must finish).

    Main thread only: signal handlers cannot be set elsewhere.
    """
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _INTERRUPTIONS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
