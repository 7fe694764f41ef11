"""Is a port free, and who holds it: socket probes and /proc/net."""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path

from ..errors import ServerError
from ._argv import _client_host
from ._logs import _shorten


def check_port_free(host: str, port: int, hint: str | None = None) -> None:
    """Fail if something listens on `host:port` or the address cannot be bound.

    Args:
        host: the address to bind.
        port: the port.
        hint: how to fix a busy port, when the usual one ("... or pick --port") does not fit.

    Raises:
        ServerError: the port is taken (naming it and how to pick another).
    """
    hint = hint or "stop whatever uses it (`collect serve status` lists servers started by collect) or pick --port"
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
