"""Recorded servers: list them with their state, find a server or replica set by port, stop one."""

from __future__ import annotations

import signal
from pathlib import Path

from ..errors import ServerError
from ._procs import STOP_GRACE, _signal_group, _wait_gone, is_running, leader_alive
from ._state import LOG_DIR_NAME, STATE_FILE_NAME, ServerInfo, ServerStatus, _read_state, _remove_entry


def list_servers(state_dir: Path) -> list[ServerStatus]:
    """Every server in the state file, with whether its process group still runs, ordered by port."""
    statuses = []
    for info in sorted(_read_state(state_dir), key=lambda info: info.port):
        alive = leader_alive(info)
        # Never recorded as ready: still starting, or its `collect serve` was killed before it could record it.
        unready = alive and not (info.ready_at or info.served_models)
        statuses.append(ServerStatus(info, is_running(info), alive, answers=unready and _answers(info.url)))
    return statuses


def _answers(url: str) -> bool:
    """True if an HTTP server answers `GET {url}/models` at all (a 401 counts: it is up)."""
    import httpx  # on first use: `import llmrouter_collect.server` stays cheap for the CLI

    try:
        return httpx.get(f"{url}/models", timeout=httpx.Timeout(2.0, connect=0.5)).status_code < 500
    except httpx.HTTPError:
        return False


def find_group(state_dir: Path, port: int | None) -> list[ServerInfo]:
    """The recorded servers `collect serve` started together (a replica set, or one server), ordered by replica.

    Args:
        state_dir: where the state file is.
        port: the port of any server of the set; None for the only set recorded.

    Raises:
        ServerError: none recorded for the port, none at all, or several sets and no port given.
    """
    servers = _read_state(state_dir)
    if port is not None:
        chosen = next((info for info in servers if info.port == port), None)
        if chosen is None:
            known = ", ".join(str(info.port) for info in sorted(servers, key=lambda i: i.port)) or "none"
            raise ServerError(
                f"no server started by collect on port {port} (known ports: {known})",
                hint=f"see `collect serve status`; logs of stopped servers stay in {state_dir / LOG_DIR_NAME}",
            )
        return _members(servers, chosen.group_port)
    if not servers:
        raise ServerError(
            "no server started by collect is recorded",
            hint=f"start one with `collect serve --model M`; state file: {state_dir / STATE_FILE_NAME}",
        )
    groups = sorted({info.group_port for info in servers})
    if len(groups) > 1:
        ports = ", ".join(str(info.port) for info in sorted(servers, key=lambda i: i.port))
        raise ServerError(
            f"several servers are recorded (ports {ports})", hint=f"choose one with --port (e.g. --port {groups[0]})"
        )
    return _members(servers, groups[0])


def _members(servers: list[ServerInfo], group_port: int) -> list[ServerInfo]:
    return sorted((info for info in servers if info.group_port == group_port), key=lambda info: info.replica)


def pick_replica(group: list[ServerInfo], replica: int) -> ServerInfo:
    """Replica `replica` of a set found by `find_group`.

    Raises:
        ServerError: the set has no such replica (naming the ones it has).
    """
    for info in group:
        if info.replica == replica:
            return info
    have = ", ".join(str(info.replica) for info in group)
    raise ServerError(
        f"--replica {replica}: the servers on port {group[0].group_port} have replica {have}",
        hint="see `collect serve status` (column REPLICA)",
    )


def stop_server(state_dir: Path, info: ServerInfo, grace: float = STOP_GRACE) -> bool:
    """Stop a recorded server's process group (SIGTERM, then SIGKILL after `grace` s) and forget it.

    Returns:
        True if it was running, False if it had already exited (its entry is removed all the same).

    Raises:
        ServerError: the group survived SIGKILL or cannot be signalled (e.g. another user's process).
    """
    was_running = is_running(info)
    if was_running:
        _signal_group(info, signal.SIGTERM)
        if not _wait_gone(info, grace):
            _signal_group(info, signal.SIGKILL)
            if not _wait_gone(info, 10.0):
                raise ServerError(
                    f"process group {info.pgid} (port {info.port}) is still alive after SIGKILL",
                    hint=f"list its processes with `pgrep -l -g {info.pgid}`",
                )
    _remove_entry(state_dir, info)
    return was_running
