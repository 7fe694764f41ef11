"""Worker processes for grading: extraction of record batches, and symbolic math checks with a hard time limit."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal, TypeVar

Result = bool | Literal["timeout", "error"]
"""The result of one symbolic check: equal, not equal, out of time, or failed (the checker raised)."""

_GRACE = 1.0
"""Seconds a worker gets past its soft limit (a signal) before it is killed (a check stuck in C code)."""
BATCH_DEADLINE = 300.0
"""Seconds one extraction batch may take at most (regex work on a few hundred records; never reached in practice).
A smaller batch gets less: the per-response limit times its responses, plus a grace second."""


class _SoftTimeout(BaseException):
    """Raised inside a worker by SIGALRM; a BaseException so library code catching Exception lets it through."""


T = TypeVar("T")


def _on_alarm(signum: int, frame: Any) -> None:
    raise _SoftTimeout


def _within(seconds: float, action: Callable[[], T]) -> T:
    """Run `action` under a soft time limit (regex and Python code are interrupted); raises _SoftTimeout."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return action()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _verify(pred: str, gold: str, seconds: float) -> Result:
    from .math import symbolic_equal

    try:
        return _within(seconds, lambda: symbolic_equal(pred, gold))
    except _SoftTimeout:
        return "timeout"
    except Exception:  # a checker bug on a strange answer: not proof of anything, and never a crash of the run
        return "error"


def _prepare_one(task: Any, response: Any, seconds: float) -> Any:
    """Extract one response within `seconds`; past it, the response is a grader failure."""
    from . import grader_failure, prepare_safely

    try:
        return _within(seconds, lambda: prepare_safely(task, response))
    except _SoftTimeout:
        return grader_failure()


def _prepare_batch(batch: list[tuple[Any, list[Any]]], seconds: float) -> list[list[Any]]:
    return [[_prepare_one(task, response, seconds) for response in responses] for task, responses in batch]


def _worker(conn: Connection) -> None:
    """Worker loop: ("verify", key, pred, gold, seconds) → (key, Result); ("prepare", key, batch, seconds) → (key,
    slots)."""
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
        kind, key, *payload = message
        result: Any = _verify(*payload) if kind == "verify" else _prepare_batch(*payload)
        try:
            conn.send((key, result))
        except (EOFError, OSError):
            return


@dataclass
class _Slot:
    process: Any
    conn: Connection
    key: Hashable | None = None
    kind: str = ""
    deadline: float = 0.0


@dataclass
class GradePool:
    """Worker processes (started when work arrives) that extract answers and check math, in parallel.

    Args:
        workers: processes to use at most.
        timeout: seconds one symbolic check may take; then its result is "timeout" (the worker is killed and
            replaced if it does not stop by itself within a grace second).
    """

    workers: int
    timeout: float
    _slots: list[_Slot] = field(default_factory=list)
    _queue: deque[tuple[Any, ...]] = field(default_factory=deque)
    killed: int = 0
    _math_loaded: bool = False

    def submit_verify(self, key: Hashable, pred: str, gold: str) -> None:
        """Queue one symbolic check; its Result comes back from `collect` under `key`."""
        if not self._math_loaded:
            _preload_math()  # later workers are forked with sympy loaded (respawns start at once)
            self._math_loaded = True
        self._queue.append(("verify", key, pred, gold, self.timeout))
        self._dispatch()

    def submit_batch(self, key: Hashable, batch: list[tuple[Any, list[Any]]]) -> None:
        """Queue one extraction batch of (task, responses); the list of slots per record comes back under `key`.

        Each response gets `timeout` seconds (a response that takes longer is a grader failure); the batch as a
        whole gets `timeout` per response plus a grace second, at most BATCH_DEADLINE.
        """
        self._queue.append(("prepare", key, batch, self.timeout))
        self._dispatch()

    @property
    def busy(self) -> int:
        """Tasks queued or running."""
        return len(self._queue) + sum(slot.key is not None for slot in self._slots)

    def collect(self, wait: float | None) -> list[tuple[Hashable, Any]]:
        """Return finished results, waiting up to `wait` seconds (None: until at least one is ready).

        A symbolic check that runs out of time yields "timeout"; an extraction batch whose worker died or ran
        out of time yields None (the caller grades it itself).
        """
        self._dispatch()
        running = [slot for slot in self._slots if slot.key is not None]
        if not running:
            return []
        now = time.monotonic()
        nearest = min(slot.deadline for slot in running) - now
        limit = max(0.0, nearest if wait is None else min(wait, nearest))
        ready = multiprocessing.connection.wait([slot.conn for slot in running], timeout=limit)
        done: list[tuple[Hashable, Any]] = []
        for slot in running:
            if slot.conn in ready:
                try:
                    key, result = slot.conn.recv()
                except (EOFError, OSError):  # the worker died (e.g. out of memory)
                    key, result = slot.key, self._failure(slot)
                    self._replace(slot)
                slot.key = None
                done.append((key, result))
        now = time.monotonic()
        for slot in running:
            if slot.key is not None and now >= slot.deadline:
                done.append((slot.key, self._failure(slot)))
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

    def __enter__(self) -> GradePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------------------
    @staticmethod
    def _failure(slot: _Slot) -> Any:
        return "timeout" if slot.kind == "verify" else None

    def _dispatch(self) -> None:
        while self._queue:
            slot = next((slot for slot in self._slots if slot.key is None), None)
            if slot is None:
                if len(self._slots) >= self.workers:
                    return
                slot = self._start()
                self._slots.append(slot)
            message = self._queue.popleft()
            slot.kind, slot.key = message[0], message[1]
            budget = self.timeout + _GRACE if slot.kind == "verify" else _batch_budget(message[2], self.timeout)
            slot.deadline = time.monotonic() + budget
            try:
                slot.conn.send(message)
            except (OSError, ValueError):  # the worker is gone: replace it and retry this message
                self._replace(slot)
                self._queue.appendleft(message)

    def _start(self) -> _Slot:
        context = _context()
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def _replace(self, slot: _Slot) -> None:
        with contextlib.suppress(OSError):
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn, slot.key, slot.kind = fresh.process, fresh.conn, None, ""


def _batch_budget(batch: list[tuple[Any, list[Any]]], timeout: float) -> float:
    responses = sum(len(responses) for _, responses in batch)
    return min(BATCH_DEADLINE, timeout * max(1, responses) + _GRACE)


def _context() -> Any:
    """Fork where available: workers start at once, share what this process has loaded, and the caller's
    `__main__` is not imported again (as spawn/forkserver would)."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")  # pragma: no cover — platforms without fork


def _preload_math() -> None:
    import math_verify  # type: ignore[import-untyped]  # noqa: F401 — inherited by workers forked later
    import sympy  # type: ignore[import-untyped]  # noqa: F401


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
