"""Replica sets: N servers of one model on consecutive ports, each with its own slice of the GPUs (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ServerError

CUDA_DEVICES_ENV = "CUDA_VISIBLE_DEVICES"
"""The variable that tells vLLM (and CUDA) which GPUs a replica may use."""
MAX_PORT = 65535


@dataclass(frozen=True)
class Replica:
    """One server of a replica set, before it is launched."""

    index: int
    """0 for the first replica (on the set's --port), 1 for the next (port + 1), ..."""
    count: int
    """How many replicas the set has."""
    port: int
    devices: str | None
    """CUDA_VISIBLE_DEVICES for this replica (e.g. `2,3`); None leaves the variable as it is."""


def replica_ports(port: int, replicas: int) -> list[int]:
    """The ports of `replicas` servers starting at `port` (port, port + 1, ...).

    Raises:
        ServerError: the last port would be past 65535.
    """
    last = port + replicas - 1
    if last > MAX_PORT:
        raise ServerError(
            f"--replicas {replicas} from --port {port} needs ports up to {last}, past {MAX_PORT}",
            hint=f"pick a lower --port (at most {MAX_PORT - replicas + 1})",
        )
    return list(range(port, last + 1))


def replica_devices(replicas: int, gpus_per_replica: int | None, visible: str | None) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES for each replica: replica i gets devices i*G .. i*G+G-1.

    Args:
        replicas: how many servers.
        gpus_per_replica: G; None means 1 with several replicas, and leaving the variable alone with one.
        visible: CUDA_VISIBLE_DEVICES as set now (None if unset): a list to slice. Unset, devices count from 0.

    Returns:
        One value per replica; None where the variable is left as it is.

    Raises:
        ServerError: CUDA_VISIBLE_DEVICES is set and lists fewer devices than replicas × G.
    """
    if gpus_per_replica is None and replicas == 1:
        return [None]
    per = gpus_per_replica or 1
    needed = replicas * per
    if visible is None:
        pool = [str(index) for index in range(needed)]
    else:
        pool = [device.strip() for device in visible.split(",") if device.strip()]
        if len(pool) < needed:
            listed = f"lists {len(pool)} ({visible})" if pool else "lists none"
            raise ServerError(
                f"--replicas {replicas} × --gpus-per-replica {per} needs {needed} GPUs, "
                f"but {CUDA_DEVICES_ENV} {listed}",
                hint=f"use fewer --replicas or --gpus-per-replica, or list more devices in {CUDA_DEVICES_ENV}",
            )
    return [",".join(pool[index * per : (index + 1) * per]) for index in range(replicas)]


def plan_replicas(port: int, replicas: int, gpus_per_replica: int | None, visible: str | None) -> list[Replica]:
    """The servers of a replica set: index, port and devices of each (see `replica_ports`, `replica_devices`).

    Raises:
        ServerError: ports past 65535, or too few devices in CUDA_VISIBLE_DEVICES.
    """
    ports = replica_ports(port, replicas)
    devices = replica_devices(replicas, gpus_per_replica, visible)
    return [Replica(index, replicas, p, d) for index, (p, d) in enumerate(zip(ports, devices, strict=True))]
