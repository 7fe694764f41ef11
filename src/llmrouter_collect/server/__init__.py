"""vLLM servers started by `collect serve`: build the command, start detached, wait until ready, list, tail, stop.

One module per job (all private; this is the public surface):

- `_argv`: the vLLM command line from settings (`build_argv`, model-family flags, `base_url`);
- `_ports`: whether a port is free and who holds it (`check_port_free`, `port_owner`);
- `_replicas`: replica sets, pure: ports and CUDA_VISIBLE_DEVICES per replica (`plan_replicas`);
- `_launch`: launching, recording and waiting until servers answer (`start_server`, `start_servers`);
- `_signals`: SIGINT/SIGTERM/SIGHUP while starting (held back from launch to record; `termination_as_interrupt`);
- `_logs`: log tails, following, and why a start-up failed (`summarize_log`);
- `_procs`: process groups in /proc (`is_running`, `leader_alive`, signalling and waiting);
- `_state`: the state file (`ServerInfo`, `ServerStatus`, the state directory);
- `_manage`: recorded servers (`list_servers`, `find_group`, `stop_server`).

Importing this package stays cheap (no httpx, no pydantic): the CLI imports it for `--help`.
"""

from __future__ import annotations

from ._argv import API_KEY_ENV, base_url, build_argv, build_replica_argvs, model_family_flags
from ._launch import STARTUP_STOP_GRACE, running_twins, start_server, start_servers, wait_until_ready
from ._logs import LOG_TAIL_LINES, follow_log, last_log_message, read_log_tail, summarize_log
from ._manage import find_group, list_servers, pick_replica, stop_server
from ._ports import check_port_free, port_owner
from ._procs import POLL_INTERVAL, STOP_GRACE, is_running, leader_alive
from ._replicas import CUDA_DEVICES_ENV, Replica, plan_replicas, replica_devices, replica_ports
from ._signals import StartInterrupted, termination_as_interrupt
from ._state import (
    LOG_DIR_NAME,
    STATE_FILE_NAME,
    ServerInfo,
    ServerStatus,
    default_state_dir,
    resolve_state_dir,
)

__all__ = [
    "API_KEY_ENV",
    "CUDA_DEVICES_ENV",
    "LOG_DIR_NAME",
    "LOG_TAIL_LINES",
    "POLL_INTERVAL",
    "STARTUP_STOP_GRACE",
    "STATE_FILE_NAME",
    "STOP_GRACE",
    "Replica",
    "ServerInfo",
    "ServerStatus",
    "StartInterrupted",
    "base_url",
    "build_argv",
    "build_replica_argvs",
    "check_port_free",
    "default_state_dir",
    "find_group",
    "follow_log",
    "is_running",
    "last_log_message",
    "leader_alive",
    "list_servers",
    "model_family_flags",
    "pick_replica",
    "plan_replicas",
    "port_owner",
    "read_log_tail",
    "replica_devices",
    "replica_ports",
    "resolve_state_dir",
    "running_twins",
    "start_server",
    "start_servers",
    "stop_server",
    "summarize_log",
    "termination_as_interrupt",
    "wait_until_ready",
]
