"""Several endpoints of one model under faults: endpoints killed, in 503 storms and back, with `collect` itself
killed at random moments; a rerun finishes the job.

Each trial starts three tagged servers (their answers are checked as one), runs `collect infer` with the three
`--api-base`, and meanwhile, at random moments: kills one endpoint (its requests in flight are cut, later ones
refused), puts another into a 503 storm that ends after a while, and sometimes kills `collect` (kill -9). One
endpoint is always left alone, so the run never loses every endpoint. After every run the checker asserts that
nothing was lost, duplicated, altered or misfiled, and that attempts were used only by requests a server failed;
the killed endpoint then comes back and the same command must end with exactly k responses per problem.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

from tests.fakes.openai_server import Status
from tests.fault.harness import (
    FAST,
    GENEROUS,
    Checker,
    TaggedServer,
    Trials,
    finish,
    make_rows,
    run_collect,
    start_collect,
    uid_of,
    wait_until,
    write_rows,
)


def test_endpoints_killed_and_storming_while_collect_is_killed_then_resume(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        problems, k = rng.randint(20, 40), rng.randint(2, 4)
        shape = rng.choice(["n", "fewer"])
        latency, concurrency = rng.uniform(0.03, 0.1), rng.randint(2, 6)
        kill_collect = rng.random() < 0.5
        about = f"{problems} problems, k={k}, shape={shape}, latency={latency:.3f}, concurrency={concurrency}, " \
                f"kill -9 of collect: {kill_collect}"  # fmt: skip
        dataset = write_rows(directory / "problems.jsonl", make_rows(problems))
        out = directory / "out" / "results.jsonl"
        uids = [uid_of(f"{i:03d}") for i in range(problems)]
        servers = [TaggedServer().start() for _ in range(3)]
        try:
            killed, storming, _steady = rng.sample(servers, 3)
            checker = Checker(out, servers[0], uids, directory, others=servers[1:])
            checker.reset_server(shape, latency)
            bases = [arg for server in servers for arg in ("--api-base", server.url)]
            args = ["infer", "--dataset", str(dataset), "--k", str(k), *bases, "--output-file", str(out), *FAST,
                    *GENEROUS, "--max-concurrent", str(concurrency), "--max-retries", "4"]  # fmt: skip

            def answered() -> int:
                return sum(len(server.completion_requests()) for server in servers)

            expected = problems * (1 if shape == "n" else k)
            proc = start_collect(args)
            try:
                wait_until(lambda: answered() >= rng.randint(0, expected // 3), 30, proc)
                killed.stop()
                wait_until(lambda: answered() >= rng.randint(expected // 3, expected // 2), 30, proc)
                storming.set_mode(Status(503))
                calm = threading.Timer(rng.uniform(0.2, 1.5), storming.set_mode, args=(None,))
                calm.start()
                signalled = False
                if kill_collect:
                    wait_until(lambda: answered() >= rng.randint(expected // 2, expected), 30, proc)
                    signalled = proc.poll() is None
                    if signalled:
                        proc.send_signal(signal.SIGKILL)
                run = finish(proc, args)
                calm.join()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if signalled:
                assert run.returncode == -signal.SIGKILL, run.brief()
            else:
                assert run.returncode in (0, 1), run.brief()
                run.assert_clean_output()
            checker.after_run(run, allow_torn=signalled)
            killed.start()  # back, on the same port
            time.sleep(0.05)
            checker.reset_server(shape, 0.0)
            checker.final(run_collect(args), k)
        except AssertionError as err:
            raise AssertionError(f"{about}\n{err}") from None
        finally:
            for server in servers:
                server.stop()

    trials.run(trial)
