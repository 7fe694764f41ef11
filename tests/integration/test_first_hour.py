"""The first hour of a new user: see the plan before anything is sent, and no traps on the way.

`collect infer` as a subprocess against the OpenAI-compatible test server on 127.0.0.1 (and an HTTPS one).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fakes.openai_server import OpenAIServer, Status
from tests.integration.test_infer import FAST, infer_args, records, run_cli

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.settings import check_api_base


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


# --- the URL is checked before anything is sent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used", "notice"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1", False),
        ("https://api.example.com/v1", "https://api.example.com/v1", False),
        ("HTTP://Example.com:80/v1", "HTTP://Example.com:80/v1", False),
        ("127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1", True),
        ("localhost:8000/v1", "http://localhost:8000/v1", True),
        ("gpu-box.lan:8001", "http://gpu-box.lan:8001", True),
        ("[::1]:8000/v1", "http://[::1]:8000/v1", True),
        ("  http://127.0.0.1:8000/v1 ", "http://127.0.0.1:8000/v1", False),
    ],
)
def test_api_base_is_used_as_given_or_with_http_added(given: str, used: str, notice: bool) -> None:
    url, said = check_api_base(given)
    assert url == used
    assert (said is not None) == notice
    if notice:
        assert said is not None and used in said and "no scheme" in said


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("ftp://127.0.0.1:8000/v1", "unsupported scheme 'ftp'"),
        ("ws://127.0.0.1:8000/v1", "unsupported scheme 'ws'"),
        ("api.example.com/v1", "needs http:// or https://"),
        ("http//127.0.0.1:8000/v1", "needs http:// or https://"),
        ("http://", "no host"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http://exa mple.com/v1", "not a valid URL"),
        ("127.0.0.1:8000 /v1", "needs http:// or https://"),
    ],
)
def test_api_base_that_no_request_could_reach_is_refused(given: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_api_base(given)
    assert says in caught.value.message and "\n" not in caught.value.message


def test_api_base_without_scheme_is_taken_as_http_and_said(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    args = infer_args(openai_server, dataset_file(count=3), out, k=2)
    bare = openai_server.url.removeprefix("http://")
    args[args.index(openai_server.url)] = bare
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    assert f"--api-base {bare} has no scheme: using http://{bare}" in result.stderr
    assert len(records(out)) == 3


def test_bad_api_base_is_refused_in_one_line_before_anything_is_sent_or_written(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "results" / "out.jsonl"
    started = time.monotonic()
    result = run_cli(
        ["infer", "--dataset", str(dataset_file(count=3)), "--model", "m", "--api-base", "ftp://127.0.0.1:1/v1",
         "--output-file", str(out)]
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 20
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --api-base ftp://127.0.0.1:1/v1: unsupported scheme 'ftp'; use http:// or https://"]
    assert "retry" not in result.stderr and not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIServer]:
    """The test server behind TLS with a self-signed certificate (which no client trusts)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with OpenAIServer(ssl_context=context) as server:
        yield server


def test_tls_certificate_failure_stops_the_run_at_once_without_retries(
    https_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    result = run_cli(
        [*infer_args(https_server, dataset_file(count=4), out, "--max-retries", "8", "--model", "test-model"),
         "--initial-retry-delay", "1"]
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 20
    assert "TLS certificate" in result.stderr and "cannot be verified" in result.stderr
    assert "retry" not in result.stderr.lower().replace("--max-retries", "")
    assert https_server.completion_requests() == []
    assert leftovers(tmp_path) == ["problems.jsonl"]  # no empty results, meta or lock file left behind


# --- the file holds more than --k asks --------------------------------------------------------------------


def test_a_smaller_k_than_the_file_holds_says_so(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset, out = dataset_file(count=4), tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=5)).returncode == 0
    sent = len(openai_server.completion_requests())
    smaller = run_cli(infer_args(openai_server, dataset, out, k=3))
    assert smaller.returncode == 0, smaller.stderr
    assert (
        "the file holds up to 5 responses per problem; --k 3 asks for fewer: nothing to do "
        "(pass a larger --k to add samples)"
    ) in smaller.stderr
    assert len(openai_server.completion_requests()) == sent


# --- a run that wrote nothing leaves nothing -----------------------------------------------------------------


def test_a_run_refused_at_once_removes_the_files_it_created_and_only_those(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = dataset_file(count=3)
    out = tmp_path / "runs" / "out.jsonl"
    openai_server.set_mode(Status(401))
    first = run_cli(infer_args(openai_server, dataset, out))
    assert first.returncode == 1 and "HTTP 401" in first.stderr
    assert not (tmp_path / "runs").exists()  # nor the directory it made

    # Files that were there before are never removed, even empty ones.
    out.parent.mkdir()
    out.write_bytes(b"")
    meta = out.with_name(out.name + ".meta.json")
    again = run_cli(infer_args(openai_server, dataset, out))
    assert again.returncode == 1
    assert out.exists() and not meta.exists() and leftovers(out.parent) == ["out.jsonl"]

    # A file that holds data is kept, with its meta file.
    openai_server.set_mode(None)
    assert run_cli(infer_args(openai_server, dataset, out)).returncode == 0
    openai_server.set_mode(Status(401))
    held = out.read_bytes()
    refused = run_cli(infer_args(openai_server, dataset, out, k=5))
    assert refused.returncode == 1
    assert out.read_bytes() == held and meta.exists()


# --- see before you send ---------------------------------------------------------------------------------------


def test_the_start_of_a_run_says_model_endpoint_plan_and_output(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset, out = dataset_file(count=6), tmp_path / "out.jsonl"
    first = run_cli(infer_args(openai_server, dataset, out, "--num-problems", "4", k=2))
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert "model     test-model (the server's only model)" in lines
    assert f"endpoint  {openai_server.url} (chat)" in lines
    assert (
        "plan      4 problems × k=2 = 8 responses · already done: 0 problems (0 responses) · "
        "to ask: 8 responses for 4 problems"
    ) in lines
    assert f"output    {out} (a new file)" in lines
    # The summary comes before the first request: it is on stderr before the closing line.
    assert lines.index(f"output    {out} (a new file)") < next(i for i, x in enumerate(lines) if x.startswith("done "))

    grown = run_cli(infer_args(openai_server, dataset, out, "--model", "test-model", k=3))
    assert grown.returncode == 0, grown.stderr
    lines = grown.stderr.splitlines()
    assert "model     test-model" in lines
    assert (
        "plan      6 problems × k=3 = 18 responses · already done: 0 problems (8 responses) · "
        "to ask: 10 responses for 6 problems"
    ) in lines
    assert f"output    {out} (resumes it)" in lines


def test_dry_run_shows_the_plan_and_first_prompt_and_sends_nothing(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset, out = dataset_file(count=5), tmp_path / "runs" / "out.jsonl"
    result = run_cli([*infer_args(openai_server, dataset, out, k=4), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "model     test-model (the server's only model)" in result.stderr
    assert "plan      5 problems × k=4 = 20 responses" in result.stderr
    assert f"output    {out} (a new file)" in result.stderr
    assert "--- user ---" in result.stdout and "Answer" in result.stdout  # the first prompt, rendered
    assert "dry run: nothing was sent" in result.stderr
    assert openai_server.completion_requests() == []
    assert not (tmp_path / "runs").exists()


def test_dry_run_works_without_a_server_and_says_the_model_is_unverified(
    dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    result = run_cli(
        ["infer", "--dataset", str(dataset_file(count=3)), "--model", "my-model", "--api-base", dead, "--k", "2",
         "--output-file", str(out), "--dry-run", *FAST]
    )
    assert result.returncode == 0, result.stderr
    assert f"model     my-model (unverified: no server answers at {dead})" in result.stderr
    assert "plan      3 problems × k=2 = 6 responses" in result.stderr
    assert result.stdout.strip() and not out.exists()
    assert leftovers(tmp_path) == ["problems.jsonl"]


def test_dry_run_of_a_finished_file_says_nothing_to_ask(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset, out = dataset_file(count=3), tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    before = out.read_bytes()
    result = run_cli([*infer_args(openai_server, dataset, out, k=2), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "already done: 3 problems (6 responses) · to ask: 0 responses for 0 problems" in result.stderr
    assert "nothing to ask" in result.stderr and result.stdout == ""
    assert out.read_bytes() == before


def test_dry_run_says_when_the_real_run_would_be_refused(
    openai_server: OpenAIServer, dataset_file: Callable[..., Path], tmp_path: Path
) -> None:
    dataset, out = dataset_file(count=3), tmp_path / "out.jsonl"
    assert run_cli(infer_args(openai_server, dataset, out, k=2)).returncode == 0
    sent = len(openai_server.completion_requests())
    result = run_cli([*infer_args(openai_server, dataset, out, "--temperature", "0.2", k=2), "--dry-run"])
    assert result.returncode == 1
    assert "was made with other settings — generation.temperature" in result.stderr
    assert len(openai_server.completion_requests()) == sent
