"""Starting a server: check the port, launch vLLM detached, record it, wait until it answers (or clean up)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ServerError
from ._argv import API_KEY_ENV, base_url, build_replica_argvs
from ._logs import LOG_TAIL_LINES, _indent, _shorten, _signal_name, read_log_tail, summarize_log
from ._ports import check_port_free
from ._procs import POLL_INTERVAL, _pgid_of, _start_ticks, _terminate_groups, is_running, leader_alive
from ._replicas import CUDA_DEVICES_ENV, Replica, plan_replicas
from ._signals import StartInterrupted, _interrupts_ignored, _signals_deferred, _termination_as_interrupt
from ._state import (
    LOG_DIR_NAME,
    ServerInfo,
    _read_state,
    _remove_entry,
    _state_dir_error,
    _state_lock,
    _write_state,
    resolve_state_dir,
)

if TYPE_CHECKING:  # both cost ~0.1 s to import: loaded where a server is started or asked, not for `--help`
    import httpx

    from ..settings import Settings

STARTUP_STOP_GRACE = 3.0
"""Seconds a half-started server gets after SIGTERM (vLLM ignores it while loading; it has nothing to save)."""


def start_server(
    settings: Settings,
    extra: Sequence[str] = (),
    on_wait: Callable[[float, Path], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> ServerInfo:
    """Start vLLM detached (own session and process group, output to a log file) and wait until it answers.

    The server keeps running after this returns; it is recorded in the state file for `status`, `logs`
    and `stop`. On any failure during start-up (exit, timeout, Ctrl-C, SIGTERM, SIGHUP) its process group is
    stopped and its state entry removed, so nothing is left behind. The process is recorded before any of
    these signals can interrupt (they are held back from launch to record). A signal keeps its meaning: SIGTERM
    or SIGHUP left at their default still end the program, once the server is stopped; a program's own handler
    runs (raise from it to stop the start; `termination_as_interrupt` does that). Called from another thread,
    it cannot be interrupted by signals (they go to the main thread); it still records before anything else.

    Args:
        settings: model, host, port, timeouts, vLLM command, state directory, API key (`replicas` must be 1;
            `start_servers` starts a replica set).
        extra: arguments passed to vLLM unchanged, after the ones built from settings.
        on_wait: called about twice a second with the seconds waited so far and the server's log file.
        on_interrupt: called on Ctrl-C (or SIGTERM, SIGHUP), before the half-started server is stopped (which
            takes a few seconds).

    Returns:
        The server's state entry, with the model ids it serves.

    Raises:
        ServerError: bad settings, port in use, a server already recorded for the port, vLLM missing,
            vLLM exiting during start-up (with its log tail and the command to rerun), or the timeout.
        KeyboardInterrupt: Ctrl-C while starting, or (as StartInterrupted, with its `signum`) SIGTERM or SIGHUP
            inside `termination_as_interrupt`; raised after the server was stopped.
    """
    if settings.replicas != 1:
        raise ServerError(
            f"start_server starts one server, not --replicas {settings.replicas}", hint="use start_servers"
        )
    return start_servers(settings, extra, on_wait, on_interrupt)[0]


def start_servers(
    settings: Settings,
    extra: Sequence[str] = (),
    on_wait: Callable[[float, Path], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> list[ServerInfo]:
    """Start `settings.replicas` vLLM servers on consecutive ports (each with its own GPUs) and wait for all.

    As `start_server`, for each replica: every port is checked before any server is launched; the servers start
    at once and are recorded (one state entry each, naming their set) before a signal can interrupt; this returns
    when all answer. If one fails (exits, times out) or the start is interrupted, every replica is stopped and
    forgotten, and the error names the replica that failed and its log.

    Returns:
        The state entries of the replicas, in order (replica i on `settings.port + i`).

    Raises:
        ServerError: as `start_server`, naming the replica; also too few devices in CUDA_VISIBLE_DEVICES.
        KeyboardInterrupt: as `start_server`, after every replica was stopped.
    """
    replicas = plan_replicas(
        settings.port, settings.replicas, settings.gpus_per_replica, os.environ.get(CUDA_DEVICES_ENV)
    )
    argvs = build_replica_argvs(settings, replicas, extra)
    state_dir = resolve_state_dir(settings)
    env = dict(os.environ)
    if settings.api_key_value:
        env[API_KEY_ENV] = settings.api_key_value
    # SIGTERM and SIGHUP left at their default (ending the program at once) would orphan the half-started server:
    # meanwhile they raise StartInterrupted, and once it is stopped they end the program as they would have.
    with _termination_as_interrupt() as taken_over:
        try:
            return _start(settings, replicas, argvs, env, state_dir, on_wait, on_interrupt)
        except StartInterrupted as interrupt:
            if interrupt.signum in taken_over:
                for sig in taken_over:
                    signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(interrupt.signum)
            raise


def _start(
    settings: Settings,
    replicas: list[Replica],
    argvs: list[list[str]],
    env: dict[str, str],
    state_dir: Path,
    on_wait: Callable[[float, Path], None] | None,
    on_interrupt: Callable[[], None] | None,
) -> list[ServerInfo]:
    processes: list[subprocess.Popen[bytes]] = []
    infos: list[ServerInfo] = []
    group = replicas[0].port if len(replicas) > 1 else None
    try:
        # Check, launch and record under the state lock, so two commands cannot both claim one port.
        with _state_lock(state_dir):
            servers = _read_state(state_dir)
            for replica in replicas:
                _check_no_server_on_port(servers, settings, replica.port)
            for replica in replicas:  # every port before any launch: a busy one starts nothing
                check_port_free(settings.host, replica.port, hint=_ports_hint(replicas))
            for replica, argv in zip(replicas, argvs, strict=True):
                replica_env = env if replica.devices is None else {**env, CUDA_DEVICES_ENV: replica.devices}
                # From launch to record no signal may interrupt: a server nobody recorded would hold the GPU with
                # nothing to stop it. One that arrives meanwhile takes effect right after (the except below).
                with _signals_deferred():
                    shown = f"{CUDA_DEVICES_ENV}={replica.devices} " if replica.devices is not None else ""
                    process, log_path = _launch(argv, replica_env, state_dir / LOG_DIR_NAME, replica.port, shown)
                    processes.append(process)
                    infos.append(
                        ServerInfo(
                            port=replica.port,
                            host=settings.host,
                            url=base_url(settings.host, replica.port),
                            pid=process.pid,
                            pgid=_pgid_of(process.pid),
                            model=settings.model or "",
                            argv=argv,
                            log=str(log_path),
                            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                            start_ticks=_start_ticks(process.pid),
                            api_key_set=settings.api_key_value is not None,
                            replica=replica.index,
                            replicas=replica.count,
                            group=group,
                            devices=replica.devices,
                        )
                    )
                    ports = {info.port for info in infos}
                    _write_state(state_dir, [*(other for other in servers if other.port not in ports), *infos])
        answers = _wait_all_ready(
            list(zip(infos, processes, strict=True)), settings.serve_timeout, settings.api_key_value, on_wait
        )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        ready = [
            replace(info, served_models=_model_ids(answer), max_model_len=_max_model_len(answer), ready_at=now)
            for info, answer in zip(infos, answers, strict=True)
        ]
        by_pid = {info.pid: info for info in ready}
        with _state_lock(state_dir):
            servers = _read_state(state_dir)
            _write_state(state_dir, [by_pid.get(other.pid, other) for other in servers])
    except BaseException as failure:
        if processes:
            with _interrupts_ignored():  # a second Ctrl-C must not leave a half-started server behind
                if on_interrupt is not None and isinstance(failure, KeyboardInterrupt):
                    with contextlib.suppress(Exception):  # e.g. a closed terminal: the clean-up comes first
                        on_interrupt()
                launched = [
                    (infos[index] if index < len(infos) else _unrecorded(process, settings), process)
                    for index, process in enumerate(processes)
                ]
                _terminate_groups(launched, STARTUP_STOP_GRACE)
                for info in infos:
                    with contextlib.suppress(ServerError):  # a state file we cannot write: the error is raised
                        _remove_entry(state_dir, info)
        raise
    return ready


def _ports_hint(replicas: list[Replica]) -> str | None:
    """For a replica set, the hint of a busy port says which ports the set needs (None: the usual hint)."""
    if len(replicas) == 1:
        return None
    return (
        f"--replicas {len(replicas)} uses ports {replicas[0].port}-{replicas[-1].port}: stop whatever uses the "
        "busy one (`collect serve status` lists servers started by collect) or pick a --port where all are free"
    )


def _check_no_server_on_port(servers: list[ServerInfo], settings: Settings, port: int) -> None:
    """Fail if the state file has a server on the port that still runs (whole or broken)."""
    for other in servers:
        if other.port == port and is_running(other) and not leader_alive(other):
            raise ServerError(
                f"the server collect started on port {port} (pid {other.pid}) died, "
                "but processes of its group still run",
                hint=f"end them first: collect serve stop --port {port}{_state_flag(settings)}",
            )
        if other.port == port and is_running(other):
            raise ServerError(
                f"a server started by collect already runs on port {port} (pid {other.pid}, model {other.model})",
                hint=f"use it at {other.url}, or stop it: collect serve stop --port {port}{_state_flag(settings)}",
            )


def _unrecorded(process: subprocess.Popen[bytes], settings: Settings) -> ServerInfo:
    """A stand-in entry for a process launched but not described yet (only to stop its group)."""
    return ServerInfo(
        port=settings.port,
        host=settings.host,
        url="",
        pid=process.pid,
        pgid=process.pid,  # start_new_session: it leads a group of its own
        model="",
        argv=[],
        log="",
        started_at="",
    )


def running_twins(settings: Settings, extra: Sequence[str] = ()) -> list[ServerInfo] | None:
    """The recorded servers started with the very command `settings` and `extra` give, all ready and answering.

    Rerunning `collect serve` (a notebook run from the top) can then reuse them instead of failing on the port.
    Each must answer `GET /models` with 200 using the current key, so a server wanting another key is not reused;
    for a replica set, every replica must be there, with the same devices.

    Returns:
        The servers (one per replica, in order), or None when any is missing, differs or does not answer.

    Raises:
        ServerError: bad settings (as `build_argv`), too few devices, or an unreadable state file.
    """
    replicas = plan_replicas(
        settings.port, settings.replicas, settings.gpus_per_replica, os.environ.get(CUDA_DEVICES_ENV)
    )
    recorded = _read_state(resolve_state_dir(settings))
    twins = []
    for replica, argv in zip(replicas, build_replica_argvs(settings, replicas, extra), strict=True):
        twin = next((info for info in recorded if info.port == replica.port and info.argv == argv), None)
        if twin is None or not (twin.ready_at or twin.served_models):
            return None
        if (twin.devices, twin.replicas, twin.replica) != (replica.devices, replica.count, replica.index):
            return None
        if twin.api_key_set != (settings.api_key_value is not None) or not leader_alive(twin):
            return None
        if not _answers_with_key(twin.url, settings.api_key_value):
            return None
        twins.append(twin)
    return twins


def _answers_with_key(url: str, key: str | None) -> bool:
    import httpx  # on first use: `import llmrouter_collect.server` stays cheap for the CLI

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        answer = httpx.get(f"{url}/models", headers=headers, timeout=httpx.Timeout(5.0, connect=1.0))
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def _state_flag(settings: Settings) -> str:
    """` --state-dir DIR` for a command in a hint when the state directory is not the default one."""
    return f" --state-dir {shlex.quote(str(settings.state_dir))}" if settings.state_dir else ""


def _launch(
    argv: list[str], env: dict[str, str], log_dir: Path, port: int, shown_env: str = ""
) -> tuple[subprocess.Popen[bytes], Path]:
    """Run `argv` in a new session (its own process group) with stdout and stderr going to a new log file.

    The log starts with the command (after `shown_env`, the variables set for it that may be shown).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_path = log_dir / f"vllm-{port}-{stamp}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
    except OSError as err:
        raise _state_dir_error(log_dir, err) from None
    with log_file as log:
        log.write(
            f"# collect serve: {shown_env}{shlex.join(argv)}\n# started {datetime.now(UTC).isoformat()}\n".encode()
        )
        log.flush()
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own session and process group: outlives us, stopped as one group
                close_fds=True,  # no inherited pipes, so a Colab `!` cell ends when we do
            )
        except OSError as err:
            log_path.unlink(missing_ok=True)
            raise ServerError(
                f"cannot run the vLLM command {argv[0]!r}: {err.strerror or err}",
                hint="install vLLM, or point --vllm-command / COLLECT_VLLM_COMMAND at it "
                "(e.g. '/path/to/venv/bin/python -m vllm.entrypoints.openai.api_server')",
            ) from None
    return process, log_path


def wait_until_ready(
    info: ServerInfo,
    process: subprocess.Popen[bytes],
    timeout: float,
    api_key: str | None = None,
    on_wait: Callable[[float, Path], None] | None = None,
) -> httpx.Response:
    """Poll `GET {url}/models` until it answers, watching the process on every loop.

    Returns:
        The answer: 200 with the model list, or 401/403 (it is up but wants another key).

    Raises:
        ServerError: the process exited, or `timeout` seconds passed; with the log tail and the command.
    """
    return _wait_all_ready([(info, process)], timeout, api_key, on_wait)[0]


def _wait_all_ready(
    servers: list[tuple[ServerInfo, subprocess.Popen[bytes]]],
    timeout: float,
    api_key: str | None,
    on_wait: Callable[[float, Path], None] | None,
) -> list[httpx.Response]:
    """`wait_until_ready` for several servers at once: the answers in order, once every one answered.

    Raises:
        ServerError: one exited or did not answer within `timeout` seconds (the first such, named).
    """
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answers: dict[int, httpx.Response] = {}
    import httpx  # on first use: `import llmrouter_collect.server` stays cheap for the CLI

    with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0), headers=headers) as client:
        while True:
            for index, (info, process) in enumerate(servers):
                if index in answers:
                    continue
                code = process.poll()
                if code is not None:
                    raise _exit_error(info, code, time.monotonic() - started)
                try:
                    response = client.get(f"{info.url}/models")
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code in (200, 401, 403):
                    answers[index] = response
            if len(answers) == len(servers):
                return [answers[index] for index in range(len(servers))]
            elapsed = time.monotonic() - started
            waiting = next(info for index, (info, _) in enumerate(servers) if index not in answers)
            if elapsed >= timeout:
                _, tail = summarize_log(read_log_tail(Path(waiting.log), 400), LOG_TAIL_LINES)
                stopped = "stopped it" if len(servers) == 1 else f"stopped all {len(servers)} replicas"
                raise ServerError(
                    f"{_prefix(waiting)}vLLM did not answer on {waiting.url} within {timeout:.0f}s; {stopped}. "
                    "Its log ends:\n" + _indent(tail),
                    hint=f"raise --serve-timeout if it was still loading; log: {waiting.log}\n"
                    f"rerun by hand: {waiting.command}",
                )
            if on_wait is not None:
                on_wait(elapsed, Path(waiting.log))
            time.sleep(POLL_INTERVAL)


def _prefix(info: ServerInfo) -> str:
    """`replica I (port P): ` before an error about a member of a replica set; nothing for a server alone."""
    return f"{info.label}: " if info.replicas > 1 else ""


def _exit_error(info: ServerInfo, code: int, elapsed: float) -> ServerError:
    """The error for a server that exited while starting: vLLM's own error first, then a short log tail."""
    cause, tail = summarize_log(read_log_tail(Path(info.log), 400), LOG_TAIL_LINES)
    hints = [f"log: {info.log}", f"rerun by hand to see more: {info.command}"]
    if info.replicas > 1:
        hints.insert(0, f"all {info.replicas} replicas were stopped; the log of {info.label} says why")
    if cause and "unrecognized arguments" in cause:
        hints.insert(0, "a flag after `--` is misspelled or unknown to this vLLM version")
    if cause and "No module named 'vllm'" in cause:
        hints.insert(
            0,
            "this Python has no vLLM: point --vllm-command / COLLECT_VLLM_COMMAND at the Python "
            "of the environment where vLLM is installed",
        )
    if code < 0:  # a signal: `collect serve stop`, the out-of-memory killer, a `kill` by hand
        ended = f"was killed by {_signal_name(-code)}"
        hints.insert(0, "another command stopped it (e.g. `collect serve stop`), or the system ran out of memory")
    else:
        ended = f"exited with code {code}"
    message = f"{_prefix(info)}vLLM {ended} during start-up (after {elapsed:.0f}s)" + (
        f": {_shorten(cause)}" if cause else ""
    )
    return ServerError(f"{message}\nits log ends:\n{_indent(tail)}", hint="\n".join(hints))


def _model_entries(response: httpx.Response) -> list[dict[str, Any]]:
    if response.status_code != 200:
        return []
    try:
        data = response.json().get("data", [])
    except (ValueError, AttributeError):
        return []
    return [item for item in data if isinstance(item, dict) and "id" in item] if isinstance(data, list) else []


def _model_ids(response: httpx.Response) -> list[str]:
    return [str(item["id"]) for item in _model_entries(response)]


def _max_model_len(response: httpx.Response) -> int | None:
    """The smallest context length among the listed models (vLLM's `max_model_len`), if any is given."""
    lengths = [item["max_model_len"] for item in _model_entries(response) if isinstance(item.get("max_model_len"), int)]
    return min(lengths) if lengths else None
