"""Several endpoints of one model (`--api-base` given several times): spread, failover, caps, every one gone."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fakes.openai_server import OpenAIServer, Status
from tests.integration.test_infer import FAST, good_texts, records, run_cli, start_cli, wait_for_lines


@pytest.fixture
def three_servers() -> Iterator[list[OpenAIServer]]:
    servers = [OpenAIServer().start() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def fleet_args(servers: list[OpenAIServer], dataset: Path, out: Path, *extra: str, k: int = 2) -> list[str]:
    bases = [arg for server in servers for arg in ("--api-base", server.url)]
    return ["infer", "--dataset", str(dataset), "--k", str(k), *bases, "--output-file", str(out), *FAST, *extra]


def answered(server: OpenAIServer) -> int:
    """Completion requests the server answered with 200."""
    return sum(1 for r in server.completion_requests() if r.status == 200)


def assert_exact(out: Path, problems: int, k: int) -> None:
    """Every problem holds exactly k good responses, indexed 0..k-1, one line each, no attempt used."""
    final = records(out)
    assert len(final) == problems
    assert len(out.read_text().splitlines()) == problems  # compacted: no duplicate or superseded line
    for uid, record in final.items():
        assert len(good_texts(record)) == k, uid
        assert [r["index"] for r in record["responses"]] == list(range(k)), uid
        assert record["attempts"] == 0, uid


def test_one_endpoint_killed_and_one_in_a_503_storm_lose_and_duplicate_nothing(
    three_servers: list[OpenAIServer], dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    killed, storming, steady = three_servers
    for server in three_servers:
        server.latency = 0.2
    storming.set_mode(Status(503))

    def recover_after_a_storm() -> None:  # 503s for 1.5 s from the first one, then healthy again
        storming.wait_for(lambda s: any(r.status == 503 for r in s.completion_requests()), timeout=60)
        time.sleep(1.5)
        storming.set_mode(None)

    recover = threading.Thread(target=recover_after_a_storm, daemon=True)
    dataset = dataset_file(count=240)
    out = tmp_path / "out.jsonl"
    recover.start()
    proc = start_cli(fleet_args(three_servers, dataset, out, "--max-concurrent", "6"))
    try:
        wait_for_lines(out, 15, timeout=60)
        killed.stop()  # in-flight requests are cut, later ones are refused
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert_exact(out, 240, 2)
    # The work went to every endpoint while it was up, and to the survivors after.
    assert answered(killed) >= 3 and answered(steady) >= 30
    assert answered(storming) >= 3, "the endpoint that recovered from its 503s got work again"
    assert sum(1 for r in storming.completion_requests() if r.status == 503) >= 3
    assert f"endpoint {killed.url} taken out" in stderr
    assert f"endpoint {storming.url} taken out" in stderr and f"endpoint {storming.url} is back" in stderr
    # The summary has one line per endpoint.
    for server in three_servers:
        assert f"endpoint {server.url}: " in stderr
    summary_line = next(line for line in stderr.splitlines() if line.startswith(f"endpoint {killed.url}: "))
    assert summary_line.rstrip().endswith("out") or "· out" in summary_line


def test_requests_go_to_the_endpoint_with_fewest_in_flight_within_its_cap(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    with OpenAIServer(latency=0.1) as fast_one, OpenAIServer(latency=0.1) as other:
        dataset = dataset_file(count=40)
        out = tmp_path / "out.jsonl"
        args = fleet_args([fast_one, other], dataset, out, "--max-concurrent", "8", "--endpoint-concurrency", "3")
        result = run_cli(args)
        assert result.returncode == 0, result.stderr
        assert_exact(out, 40, 2)
        assert fast_one.max_in_flight <= 3 and other.max_in_flight <= 3  # the cap held (6 < 8 workers)
        assert fast_one.max_in_flight == 3 and other.max_in_flight == 3  # and both were used to the cap
        assert abs(answered(fast_one) - answered(other)) <= 8  # least in flight: an even spread


def test_every_endpoint_gone_stops_the_run_resumably_and_a_rerun_completes(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    first, second = OpenAIServer(latency=0.1).start(), OpenAIServer(latency=0.1).start()
    dataset = dataset_file(count=60)
    out = tmp_path / "out.jsonl"
    proc = start_cli(fleet_args([first, second], dataset, out, "--max-concurrent", "4", "--max-retries", "2"))
    try:
        wait_for_lines(out, 10, timeout=60)
        first.stop()
        second.stop()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        first.stop()
        second.stop()
    assert proc.returncode != 0
    assert "lost every endpoint" in stderr and "rerun the same command to resume" in stderr
    held = records(out)
    assert 10 <= len(held) < 60
    assert all(record["attempts"] == 0 for record in held.values())  # an outage uses no attempt
    # The endpoints come back (elsewhere: the endpoints are not part of the run's identity).
    with OpenAIServer() as back_one, OpenAIServer() as back_two:
        result = run_cli(fleet_args([back_one, back_two], dataset, out))
        assert result.returncode == 0, result.stderr
        assert_exact(out, 60, 2)
        assert answered(back_one) + answered(back_two) == 60 - sum(
            1 for record in held.values() if len(good_texts(record)) == 2
        )


def test_an_endpoint_down_at_the_start_is_probed_and_joins_when_it_answers(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    late = OpenAIServer(latency=0.1)
    late.start()
    late_url = late.url
    late.stop()  # its port is known, nothing listens there yet
    with OpenAIServer(latency=0.1) as early:
        dataset = dataset_file(count=160)  # about 8 s on one endpoint: probes at 1, 3 and 7 s find the other
        out = tmp_path / "out.jsonl"
        args = [*fleet_args([early], dataset, out, "--max-concurrent", "2"), "--api-base", late_url]
        proc = start_cli(args)
        try:
            wait_for_lines(out, 5, timeout=60)
            late.start()  # same port
            _, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            late.stop()
    assert proc.returncode == 0, stderr
    assert f"endpoint {late_url} does not answer yet" in stderr
    assert_exact(out, 160, 2)
    assert answered(late) >= 1 and f"endpoint {late_url} is back" in stderr


def test_endpoints_serving_different_models_are_refused(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    with OpenAIServer(models=["model-a"]) as one, OpenAIServer(models=["model-b"]) as two:
        result = run_cli(fleet_args([one, two], dataset_file(count=2), tmp_path / "out.jsonl"))
    assert result.returncode != 0
    assert "the endpoints serve different models (model-a at" in result.stderr and "Traceback" not in result.stderr
    assert one.completion_requests() == [] and two.completion_requests() == []


def test_rpm_keeps_each_endpoint_under_its_request_rate(dataset_file: Callable[..., Path], tmp_path: Path) -> None:
    with OpenAIServer() as server:
        dataset = dataset_file(count=63)
        out = tmp_path / "out.jsonl"
        result = run_cli(fleet_args([server], dataset, out, "--rpm", "60", "--max-concurrent", "8", k=1))
        assert result.returncode == 0, result.stderr
        assert_exact(out, 63, 1)
        arrivals = sorted(r.time for r in server.completion_requests())
    assert len(arrivals) == 63
    # A minute's worth (60) may go at once; then one request a second.
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[59:])]
    assert len(gaps) == 3 and all(gap >= 0.8 for gap in gaps), gaps
