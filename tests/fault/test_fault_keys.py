"""Servers and proxies that echo the Authorization header in their errors (400, 401, 403, 500, on completions
or on GET /models): the API key must appear nowhere — not on stdout or stderr, not in the results, the
`.meta.json`, the lock, nor in anything `collect extract` or `collect report` write or print afterwards.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from tests.fakes.openai_server import EchoAuth, Ok
from tests.fault.harness import Run, TaggedServer, Trials, infer_args, make_rows, run_collect, write_rows

CODES = [400, 401, 403, 500]
KEY_SHAPES = ["sk-proj-{}", "sk-{}", "{}", "key with spaces {}"]


def fragments(key: str, size: int = 12) -> set[str]:
    """Every piece of `key` at least `size` characters long: a cut or half-masked key is still a leak."""
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def assert_no_leak(key: str, directory: Path, runs: list[Run]) -> None:
    pieces = fragments(key)
    for run in runs:
        both = run.stdout + run.stderr
        leaked = sorted(p for p in pieces if p in both)
        assert not leaked, f"the key leaks in the output of `collect {run.args[0]}`: {run.brief()}"
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            text = path.read_bytes().decode("utf-8", "replace")
            leaked = sorted(p for p in pieces if p in text)
            assert not leaked, f"the key is written in {path.name}: …{text[:400]}…"


def test_key_echoing_server_never_leaks_the_key(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        codes = [CODES[(2 * index) % 4], CODES[(2 * index + 1) % 4]]  # two trials cover the four codes
        graded_code = rng.choice(codes)  # extract and report (slower) on one of them
        for code in codes:
            where = directory / f"http{code}"
            where.mkdir()
            secret = rng.choice(KEY_SHAPES).format("".join(rng.choices(string.ascii_letters + string.digits, k=32)))
            dataset = write_rows(where / "problems.jsonl", make_rows(rng.randint(3, 6)))  # more than the Oks
            out = where / "out" / "results.jsonl"
            with TaggedServer() as server:
                server.api_key = secret
                on_models = rng.random() < 0.25
                if on_models:
                    server.set_models_mode(EchoAuth(code))
                else:
                    server.set_mode(EchoAuth(code))
                    server.enqueue(*[Ok()] * rng.randint(0, 2))
                runs = [run_collect(infer_args(server, dataset, out, 2, "--max-retries", "1"),
                                    env={"COLLECT_API_KEY": secret})]  # fmt: skip
                context = f"HTTP {code} echoing the key on {'GET /models' if on_models else 'completions'}: "
                assert runs[0].returncode == 1, context + runs[0].brief()
                assert "Traceback" not in runs[0].stderr, context + runs[0].brief()
                if code == graded_code and out.exists() and out.stat().st_size:
                    runs.append(run_collect(["extract", "-i", str(out), "--workers", "1"]))
                    graded = out.with_name("results.graded.jsonl")
                    if graded.exists():
                        runs.append(run_collect(["report", str(graded)]))
                try:
                    assert_no_leak(secret, where, runs)
                except AssertionError as err:
                    raise AssertionError(context + str(err)) from None

    trials.run(trial)
