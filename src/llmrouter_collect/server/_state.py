"""The state file: every server `collect serve` started and has not stopped, read and written under a lock."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ServerError
from ._argv import API_KEY_ENV
from ._replicas import CUDA_DEVICES_ENV

if TYPE_CHECKING:
    from ..settings import Settings

STATE_FILE_NAME = "servers.json"
"""The state file in the state directory: every server `collect serve` started and has not stopped."""
LOCK_FILE_NAME = "servers.lock"
LOG_DIR_NAME = "logs"
STATE_SCHEMA_VERSION = 1


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
    replica: int = 0
    """Its index in a replica set (`collect serve --replicas N`); 0 for a server started alone."""
    replicas: int = 1
    """How many servers its replica set has (1: started alone)."""
    group: int | None = None
    """The first port of its replica set (None: started alone); status, logs and stop act on the set."""
    devices: str | None = None
    """The CUDA_VISIBLE_DEVICES it was given (None: left as it was)."""

    @property
    def group_port(self) -> int:
        """The port that names its replica set (its own port when started alone)."""
        return self.group if self.group is not None else self.port

    @property
    def label(self) -> str:
        """`replica I (port P)` for a member of a replica set, else `port P`."""
        return f"replica {self.replica} (port {self.port})" if self.replicas > 1 else f"port {self.port}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerInfo:
        """Build from one entry of the state file (unknown keys are ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @property
    def command(self) -> str:
        """The command line, quoted for a POSIX shell."""
        prefix = f"{API_KEY_ENV}=... " if self.api_key_set else ""
        if self.devices is not None:
            prefix = f"{CUDA_DEVICES_ENV}={shlex.quote(self.devices)} {prefix}"
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


def default_state_dir() -> Path:
    """`~/.cache/llmrouter-collect`, where the state file and logs live unless `state_dir` is set."""
    return Path.home() / ".cache" / "llmrouter-collect"


def resolve_state_dir(settings: Settings) -> Path:
    """The state directory from settings, or the default."""
    return (settings.state_dir or default_state_dir()).expanduser().absolute()  # logs recorded by full path


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
    from ..fileio import atomic_write_bytes  # tempfile and random: not for `collect --help`

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
