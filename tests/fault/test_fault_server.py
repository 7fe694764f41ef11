"""Servers that misbehave: 429/5xx storms, dropped connections, malformed replies, hung requests.

A storm is a random sequence of failures mixed with good answers, queued before a run (one behaviour per
request, in order). The run may end with failed problems (exit 1, one summary, no traceback); the same
command, rerun against a healthy server, must then finish the job with nothing lost or doubled, and only the
problems whose requests failed may have used attempts.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import (
    Drop,
    Hang,
    Malformed,
    NullMessage,
    Ok,
    Status,
    StringChoices,
)
from tests.fault.harness import (
    Checker,
    Plan,
    TaggedServer,
    Trials,
    check_interrupted,
    finish,
    infer_args,
    make_rows,
    resume_trial,
    run_collect,
    start_collect,
    uid_of,
    wait_until,
    write_rows,
)


def storm_of(*kinds: Any) -> Any:
    """A storm maker: 5-40 behaviours drawn from `kinds` and Ok (about a third of them Ok)."""

    def make(rng: random.Random) -> list[Any]:
        return [rng.choice([*kinds, Ok()]) if rng.random() < 0.66 else Ok() for _ in range(rng.randint(5, 40))]

    return make


def storm_plan(rng: random.Random, storm: Any) -> Plan:
    interrupts = [signal.SIGKILL] if rng.random() < 0.3 else []
    return Plan(
        problems=rng.randint(8, 16),
        k=rng.randint(3, 5),
        shape=rng.choice(["n", "fewer", "reject-n"]),
        latency=rng.uniform(0.0, 0.03),
        concurrency=rng.randint(1, 4),
        interrupts=interrupts,
        storm=storm,
        storm_runs=rng.randint(1, 2),
        max_retries=rng.randint(0, 3),
    )


def test_rate_limit_and_server_error_storms(trials: Trials) -> None:
    storm = storm_of(Status(429, retry_after=0), Status(429), Status(503), Status(500), Status(502), Drop())

    def trial(rng: random.Random, directory: Path, index: int) -> None:
        resume_trial(storm_plan(rng, storm), rng, directory)

    trials.run(trial)


def test_malformed_replies(trials: Trials) -> None:
    """200 answers that are not what they should be: broken JSON, "message": null, choices as strings."""
    storm = storm_of(Malformed(), NullMessage(), StringChoices())

    def trial(rng: random.Random, directory: Path, index: int) -> None:
        resume_trial(storm_plan(rng, storm), rng, directory)

    trials.run(trial)


def test_hung_requests_time_out_and_resume(trials: Trials) -> None:
    """Requests that never get an answer: the run ends (--request-timeout), one message, then resumes."""

    def trial(rng: random.Random, directory: Path, index: int) -> None:
        problems, k = rng.randint(4, 8), rng.randint(2, 4)
        dataset = write_rows(directory / "problems.jsonl", make_rows(problems))
        out = directory / "out" / "results.jsonl"
        with TaggedServer() as server:
            checker = Checker(out, server, [uid_of(f"{i:03d}") for i in range(problems)], directory)
            hung = rng.randint(1, 3)
            # Every queued behaviour is used: a run asks at least one request per problem (no retries here).
            behaviours = [Hang()] * hung + [Ok()] * rng.randint(0, problems - hung)
            rng.shuffle(behaviours)
            server.enqueue(*behaviours)
            args = infer_args(server, dataset, out, k, "--request-timeout", "0.5", "--max-retries", "0",
                              "--max-concurrent", str(rng.randint(1, 3)))  # fmt: skip
            first = run_collect(args, timeout=60)
            assert first.returncode == 1, f"hung requests must leave failed problems: {first.brief()}"
            first.assert_clean_output()
            checker.after_run(first)
            checker.reset_server("n", 0.0)
            checker.final(run_collect(args), k)

    trials.run(trial)


def test_models_endpoint_hangs(trials: Trials) -> None:
    """GET /v1/models never answers: the run ends with one message (timeout, Ctrl-C or SIGTERM) and leaves
    the results file as it was; with the server healthy again, the same command completes."""

    def trial(rng: random.Random, directory: Path, index: int) -> None:
        problems = rng.randint(3, 8)
        dataset = write_rows(directory / "problems.jsonl", make_rows(problems))
        out = directory / "out" / "results.jsonl"
        with TaggedServer() as server:
            checker = Checker(out, server, [uid_of(f"{i:03d}") for i in range(problems)], directory)
            first = run_collect(infer_args(server, dataset, out, 1))
            assert first.returncode == 0, first.brief()
            checker.after_run(first)
            before = out.read_bytes()
            server.set_models_mode(Hang())
            ending = rng.choice(["timeout", signal.SIGINT, signal.SIGTERM])
            args = infer_args(server, dataset, out, 2, "--request-timeout", "1", "--connect-timeout", "1")
            if ending == "timeout":
                run = run_collect(args, timeout=60)
                assert run.returncode == 1, f"a server that never answers must fail the run: {run.brief()}"
                run.assert_clean_output()
            else:
                seen = len(server.all_requests())
                proc = start_collect(args)
                wait_until(lambda: len(server.all_requests()) > seen, 30, proc)
                time.sleep(rng.uniform(0, 0.5))
                signalled = proc.poll() is None
                if signalled:
                    proc.send_signal(ending)
                run = finish(proc, args, timeout=30)
                check_interrupted(run, ending, signalled)
            assert out.read_bytes() == before, f"{ending}: the results file changed"
            checker.after_run(run)
            checker.reset_server("n", 0.0)
            checker.final(run_collect(infer_args(server, dataset, out, 2)), 2)

    trials.run(trial)
