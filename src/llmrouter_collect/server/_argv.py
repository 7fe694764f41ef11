"""The vLLM command line: argv from settings, model-family flags, the URL clients use."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ServerError

if TYPE_CHECKING:
    from ..settings import Settings
    from ._replicas import Replica

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

# Model families that need flags of their own: (substring of the model name, flags).
# Gemma 2/3 are numerically unstable in float16; vLLM refuses float16 for them, and bfloat16 is what they
# were trained in. On GPUs without bfloat16 (e.g. T4) pass `-- --dtype float32` instead.
_FAMILY_FLAGS: tuple[tuple[str, tuple[str, ...]], ...] = (("gemma", ("--dtype", "bfloat16")),)


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


def build_replica_argvs(settings: Settings, replicas: Sequence[Replica], extra: Sequence[str] = ()) -> list[list[str]]:
    """`build_argv` for each replica of a set: the same command, each with its own `--port`.

    Raises:
        ServerError: as `build_argv`.
    """
    return [
        build_argv(
            settings if replica.port == settings.port else settings.model_copy(update={"port": replica.port}), extra
        )
        for replica in replicas
    ]


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
