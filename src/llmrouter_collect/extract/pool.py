"""Symbolic math checks in worker processes, each with a hard time limit (a stuck check kills its worker)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

Result = bool | Literal["timeout"]

_GRACE = 1.0
"""Seconds a worker gets past its soft limit (a signal) before it is killed (a check stuck in C code)."""


class _SoftTimeout(BaseException):
    """Raised inside a worker by SIGALRM; a BaseException so library code catching Exception lets it through."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _SoftTimeout


def _worker(conn: Connection) -> None:
    """Worker loop: receive (key, pred, gold, seconds), answer (key, True | False | "timeout")."""
    from .math import symbolic_equal

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    signal.signal(signal.SIGALRM, _on_alarm)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, pred, gold, seconds = message
        result: Result
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                result = symbolic_equal(pred, gold)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _SoftTimeout:
            result = "timeout"
        except Exception:  # a checker bug on a strange answer is "not equal", never a crash of the run
            result = False
        try:
            conn.send((key, result))
        except (EOFError, OSError):
            return


@dataclass
class _Slot:
    process: Any
    conn: Connection
    key: Hashable | None = None
    deadline: float = 0.0


@dataclass
class VerifyPool:
    """A pool of worker processes checking (pred, gold) pairs, with a hard time limit per pair.

    Args:
        workers: processes to use at most (started when work arrives).
        timeout: seconds one pair may take; then it counts as "timeout" (the worker is killed if it does not
            stop by itself within a grace second).
    """

    workers: int
    timeout: float
    _slots: list[_Slot] = field(default_factory=list)
    _queue: deque[tuple[Hashable, str, str]] = field(default_factory=deque)
    killed: int = 0

    def submit(self, key: Hashable, pred: str, gold: str) -> None:
        """Queue one pair; its result comes back from `collect` under `key`."""
        self._queue.append((key, pred, gold))
        self._dispatch()

    @property
    def busy(self) -> int:
        """Pairs queued or being checked."""
        return len(self._queue) + sum(slot.key is not None for slot in self._slots)

    def collect(self, wait: float | None) -> list[tuple[Hashable, Result]]:
        """Return finished results, waiting up to `wait` seconds (None: until at least one is ready)."""
        self._dispatch()
        running = [slot for slot in self._slots if slot.key is not None]
        if not running:
            return []
        now = time.monotonic()
        nearest = min(slot.deadline for slot in running) - now
        limit = max(0.0, nearest if wait is None else min(wait, nearest))
        ready = multiprocessing.connection.wait([slot.conn for slot in running], timeout=limit)
        done: list[tuple[Hashable, Result]] = []
        for slot in running:
            if slot.conn in ready:
                try:
                    key, result = slot.conn.recv()
                except (EOFError, OSError):  # the worker died (e.g. out of memory): the pair is given up
                    key, result = slot.key, "timeout"
                    self._replace(slot)
                slot.key = None
                done.append((key, result))
        now = time.monotonic()
        for slot in running:
            if slot.key is not None and now >= slot.deadline:
                done.append((slot.key, "timeout"))
                self.killed += 1
                self._replace(slot)
        self._dispatch()
        return done

    def close(self) -> None:
        """Stop all workers."""
        for slot in self._slots:
            with contextlib.suppress(OSError, ValueError):
                slot.conn.send(None)
        for slot in self._slots:
            slot.process.join(timeout=1.0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        self._slots.clear()

    def __enter__(self) -> VerifyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while self._queue:
            slot = next((slot for slot in self._slots if slot.key is None), None)
            if slot is None:
                if len(self._slots) >= self.workers:
                    return
                slot = self._start()
                self._slots.append(slot)
            key, pred, gold = self._queue.popleft()
            slot.key = key
            slot.deadline = time.monotonic() + self.timeout + _GRACE
            slot.conn.send((key, pred, gold, self.timeout))

    def _start(self) -> _Slot:
        parent, child = _context().Pipe()
        process = _context().Process(target=_worker, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def _replace(self, slot: _Slot) -> None:
        with contextlib.suppress(OSError):
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn, slot.key = fresh.process, fresh.conn, None


_CONTEXT: Any = None


def _context() -> Any:
    """Workers are forked from this process after it has loaded sympy and math-verify, so they start at once.

    Fork (not spawn/forkserver) also keeps the caller's `__main__` from being imported again in the workers.
    """
    global _CONTEXT
    if _CONTEXT is None:
        if "fork" in multiprocessing.get_all_start_methods():
            import math_verify  # noqa: F401 — loaded once here, shared by every forked worker
            import sympy  # noqa: F401

            _CONTEXT = multiprocessing.get_context("fork")
        else:  # pragma: no cover — platforms without fork
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
