"""`collect serve`: start a local vLLM server in the background; list, tail and stop the ones it started."""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from ..console import err_console, info, is_interactive, out_console, print_error, warn
from ..errors import ConfigError, ServerError
from ..server import (
    STOP_GRACE,
    ServerInfo,
    StartInterrupted,
    find_group,
    follow_log,
    is_running,
    last_log_message,
    leader_alive,
    list_servers,
    pick_replica,
    read_log_tail,
    resolve_state_dir,
    running_twins,
    start_servers,
    stop_server,
    termination_as_interrupt,
)
from . import app
from ._common import EXIT_INTERRUPTED, run_or_exit

if TYPE_CHECKING:
    from ..settings import Settings

PLAIN_PROGRESS_EVERY = 15.0
"""Seconds between two "still starting" lines when stderr is not a terminal (logs, Colab cells)."""
_EXTRA_KEY = "vllm_extra_args"
PROMPT_ROOM = 1024
"""Tokens left for the prompt when the suggested `collect infer` command needs a smaller --max-tokens."""


class _ServeGroup(TyperGroup):
    """A group whose arguments after `--` go to vLLM unchanged instead of naming a sub-command, and which
    takes a model given without --model (`collect serve MODEL`, as in `vllm serve MODEL`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: the (vendored) click Context
        if "--" in args:
            cut = args.index("--")
            ctx.meta[_EXTRA_KEY] = args[cut + 1 :]
            args = args[:cut]
        position = self._positional_model(args)
        if position is not None:
            args = ["--model", args[position], *args[:position], *args[position + 1 :]]
        return super().parse_args(ctx, args)

    def _positional_model(self, args: list[str]) -> int | None:
        """Where a model is given in place of a sub-command, if it is (never for a near-miss like `statu`)."""
        if "--model" in args or "-m" in args or any(arg.startswith("--model=") for arg in args):
            return None
        takes_value = {name for param in self.params if not getattr(param, "is_flag", True) for name in param.opts}
        index = 0
        while index < len(args):
            arg = args[index]
            if arg.startswith("-"):
                index += 2 if arg in takes_value else 1
                continue
            if arg in self.commands or difflib.get_close_matches(arg, list(self.commands)):
                return None
            return index
        return None


serve_app = typer.Typer(
    cls=_ServeGroup,
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(serve_app, name="serve")

StateDirOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Folder of the state file and logs (default ~/.cache/llmrouter-collect)."),
]
PortOption = Annotated[
    int | None, typer.Option("--port", "-p", help="The server's port (default: the only server recorded).")
]


@serve_app.callback()
def serve(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Hugging Face id or local folder to serve.")
    ] = None,
    max_model_len: Annotated[
        int | None,
        typer.Option("--max-model-len", "--max_model_len", help="Context length (default: vLLM's)."),
    ] = None,
    gpu_util: Annotated[
        float | None, typer.Option("--gpu-util", help="Fraction of GPU memory vLLM may use (default 0.95).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", help="Port to bind (default 8000); replica i binds port + i.")
    ] = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas", min=1, help="Servers to start on consecutive ports, each on its own GPUs (default 1)."
        ),
    ] = None,
    gpus_per_replica: Annotated[
        int | None,
        typer.Option(
            "--gpus-per-replica",
            help="GPUs per replica, sliced from CUDA_VISIBLE_DEVICES (default 1 with --replicas; alone: all).",
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1); 0.0.0.0 exposes it.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="Key the server requires (prefer COLLECT_API_KEY, which infer reads too)."),
    ] = None,
    vllm_command: Annotated[
        str | None,
        typer.Option(
            "--vllm-command",
            help="How to start vLLM (default 'vllm serve'), e.g. "
            "'/opt/venv/bin/python -m vllm.entrypoints.openai.api_server'.",
        ),
    ] = None,
    serve_timeout: Annotated[
        float | None,
        typer.Option("--serve-timeout", "--timeout", help="Seconds to wait for it (default 900)."),
    ] = None,
    enforce_eager: Annotated[
        bool | None,
        typer.Option("--enforce-eager/--no-enforce-eager", help="Pass --enforce-eager to vLLM (default on)."),
    ] = None,
    model_flags: Annotated[
        bool | None,
        typer.Option("--model-flags/--no-model-flags", help="Add model-family flags (Gemma: --dtype bfloat16)."),
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Start a vLLM server in the background and return once it answers (sub-commands: status, logs, stop).

    Arguments after `--` go to vLLM unchanged. The model may also come first without --model, as in
    `vllm serve MODEL`. Example:

    \b
        collect serve --model Qwen/Qwen2.5-1.5B-Instruct --max-model-len 8192 -- --tensor-parallel-size 2
        collect serve --model Qwen/Qwen2.5-1.5B-Instruct --replicas 4 --gpus-per-replica 1
    """
    extra: list[str] = ctx.meta.get(_EXTRA_KEY, [])
    given: dict[str, Any] = {
        "model": model,
        "max_model_len": max_model_len,
        "gpu_util": gpu_util,
        "port": port,
        "replicas": replicas,
        "gpus_per_replica": gpus_per_replica,
        "host": host,
        "api_key": api_key,
        "vllm_command": vllm_command,
        "serve_timeout": serve_timeout,
        "enforce_eager": enforce_eager,
        "model_flags": model_flags,
        "state_dir": state_dir,
    }
    if ctx.invoked_subcommand is not None:
        misplaced = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
        if misplaced or extra:
            shown = ", ".join(misplaced) if misplaced else "arguments after --"
            sub = ctx.invoked_subcommand
            print_error(
                ConfigError(
                    f"{shown}: options for starting a server, not for `collect serve {sub}`",
                    hint=f"put the sub-command's own options after it, e.g. `collect serve {sub} --port 8001`",
                )
            )
            raise typer.Exit(2)
        return
    settings = run_or_exit(lambda: _load_settings(**given))
    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        warn(f"binding {settings.host} without --api-key: anyone who reaches this machine can use the server")
    twins = run_or_exit(lambda: running_twins(settings, extra))
    if twins is not None:
        if len(twins) == 1:
            info(f"the same server already runs on port {twins[0].port} (since {twins[0].started_at}); reusing it")
        else:
            ports = f"{twins[0].port}-{twins[-1].port}"
            info(
                f"the same {len(twins)} replicas already run on ports {ports} "
                f"(since {twins[0].started_at}); reusing them"
            )
        _print_ready(twins, settings, key_from_flag=api_key is not None)
        return
    servers = run_or_exit(lambda: _start_with_progress(settings, extra))
    _print_ready(servers, settings, key_from_flag=api_key is not None)


def _start_with_progress(settings: Settings, extra: list[str]) -> list[ServerInfo]:
    label = f"starting vLLM for {settings.model} on port {settings.port}"
    if settings.replicas > 1:
        last = settings.port + settings.replicas - 1
        label = f"starting {settings.replicas} vLLM replicas for {settings.model} on ports {settings.port}-{last}"
    # SIGTERM and SIGHUP (`timeout`, a cancelled job, a closed terminal) are handled like Ctrl-C meanwhile.
    with _progress(label) as on_wait, termination_as_interrupt():
        try:
            return start_servers(
                settings,
                extra,
                on_wait=on_wait,
                on_interrupt=lambda: err_console.print("interrupted; stopping the server being started …"),
            )
        except KeyboardInterrupt as interrupt:  # start_servers has already stopped the half-started servers
            err_console.print("the server being started was stopped; nothing is left running")
            code = 128 + interrupt.signum if isinstance(interrupt, StartInterrupted) else EXIT_INTERRUPTED
            raise typer.Exit(code) from None


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A spinner with the elapsed time and vLLM's last log line on a terminal; a plain line every few
    seconds elsewhere."""
    if is_interactive():
        with err_console.status(f"{label} …") as status:

            def spin(elapsed: float, log: Path) -> None:
                step = last_log_message(log, 60)
                status.update(f"{label} … {elapsed:.0f}s" + (f" · {step}" if step else ""))

            yield spin
        return
    last: list[float] = []

    def plain(elapsed: float, log: Path) -> None:
        if not last:  # first call: the server process is running (the checks before it passed)
            last.append(time.monotonic())
            info(f"{label} … (log: {log})")
        elif time.monotonic() - last[0] >= PLAIN_PROGRESS_EVERY:
            last[0] = time.monotonic()
            step = last_log_message(log)
            info(f"  still starting … {elapsed:.0f}s" + (f" · {step}" if step else ""))

    yield plain


def _print_ready(servers: list[ServerInfo], settings: Settings, key_from_flag: bool) -> None:
    """What runs and how to use it: URL(s), pids, logs, the `collect infer` command, and the endpoints last."""
    first = servers[0]
    name = first.served_models[0] if len(first.served_models) == 1 else first.model
    state_flag = f" --state-dir {shlex.quote(str(settings.state_dir))}" if settings.state_dir else ""
    api_bases = " ".join(f"--api-base {server.url}" for server in servers)
    infer = f"collect infer {api_bases} --model {shlex.quote(name)}"
    contexts = [server.max_model_len for server in servers if server.max_model_len is not None]
    context = min(contexts) if contexts else None
    fitting = max(context // 2, context - PROMPT_ROOM) if context is not None else None
    if fitting is not None and settings.max_tokens > fitting:
        # infer's --max-tokens (default 4096) would not fit: vLLM would refuse every request with HTTP 400.
        infer += f" --max-tokens {fitting}"
    if len(servers) == 1:
        out_console.print(f"vLLM is ready: {first.url}  (model {name})", markup=False)
        out_console.print(f"  pid {first.pid}, process group {first.pgid}", markup=False)
        out_console.print(f"  log {first.log}", markup=False)
    else:
        out_console.print(f"vLLM is ready: {len(servers)} replicas  (model {name})", markup=False)
        for server in servers:
            devices = f", CUDA_VISIBLE_DEVICES={server.devices}" if server.devices is not None else ""
            out_console.print(
                f"  replica {server.replica}: {server.url}  pid {server.pid}, process group {server.pgid}{devices}",
                markup=False,
            )
            out_console.print(f"    log {server.log}", markup=False)
    if context is not None:
        out_console.print(f"  context {context} tokens (prompt and response together)", markup=False)
    out_console.print(
        f"next: {infer}\nstop: collect serve stop --port {first.port}{state_flag}",
        markup=False,
    )
    if key_from_flag:
        out_console.print(
            "key: the server requires the key given with --api-key; give collect infer the same one "
            "(--api-key, or export COLLECT_API_KEY) — it is stored nowhere",
            markup=False,
        )
    # The endpoints last, in the two forms that take them: infer's flags and a fleet file's TOML line.
    out_console.print(f"api bases: {api_bases}", markup=False, highlight=False)
    out_console.print(f"endpoints = {json.dumps([server.url for server in servers])}", markup=False, highlight=False)


@serve_app.command("status")
def status(
    state_dir: StateDirOption = None,
) -> None:
    """List the servers `collect serve` started: port, pid, process group, state, model, URL, replica and log.

    REPLICA is `I/N` for replica I of a set started with --replicas N (`-` for a server alone); GPUS is the
    CUDA_VISIBLE_DEVICES it was given (`-`: left as it was).
    """
    settings = run_or_exit(lambda: _load_settings(state_dir=state_dir))
    directory = resolve_state_dir(settings)
    servers = run_or_exit(lambda: list_servers(directory))
    if not servers:
        info(f"no servers started by collect are recorded (state: {directory})")
        return
    rows = [("PORT", "PID", "PGID", "STATE", "MODEL", "URL", "REPLICA", "GPUS", "LOG")]
    for entry in servers:
        server = entry.info
        model = ",".join(server.served_models) or server.model  # the name `collect infer --model` needs
        ids = (str(server.port), str(server.pid), str(server.pgid))
        replica = f"{server.replica}/{server.replicas}" if server.replicas > 1 else "-"
        devices = server.devices if server.devices is not None else "-"
        rows.append((*ids, entry.state, model, server.url, replica, devices, server.log))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out_console.print("  ".join([*cells, row[-1]]), markup=False)
    state_flag = f" --state-dir {state_dir}" if state_dir else ""
    for entry in servers:
        if entry.state == "broken":
            warn(
                f"port {entry.info.port}: its API server (pid {entry.info.pid}) died, but other processes of its "
                f"group still run and hold memory; end them: collect serve stop --port {entry.info.port}{state_flag}"
            )
    if any(not entry.running for entry in servers):
        info(f"an exited server stays listed until `collect serve stop --port P{state_flag}` (read its log first)")


@serve_app.command("logs")
def logs(
    port: PortOption = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many lines to show.")] = 40,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print new lines until Ctrl-C or until the server exits.")
    ] = False,
    replica: Annotated[
        int | None,
        typer.Option("--replica", "-r", help="Which replica of a set started with --replicas (default: all)."),
    ] = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show the end of a server's log (the only server, or the one on --port; each replica's, or --replica I's)."""
    settings = run_or_exit(lambda: _load_settings(state_dir=state_dir))
    group = run_or_exit(lambda: find_group(resolve_state_dir(settings), port))
    if replica is not None:
        group = [run_or_exit(functools.partial(pick_replica, group, replica))]
    if follow and len(group) > 1:
        _fail(
            ServerError(
                f"the servers on port {group[0].group_port} are {len(group)} replicas: follow one log at a time",
                hint=f"add --replica I (0 to {len(group) - 1})",
            )
        )
    for server in group:
        path = Path(server.log)
        if not path.exists():
            _fail(ServerError(f"the log {path} of the server on port {server.port} is gone"))
        if len(group) > 1:
            out_console.print(f"==> {server.label}: {path} <==", markup=False, highlight=False)
        for line in read_log_tail(path, lines):
            out_console.print(line, markup=False, highlight=False)
    server = group[0]
    path = Path(server.log)
    if follow and not follow_log(path, _write_raw, alive=lambda: is_running(server)):
        info(f"the server on port {server.port} is no longer running; its log ends here")


@serve_app.command("stop")
def stop(
    port: PortOption = None,
    all_servers: Annotated[bool, typer.Option("--all", help="Stop every server collect started.")] = False,
    grace: Annotated[
        float, typer.Option("--grace", min=0.0, help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = STOP_GRACE,
    state_dir: StateDirOption = None,
) -> None:
    """Stop a server by the process group collect created (the only server, the one on --port, or --all).

    A replica set started with --replicas stops as a whole: --port names any of its ports.

    Nothing to stop is not an error (exit 0, "no server is running"), so clean-up cells and `set -e` scripts can
    always call it; exit 1 is kept for real errors: several servers and no --port, or a server that will not stop.
    """
    settings = run_or_exit(lambda: _load_settings(state_dir=state_dir))
    directory = resolve_state_dir(settings)
    if all_servers and port is not None:
        _fail(ServerError("give either --port or --all, not both"))
    recorded = [entry.info for entry in run_or_exit(lambda: list_servers(directory))]
    if port is not None and recorded and all(server.port != port for server in recorded):
        known = ", ".join(str(server.port) for server in sorted(recorded, key=lambda server: server.port))
        info(f"no server is running on port {port}: nothing to stop (collect's servers are on port {known})")
        return
    if not recorded:
        where = f" on port {port}" if port is not None else ""
        info(f"no server is running{where}: nothing to stop (none started by collect is recorded in {directory})")
        return
    targets = recorded if all_servers else run_or_exit(lambda: find_group(directory, port))
    for server in targets:
        broken = is_running(server) and not leader_alive(server)
        was_running = run_or_exit(functools.partial(stop_server, directory, server, grace))
        if was_running and broken:
            info(
                f"stopped what was left of the server on port {server.port} (its API server, pid {server.pid}, "
                f"had died; log: {server.log})"
            )
        elif was_running:
            of_set = f"; replica {server.replica} of {server.replicas}" if server.replicas > 1 else ""
            info(f"stopped the server on port {server.port} (pid {server.pid}, model {server.model}{of_set})")
        else:
            info(
                f"the server on port {server.port} (pid {server.pid}) had already exited; "
                f"forgot it (its log: {server.log})"
            )


def _load_settings(**given: Any) -> Settings:
    from ..settings import load_settings  # pydantic: imported when a command runs, not for --help

    return load_settings(**given)


def _write_raw(text: str) -> None:
    out_console.file.write(text)
    out_console.file.flush()


def _fail(error: ServerError) -> NoReturn:
    print_error(error)
    raise typer.Exit(1)
