"""Process groups on Linux (/proc): is a recorded server alive, signal its group, wait until it is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import ServerError
from ._state import ServerInfo

POLL_INTERVAL = 0.5
"""Seconds between two readiness checks (and two liveness checks while stopping)."""
STOP_GRACE = 30.0
"""Seconds a server gets to exit after SIGTERM before its process group gets SIGKILL."""
_HAS_PROC = Path("/proc/self/stat").exists()
"""Linux: process states and start times come from /proc (zombies and reused pids are told apart)."""


def leader_alive(info: ServerInfo) -> bool:
    """True while the process `collect serve` started (not a reused pid) is alive and not a zombie."""
    leader = _proc_stat(info.pid)
    return leader is not None and leader[0] != "Z" and (info.start_ticks is None or leader[2] == info.start_ticks)


def is_running(info: ServerInfo) -> bool:
    """True while the process group `collect serve` created still has a live (non-zombie) process."""
    leader = _proc_stat(info.pid)
    if leader is not None and leader[0] != "Z":
        # A different start time means the pid was reused: our leader is gone, and with it our group
        # (Linux never hands out a pid that is still some group's id).
        return info.start_ticks is None or leader[2] == info.start_ticks
    _reap(info.pid)
    return bool(_group_members(info.pgid))


def _pgid_of(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return pid  # already gone; start_new_session made it its own group leader


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start ticks) of a process, or None if it does not exist.

    Without /proc (macOS) a live process gets state "?" and start ticks -1.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if _HAS_PROC:
            return None
        try:
            return ("?", os.getpgid(pid), -1)
        except OSError:
            return None
    fields = text.rsplit(")", 1)[1].split()
    # After the command name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
    return fields[0], int(fields[2]), int(fields[19])


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[2] if stat is not None and stat[2] >= 0 else None


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    if not _HAS_PROC:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] != "Z":
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is our own child (stopped by the process that started it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(info: ServerInfo, sig: signal.Signals) -> None:
    try:
        os.killpg(info.pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as err:
        raise ServerError(
            f"not allowed to signal process group {info.pgid} (port {info.port}): {err.strerror}",
            hint="it belongs to another user; stop it as that user",
        ) from None


def _wait_gone(info: ServerInfo, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(info.pid)
        if not is_running(info):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(POLL_INTERVAL, 0.2))


def _terminate_groups(launched: Sequence[tuple[ServerInfo, subprocess.Popen[bytes]]], grace: float) -> None:
    """Stop servers that failed to start: SIGTERM every group at once, SIGKILL after `grace` s, reap the leaders."""
    running = [info for info, _ in launched if is_running(info)]
    for info in running:
        _signal_group(info, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for info in running:
        if not _wait_gone(info, max(0.0, deadline - time.monotonic())):
            _signal_group(info, signal.SIGKILL)
            _wait_gone(info, 10.0)
    for _, process in launched:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5.0)
