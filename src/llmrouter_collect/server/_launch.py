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
from ._argv import API_KEY_ENV, base_url, build_argv
from ._logs import LOG_TAIL_LINES, _indent, _shorten, _signal_name, read_log_tail, summarize_log
from ._ports import check_port_free
from ._procs import POLL_INTERVAL, _pgid_of, _start_ticks, _terminate_group, is_running, leader_alive
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
        settings: model, host, port, timeouts, vLLM command, state directory, API key.
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
    argv = build_argv(settings, extra)
    state_dir = resolve_state_dir(settings)
    env = dict(os.environ)
    if settings.api_key_value:
        env[API_KEY_ENV] = settings.api_key_value
    # SIGTERM and SIGHUP left at their default (ending the program at once) would orphan the half-started server:
    # meanwhile they raise StartInterrupted, and once it is stopped they end the program as they would have.
    with _termination_as_interrupt() as taken_over:
        try:
            return _start(settings, argv, env, state_dir, on_wait, on_interrupt)
        except StartInterrupted as interrupt:
            if interrupt.signum in taken_over:
                for sig in taken_over:
                    signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(interrupt.signum)
            raise


def _start(
    settings: Settings,
    argv: list[str],
    env: dict[str, str],
    state_dir: Path,
    on_wait: Callable[[float, Path], None] | None,
    on_interrupt: Callable[[], None] | None,
) -> ServerInfo:
    process: subprocess.Popen[bytes] | None = None
    info: ServerInfo | None = None
    try:
        # Check, launch and record under the state lock, so two commands cannot both claim one port.
        with _state_lock(state_dir):
            servers = _read_state(state_dir)
            _check_no_server_on_port(servers, settings)
            check_port_free(settings.host, settings.port)
            # From launch to record no signal may interrupt: a server nobody recorded would hold the GPU with
            # nothing to stop it. One that arrives meanwhile takes effect right after (the except below).
            with _signals_deferred():
                process, log_path = _launch(argv, env, state_dir / LOG_DIR_NAME, settings.port)
                info = ServerInfo(
                    port=settings.port,
                    host=settings.host,
                    url=base_url(settings.host, settings.port),
                    pid=process.pid,
                    pgid=_pgid_of(process.pid),
                    model=settings.model or "",
                    argv=argv,
                    log=str(log_path),
                    started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    start_ticks=_start_ticks(process.pid),
                    api_key_set=settings.api_key_value is not None,
                )
                _write_state(state_dir, [*(other for other in servers if other.port != info.port), info])
        answer = wait_until_ready(info, process, settings.serve_timeout, settings.api_key_value, on_wait)
        ready = replace(
            info,
            served_models=_model_ids(answer),
            max_model_len=_max_model_len(answer),
            ready_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with _state_lock(state_dir):
            servers = _read_state(state_dir)
            _write_state(state_dir, [ready if other.pid == info.pid else other for other in servers])
    except BaseException as failure:
        if process is not None:
            with _interrupts_ignored():  # a second Ctrl-C must not leave the half-started server behind
                if on_interrupt is not None and isinstance(failure, KeyboardInterrupt):
                    with contextlib.suppress(Exception):  # e.g. a closed terminal: the clean-up comes first
                        on_interrupt()
                _terminate_group(info or _unrecorded(process, settings), process, STARTUP_STOP_GRACE)
                if info is not None:
                    with contextlib.suppress(ServerError):  # a state file we cannot write: the error is raised
                        _remove_entry(state_dir, info)
        raise
    return ready


def _check_no_server_on_port(servers: list[ServerInfo], settings: Settings) -> None:
    """Fail if the state file has a server on the port that still runs (whole or broken)."""
    for other in servers:
        if other.port == settings.port and is_running(other) and not leader_alive(other):
            raise ServerError(
                f"the server collect started on port {settings.port} (pid {other.pid}) died, "
                "but processes of its group still run",
                hint=f"end them first: collect serve stop --port {settings.port}{_state_flag(settings)}",
            )
        if other.port == settings.port and is_running(other):
            raise ServerError(
                f"a server started by collect already runs on port {settings.port} "
                f"(pid {other.pid}, model {other.model})",
                hint=f"use it at {other.url}, or stop it: "
                f"collect serve stop --port {settings.port}{_state_flag(settings)}",
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


def running_twin(settings: Settings, extra: Sequence[str] = ()) -> ServerInfo | None:
    """A recorded server started with the very command `settings` and `extra` give, ready and answering.

    Rerunning `collect serve` (a notebook run from the top) can then reuse it instead of failing on the port.
    It must answer `GET /models` with 200 using the current key, so a server wanting another key is not reused.

    Raises:
        ServerError: bad settings (as `build_argv`) or an unreadable state file.
    """
    argv = build_argv(settings, extra)
    state_dir = resolve_state_dir(settings)
    for info in _read_state(state_dir):
        if info.port != settings.port or info.argv != argv or not (info.ready_at or info.served_models):
            continue
        if info.api_key_set != (settings.api_key_value is not None) or not leader_alive(info):
            return None
        import httpx  # on first use: `import llmrouter_collect.server` stays cheap for the CLI

        key = settings.api_key_value
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            answer = httpx.get(f"{info.url}/models", headers=headers, timeout=httpx.Timeout(5.0, connect=1.0))
        except httpx.HTTPError:
            return None
        return info if answer.status_code == 200 else None
    return None


def _state_flag(settings: Settings) -> str:
    """` --state-dir DIR` for a command in a hint when the state directory is not the default one."""
    return f" --state-dir {shlex.quote(str(settings.state_dir))}" if settings.state_dir else ""


def _launch(argv: list[str], env: dict[str, str], log_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """Run `argv` in a new session (its own process group) with stdout and stderr going to a new log file."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_path = log_dir / f"vllm-{port}-{stamp}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
    except OSError as err:
        raise _state_dir_error(log_dir, err) from None
    with log_file as log:
        log.write(f"# collect serve: {shlex.join(argv)}\n# started {datetime.now(UTC).isoformat()}\n".encode())
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
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    import httpx  # on first use: `import llmrouter_collect.server` stays cheap for the CLI

    with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0), headers=headers) as client:
        while True:
            code = process.poll()
            elapsed = time.monotonic() - started
            if code is not None:
                raise _exit_error(info, code, elapsed)
            try:
                response = client.get(f"{info.url}/models")
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (200, 401, 403):
                return response
            if elapsed >= timeout:
                _, tail = summarize_log(read_log_tail(Path(info.log), 400), LOG_TAIL_LINES)
                raise ServerError(
                    f"vLLM did not answer on {info.url} within {timeout:.0f}s; stopped it. Its log ends:\n"
                    + _indent(tail),
                    hint=f"raise --serve-timeout if it was still loading; log: {info.log}\n"
                    f"rerun by hand: {info.command}",
                )
            if on_wait is not None:
                on_wait(elapsed, Path(info.log))
            time.sleep(POLL_INTERVAL)


def _exit_error(info: ServerInfo, code: int, elapsed: float) -> ServerError:
    """The error for a server that exited while starting: vLLM's own error first, then a short log tail."""
    cause, tail = summarize_log(read_log_tail(Path(info.log), 400), LOG_TAIL_LINES)
    hints = [f"log: {info.log}", f"rerun by hand to see more: {info.command}"]
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
    message = f"vLLM {ended} during start-up (after {elapsed:.0f}s)" + (f": {_shorten(cause)}" if cause else "")
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
