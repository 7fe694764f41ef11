"""vLLM server lifecycle: build its command, start it detached, wait until ready, list, tail and stop it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .errors import ServerError

if TYPE_CHECKING:  # both cost ~0.1 s to import: loaded where a server is started or asked, not for `--help`
    import httpx

    from .settings import Settings

STATE_FILE_NAME = "servers.json"
"""The state file in the state directory: every server `collect serve` started and has not stopped."""
LOCK_FILE_NAME = "servers.lock"
LOG_DIR_NAME = "logs"
STATE_SCHEMA_VERSION = 1
POLL_INTERVAL = 0.5
"""Seconds between two readiness checks (and two liveness checks while stopping)."""
STOP_GRACE = 30.0
"""Seconds a server gets to exit after SIGTERM before its process group gets SIGKILL."""
LOG_TAIL_LINES = 12
"""Log lines shown when a server fails to start (traceback frames and usage text left out; the log has them)."""
STARTUP_STOP_GRACE = 3.0
"""Seconds a half-started server gets after SIGTERM (vLLM ignores it while loading; it has nothing to save)."""
API_KEY_ENV = "VLLM_API_KEY"
"""vLLM reads its key from this variable, which keeps it out of argv, `ps`, logs and the state file."""

# Flags `collect serve` sets itself; given after `--` they would silently disagree with the state file.
_OWN_FLAGS = {
    "--host": "--host",
    "--port": "--port",
    "--model": "--model",
    "--api-key": "--api-key (it reaches vLLM through VLLM_API_KEY, never on the command line)",
}
# Commands whose paths are another filesystem's (a container's): a local model path is not checked for them.
_CONTAINER_RUNNERS = {"docker", "podman", "nerdctl", "apptainer", "singularity", "enroot"}
# vLLM's prefix on lines of its sub-processes: `(Worker pid=1) ERROR 11-29 10:20:49 [file.py:1] `.
_LOG_PREFIX = re.compile(r"^\(\w+ pid=\d+\)\s+(?:([A-Z]+) [\d-]+ [\d:]+ \[[^\]]*\]\s?)?")
# A line that states an error: `ValueError: ...` or argparse's `prog: error: ...`.
_ERROR_LINE = re.compile(
    r"^(?:[\w.]*(?:Error|Exception)(?::\s.*)?|\S+: error: .*|\S+: Error while finding module specification .*)$"
)
_POINTER_PHRASES = ("root cause", "stack trace", "see above", "traceback above")
"""An error line with one of these only points at another one (vLLM's "See root cause above")."""
# pydantic's `ValidationError: 1 validation error for ModelConfig` names the reason two lines further on.
_VALIDATION_ERRORS = re.compile(r"\d+ validation errors? for \w+$")
# Lines of a Python traceback, an argparse usage text, a warnings.warn echo or the header `collect serve`
# wrote (the command is in the hint): noise in a short tail.
_FRAME_LINE = re.compile(r"^\s+File \".*\", line \d+")
_NOISE_LINE = re.compile(
    r"^(?:Traceback \(most recent call last\):.*|\s*[\^~]+\s*|usage: .*|\s+\[.*|\s+warnings\.warn\(.*"
    r"|# collect serve: .*|# started .*)$"
)
_HAS_PROC = Path("/proc/self/stat").exists()
"""Linux: process states and start times come from /proc (zombies and reused pids are told apart)."""
# Model families that need flags of their own: (substring of the model name, flags).
# Gemma 2/3 are numerically unstable in float16; vLLM refuses float16 for them, and bfloat16 is what they
# were trained in. On GPUs without bfloat16 (e.g. T4) pass `-- --dtype float32` instead.
_FAMILY_FLAGS: tuple[tuple[str, tuple[str, ...]], ...] = (("gemma", ("--dtype", "bfloat16")),)


@dataclass(frozen=True)
class ServerInfo:
    """One server started by `collect serve`, as kept in the state file (never holds the API key)."""

    port: int
    host: str
    url: str
    """Base URL of its OpenAI-compatible API, ending in /v1."""
    pid: int
    pgid: int
    """The process group `collect serve` created for it; `stop` signals this group."""
    model: str
    argv: list[str]
    log: str
    started_at: str
    start_ticks: int | None = None
    """Start time of `pid` (Linux /proc clock ticks), so a reused pid is never taken for the server."""
    api_key_set: bool = False
    served_models: list[str] = field(default_factory=list)
    """Model ids the server listed on /v1/models once ready (empty while starting)."""
    ready_at: str | None = None
    """When it first answered (None while starting)."""
    max_model_len: int | None = None
    """The context length the server reported on /v1/models (vLLM does; None if unknown)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerInfo:
        """Build from one entry of the state file (unknown keys are ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @property
    def command(self) -> str:
        """The command line, quoted for a POSIX shell."""
        prefix = f"{API_KEY_ENV}=... " if self.api_key_set else ""
        return prefix + shlex.join(self.argv)


@dataclass(frozen=True)
class ServerStatus:
    """A server from the state file and whether its process group is still running."""

    info: ServerInfo
    running: bool
    """Some process of its group is alive (`stop` has something to end)."""
    leader_alive: bool
    """The process `collect serve` started (vLLM's API server) is alive; without it nothing answers."""
    answers: bool = False
    """It answered `GET /models` when listed (asked only of a server never recorded as ready)."""

    @property
    def state(self) -> str:
        """`starting`, `running`, `broken` (its API server died, other processes of its group remain) or `exited`."""
        if not self.running:
            return "exited"
        if not self.leader_alive:
            return "broken"
        ready = self.info.ready_at or self.info.served_models or self.answers  # ready_at: since this version
        return "running" if ready else "starting"


# --- building the command ------------------------------------------------------------------------------


def default_state_dir() -> Path:
    """`~/.cache/llmrouter-collect`, where the state file and logs live unless `state_dir` is set."""
    return Path.home() / ".cache" / "llmrouter-collect"


def resolve_state_dir(settings: Settings) -> Path:
    """The state directory from settings, or the default."""
    return (settings.state_dir or default_state_dir()).expanduser().absolute()  # logs recorded by full path


def base_url(host: str, port: int) -> str:
    """The URL clients use for a server bound to `host:port` (a wildcard address becomes the loopback one)."""
    address = _client_host(host)
    return f"http://[{address}]:{port}/v1" if ":" in address else f"http://{address}:{port}/v1"


def _client_host(host: str) -> str:
    """The address a client connects to for a server bound to `host`."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def model_family_flags(model: str, extra: Sequence[str] = ()) -> list[str]:
    """vLLM flags a model family needs (e.g. Gemma: `--dtype bfloat16`), minus flags already in `extra`."""
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    flags: list[str] = []
    lowered = model.lower()
    for needle, family_flags in _FAMILY_FLAGS:
        if needle in lowered and family_flags[0] not in given:
            flags.extend(family_flags)
    return flags


def build_argv(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """The vLLM command line (argv list, never a shell string) for `settings`, followed by `extra` unchanged.

    The model goes positionally when the command ends in `serve` (`vllm serve MODEL`), else as `--model`.

    Raises:
        ServerError: no model, an empty or unparsable vLLM command, or a flag after `--` that
            `collect serve` sets itself.
    """
    if not settings.model:
        raise ServerError(
            "no model to serve", hint="pass --model (a Hugging Face id or local folder) or set COLLECT_MODEL"
        )
    try:
        command = shlex.split(settings.vllm_command)
    except ValueError as err:
        raise ServerError(f"cannot parse --vllm-command {settings.vllm_command!r}: {err}") from None
    if not command:
        raise ServerError("--vllm-command / COLLECT_VLLM_COMMAND is empty", hint="e.g. `vllm serve`")
    for arg in extra:
        name = arg.split("=", 1)[0]
        if name in _OWN_FLAGS:
            raise ServerError(
                f"{name} after `--` is set by `collect serve` itself",
                hint=f"pass {_OWN_FLAGS[name]} to `collect serve` (before `--`)",
            )
    model = _check_local_model(settings.model, command)
    model_args = [model] if command[-1] == "serve" else ["--model", model]
    argv = [*command, *model_args, "--host", settings.host, "--port", str(settings.port)]
    if settings.max_model_len is not None:
        argv += ["--max-model-len", str(settings.max_model_len)]
    argv += ["--gpu-memory-utilization", str(settings.gpu_util)]
    if settings.enforce_eager and "--enforce-eager" not in extra:
        argv.append("--enforce-eager")
    if settings.model_flags:
        argv += model_family_flags(settings.model, extra)
    return [*argv, *extra]


def _check_local_model(model: str, command: Sequence[str]) -> str:
    """The model argument for vLLM: a Hugging Face id as given, a local path checked (and `~` expanded).

    A path that does not exist, or a folder without config.json, fails here in a moment instead of after
    vLLM has loaded. Paths are not checked for a container command (they name the container's files).

    Raises:
        ServerError: a local path that does not exist or a folder that holds no model.
    """
    if Path(command[0]).name in _CONTAINER_RUNNERS:
        return model
    path = Path(model).expanduser()
    looks_local = model.startswith(("/", "./", "../", "~")) or model in (".", "..") or model.count("/") > 1
    hint = "give a model folder (with its config.json) or a Hugging Face id such as Qwen/Qwen2.5-1.5B-Instruct"
    if looks_local and not path.exists():
        raise ServerError(f"--model {model}: no such file or folder", hint=hint)
    if path.is_dir() and not any((path / name).exists() for name in ("config.json", "params.json")):
        raise ServerError(f"--model {model} is a folder without config.json, not a model", hint=hint)
    return str(path) if model.startswith("~") else model


# --- starting -----------------------------------------------------------------------------------------


def check_port_free(host: str, port: int) -> None:
    """Fail if something listens on `host:port` or the address cannot be bound.

    Raises:
        ServerError: the port is taken (naming it and how to pick another).
    """
    hint = "stop whatever uses it (`collect serve status` lists servers started by collect) or pick --port"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    connect_host = _client_host(host)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            answered = probe.connect_ex((connect_host, port)) == 0
        except OSError as err:  # e.g. a host name that does not resolve (socket.gaierror)
            raise ServerError(
                f"cannot use --host {host}: {err.strerror or err}",
                hint="give an address of this machine: 127.0.0.1 (default), 0.0.0.0 (all) or one of its IPs",
            ) from None
        if answered:
            owner = port_owner(port)
            message = f"port {port} is already in use (" + (
                f"by pid {owner[0]}: {owner[1]})" if owner else f"something answers on {connect_host}:{port})"
            )
            raise ServerError(message, hint)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option uvicorn sets, so a port in TIME_WAIT counts as free, as it will for vLLM.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ServerError(f"cannot bind {host}:{port}: {err.strerror or err}", hint) from None


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line) of a process of this user listening on TCP `port`, from /proc; None if unknown."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the socket's inode
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                command = shlex.join(arg.decode(errors="replace") for arg in argv if arg)
                return int(entry.name), _shorten(command, 120)
        except OSError:  # gone meanwhile, or another user's
            continue
    return None


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


def summarize_log(lines: list[str], keep: int) -> tuple[str | None, list[str]]:
    """Why a server failed, from its log: the line that states the error, and a short tail without noise.

    Args:
        lines: the end of the log.
        keep: how many lines of the tail to return.

    Returns:
        The last error line that is not a mere pointer to another one (`... See root cause above`), else the
        last pointer, else None; and the last `keep` lines without traceback frames, usage text or
        warnings.warn echoes.
    """
    cause: str | None = None
    pointer: str | None = None
    kept: list[str] = []
    after_frame = False
    wants_detail = False
    for line in lines:
        prefix = _LOG_PREFIX.match(line)
        bare = (line[prefix.end() :] if prefix else line).rstrip()
        if _FRAME_LINE.match(bare):
            after_frame = True  # the source line that follows a frame goes too
            continue
        if (after_frame and bare.startswith("    ")) or _NOISE_LINE.match(bare):
            after_frame = False
            continue
        after_frame = False
        kept.append(line)
        level = prefix.group(1) if prefix else None
        if cause is not None and wants_detail and bare.strip():
            cause, wants_detail = f"{cause}: {bare.strip()}", False  # pydantic's reason, on the next line
        elif level in (None, "ERROR", "CRITICAL") and _ERROR_LINE.match(bare):
            if any(phrase in bare.lower() for phrase in _POINTER_PHRASES):
                pointer = bare
            else:
                cause, wants_detail = bare, bool(_VALIDATION_ERRORS.search(bare))
    return cause or pointer, kept[-keep:] if keep > 0 else []


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _indent(lines: list[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines) if lines else "  | (the log is empty)"


# --- status, logs, stop --------------------------------------------------------------------------------


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


def find_server(state_dir: Path, port: int | None) -> ServerInfo:
    """The recorded server on `port`, or the only recorded server when `port` is None.

    Raises:
        ServerError: none recorded for the port, none at all, or several and no port given.
    """
    servers = _read_state(state_dir)
    if port is not None:
        for info in servers:
            if info.port == port:
                return info
        known = ", ".join(str(info.port) for info in servers) or "none"
        raise ServerError(
            f"no server started by collect on port {port} (known ports: {known})",
            hint=f"see `collect serve status`; logs of stopped servers stay in {state_dir / LOG_DIR_NAME}",
        )
    if not servers:
        raise ServerError(
            "no server started by collect is recorded",
            hint=f"start one with `collect serve --model M`; state file: {state_dir / STATE_FILE_NAME}",
        )
    if len(servers) > 1:
        ports = ", ".join(str(info.port) for info in sorted(servers, key=lambda i: i.port))
        example = min(info.port for info in servers)
        raise ServerError(
            f"several servers are recorded (ports {ports})", hint=f"choose one with --port (e.g. --port {example})"
        )
    return servers[0]


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


def read_log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (undecodable bytes replaced); empty if it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))  # enough for any sensible tail; logs can be huge
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:] if lines > 0 else []


def last_log_message(path: Path, limit: int = 100) -> str | None:
    """The last line of a log without vLLM's prefix (the step it is at while starting), at most `limit` long."""
    for line in reversed(read_log_tail(path, 5)):
        prefix = _LOG_PREFIX.match(line)
        text = (line[prefix.end() :] if prefix else line).strip()
        if text and not text.startswith("# "):  # not the lines `collect serve` wrote first
            return _shorten(text, limit)
    return None


def follow_log(
    path: Path,
    on_text: Callable[[str], None],
    poll: float = POLL_INTERVAL,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Pass text appended to `path` to `on_text` until interrupted, or until `alive()` turns false.

    Returns:
        False if it ended because `alive()` turned false (the writer is gone), True on Ctrl-C (ended quietly).
    """
    with contextlib.suppress(KeyboardInterrupt), path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            chunk = handle.read()
            if chunk:
                on_text(chunk.decode("utf-8", errors="replace"))
            elif alive is not None and not alive():
                rest = handle.read()  # what it wrote before it went
                if rest:
                    on_text(rest.decode("utf-8", errors="replace"))
                return False
            else:
                time.sleep(poll)
    return True


# --- process groups ------------------------------------------------------------------------------------


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


def _terminate_group(info: ServerInfo, process: subprocess.Popen[bytes], grace: float) -> None:
    """Stop a server that failed to start: SIGTERM its group, SIGKILL after `grace` s, reap the leader."""
    if is_running(info):
        _signal_group(info, signal.SIGTERM)
        if not _wait_gone(info, grace):
            _signal_group(info, signal.SIGKILL)
            _wait_gone(info, 10.0)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


# --- state file ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _state_lock(state_dir: Path) -> Iterator[None]:
    """Serialise read-modify-write of the state file between concurrent `collect serve` commands."""
    import fcntl  # POSIX only, like process groups; imported here so the CLI still loads elsewhere

    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = (state_dir / LOCK_FILE_NAME).open("a")
    except OSError as err:
        raise _state_dir_error(state_dir, err) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _state_dir_error(state_dir: Path, err: OSError) -> ServerError:
    return ServerError(
        f"cannot use the state directory {state_dir}: {err.strerror or err}",
        hint="point --state-dir or COLLECT_STATE_DIR at a folder you can write to",
    )


def _read_state(state_dir: Path) -> list[ServerInfo]:
    path = state_dir / STATE_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as err:
        raise ServerError(f"cannot read the state file {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text)
        return [ServerInfo.from_json(item) for item in data["servers"]]
    except (ValueError, KeyError, TypeError) as err:
        raise ServerError(
            f"the state file {path} is not valid ({err})",
            hint="delete it (servers it listed keep running; stop them by their pid) and retry",
        ) from None


def _write_state(state_dir: Path, servers: list[ServerInfo]) -> None:
    from .fileio import atomic_write_bytes  # tempfile and random: not for `collect --help`

    path = state_dir / STATE_FILE_NAME
    payload = {
        "schema_version": STATE_SCHEMA_VERSION,
        "servers": [asdict(info) for info in sorted(servers, key=lambda i: i.port)],
    }
    try:
        atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())  # never half a file, even on a crash
    except OSError as err:
        raise _state_dir_error(state_dir, err) from None


def _remove_entry(state_dir: Path, info: ServerInfo) -> None:
    with _state_lock(state_dir):
        servers = _read_state(state_dir)
        kept = [other for other in servers if not (other.port == info.port and other.pid == info.pid)]
        if len(kept) != len(servers):
            _write_state(state_dir, kept)
