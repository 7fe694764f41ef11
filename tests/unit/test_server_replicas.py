"""Replica sets of `collect serve --replicas N`: ports, GPU slices, argv per replica, the set in the state file."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import llmrouter_collect.server as server
from llmrouter_collect.errors import ServerError
from llmrouter_collect.server import (
    Replica,
    ServerInfo,
    build_replica_argvs,
    find_group,
    pick_replica,
    plan_replicas,
    replica_devices,
    replica_ports,
)
from llmrouter_collect.settings import load_settings


@pytest.mark.parametrize(
    ("replicas", "per", "visible", "expected"),
    [
        (1, None, None, [None]),  # one server, no --gpus-per-replica: CUDA_VISIBLE_DEVICES left alone
        (1, None, "3,5", [None]),
        (1, 2, None, ["0,1"]),
        (2, None, None, ["0", "1"]),  # several replicas: one GPU each by default
        (2, 2, None, ["0,1", "2,3"]),
        (3, 1, "4,5,6,7", ["4", "5", "6"]),  # an existing list is sliced, not counted from 0
        (2, 2, "GPU-a, GPU-b ,GPU-c,GPU-d", ["GPU-a,GPU-b", "GPU-c,GPU-d"]),  # UUIDs, spaces dropped
    ],
)
def test_devices_per_replica(replicas: int, per: int | None, visible: str | None, expected: list[str | None]) -> None:
    assert replica_devices(replicas, per, visible) == expected


@pytest.mark.parametrize(("replicas", "per", "visible"), [(2, 2, "0,1,2"), (2, None, "0"), (2, 1, "")])
def test_too_few_visible_devices_is_one_clear_error(replicas: int, per: int | None, visible: str) -> None:
    with pytest.raises(ServerError) as caught:
        replica_devices(replicas, per, visible)
    needed = replicas * (per or 1)
    assert f"needs {needed} GPUs, but CUDA_VISIBLE_DEVICES lists" in caught.value.message
    assert "--gpus-per-replica" in (caught.value.hint or "")


def test_ports_are_consecutive_and_stay_in_range() -> None:
    assert replica_ports(8000, 3) == [8000, 8001, 8002]
    assert replica_ports(65535, 1) == [65535]
    with pytest.raises(ServerError) as caught:
        replica_ports(65534, 3)
    assert "needs ports up to 65536" in caught.value.message and "at most 65533" in (caught.value.hint or "")


def test_plan_pairs_ports_with_devices() -> None:
    assert plan_replicas(9000, 2, 2, "7,6,5,4") == [Replica(0, 2, 9000, "7,6"), Replica(1, 2, 9001, "5,4")]


def test_each_replica_gets_the_same_argv_but_its_own_port(tmp_path: Path) -> None:
    settings = load_settings(model="org/m", port=8100, replicas=2, vllm_command="vllm serve", max_model_len=2048)
    extra = ["--served-model-name", "s", "--tensor-parallel-size", "2"]

    first, second = build_replica_argvs(settings, plan_replicas(8100, 2, None, None), extra)

    assert first[first.index("--port") + 1] == "8100" and second[second.index("--port") + 1] == "8101"
    assert [a for a in first if a != "8100"] == [a for a in second if a != "8101"]  # nothing else differs
    assert first[-4:] == extra  # vLLM's own flags (tensor or data parallel) still pass through after `--`


def _info(port: int, replica: int = 0, replicas: int = 1, group: int | None = None, **more: object) -> ServerInfo:
    fields: dict[str, object] = {
        "port": port,
        "host": "127.0.0.1",
        "url": f"http://127.0.0.1:{port}/v1",
        "pid": 100000 + port,
        "pgid": 100000 + port,
        "model": "m",
        "argv": ["vllm", "serve", "m"],
        "log": f"/logs/vllm-{port}.log",
        "started_at": "2026-01-01T00:00:00+00:00",
        "replica": replica,
        "replicas": replicas,
        "group": group,
        **more,
    }
    return ServerInfo.from_json(fields)


def _write_state(state_dir: Path, servers: list[ServerInfo]) -> None:
    from dataclasses import asdict

    state_dir.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": 1, "servers": [asdict(info) for info in servers]}
    (state_dir / "servers.json").write_text(json.dumps(payload))


def test_a_replica_set_is_found_as_a_whole_by_any_of_its_ports(tmp_path: Path) -> None:
    alone = _info(7000)
    pair = [_info(8001, 1, 2, 8000), _info(8000, 0, 2, 8000)]
    _write_state(tmp_path, [alone, *pair])

    for port in (8000, 8001):
        assert [info.port for info in find_group(tmp_path, port)] == [8000, 8001]  # ordered by replica
    assert find_group(tmp_path, 7000) == [alone]
    with pytest.raises(ServerError) as caught:
        find_group(tmp_path, None)
    assert "several servers are recorded (ports 7000, 8000, 8001)" in caught.value.message


def test_the_only_set_needs_no_port_and_a_replica_is_picked_by_index(tmp_path: Path) -> None:
    _write_state(tmp_path, [_info(8000, 0, 2, 8000), _info(8001, 1, 2, 8000)])

    group = find_group(tmp_path, None)

    assert [info.replica for info in group] == [0, 1]
    assert pick_replica(group, 1).port == 8001
    with pytest.raises(ServerError) as caught:
        pick_replica(group, 2)
    assert caught.value.message == "--replica 2: the servers on port 8000 have replica 0, 1"


def test_an_entry_of_an_older_version_is_a_server_alone(tmp_path: Path) -> None:
    old = _info(8000)
    data = {key: value for key, value in old.__dict__.items() if key not in ("replica", "replicas", "group", "devices")}

    entry = ServerInfo.from_json(data)

    assert (entry.replica, entry.replicas, entry.group_port, entry.devices) == (0, 1, 8000, None)


def test_the_rerun_command_names_the_devices_but_never_the_key() -> None:
    info = _info(8001, 1, 2, 8000, devices="2,3", api_key_set=True)
    assert info.command == "CUDA_VISIBLE_DEVICES=2,3 VLLM_API_KEY=... vllm serve m"
    assert info.label == "replica 1 (port 8001)"


def test_the_serve_cli_uses_only_the_public_names_of_server() -> None:
    source = Path(server.__file__).parent.parent / "cli" / "serve.py"
    imported = [
        (node.module or "", alias.name)
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    from_server = [name for module, name in imported if module.lstrip(".").startswith("server")]
    assert from_server, "cli/serve.py imports nothing from server"
    assert [name for name in from_server if name not in server.__all__] == []
    assert not [module for module, _ in imported if module.lstrip(".").startswith("server._")]
