"""The fault suite's machinery: trials, a tagged test server, real `collect` processes, one invariant checker.

(Imported as `tests.fault.harness` by conftest.py and the tests, so there is one copy of its state.)

Every fault test runs `TRIALS` randomised trials (COLLECT_FAULT_TRIALS, default 2) from one seed
(COLLECT_FAULT_SEED, default: random, printed at the end of the session and in every failure). A failing trial
does not stop the others: the test fails at the end, listing each failing trial with its seed. With
COLLECT_FAULT_REPORT=FILE each test appends one JSON line {test, trials, failures, seed, seconds} to FILE
(docs/reliability.md's table is made from it).

Nothing of the package is mocked: `collect` runs as a subprocess against `tests/fakes/openai_server.py`
(in a thread of the test process, on 127.0.0.1), and the checker reads the files itself, without the
package's own readers.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.fakes` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.fakes.openai_server import OpenAIServer, default_answer, prompt_text  # noqa: E402

# --- knobs -----------------------------------------------------------------------------------------------

TRIALS = max(1, int(os.environ.get("COLLECT_FAULT_TRIALS", "2")))
"""Trials per fault test (COLLECT_FAULT_TRIALS)."""
SEED = os.environ.get("COLLECT_FAULT_SEED") or str(random.SystemRandom().randrange(10**9))
"""The session's seed (COLLECT_FAULT_SEED); trial i of test T uses random.Random(f"{SEED}:{T}:{i}")."""
REPORT = os.environ.get("COLLECT_FAULT_REPORT")
# (conftest.py's pytest_configure replaces TRIALS and SEED with --fault-trials / --fault-seed when given.)
"""When set, a file that gets one JSON line per fault test."""

SECRET = "sk-fault-SECRET-7f3a9c2e41d8"
"""The API key of every trial: it must appear nowhere but in the Authorization header."""
FAST = ["--initial-retry-delay", "0", "--max-retry-delay", "0.05"]
GENEROUS = ["--max-attempts", "1000"]
"""Attempts are checked, not used up: a trial's final clean run must always be allowed to ask."""
RUN_TIMEOUT = 120.0

INTERRUPTED_HINT = "rerun the same command"
"""What a Ctrl-C (or SIGTERM) must print: how to resume."""
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Documented exit codes: Ctrl-C 130; SIGTERM behaves like Ctrl-C with 128 + 15."""

RESULTS: list[dict[str, Any]] = []


# --- trials ----------------------------------------------------------------------------------------------


class Trials:
    """Runs a test's trials, each with its own seeded `random.Random` and directory; fails at the end."""

    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.base = base

    def run(self, trial: Callable[[random.Random, Path, int], None], count: int | None = None) -> None:
        """Call `trial(rng, directory, index)` `count` (default TRIALS) times; collect failures; fail listing them."""
        count = TRIALS if count is None else count
        started = time.monotonic()
        failures: list[str] = []
        for index in range(count):
            rng = random.Random(f"{SEED}:{self.name}:{index}")
            directory = self.base / f"trial{index}"
            directory.mkdir()
            try:
                trial(rng, directory, index)
            except pytest.skip.Exception:
                raise
            except Exception as err:  # every failure of a trial is reported, then the next runs
                detail = "".join(traceback.format_exception_only(type(err), err)).strip()
                failures.append(f"trial {index}: {detail[:3000]}")
        seconds = time.monotonic() - started
        row = {"test": self.name, "trials": count, "failures": len(failures), "seed": SEED,
               "seconds": round(seconds, 1)}  # fmt: skip
        RESULTS.append(row)
        if REPORT:
            with open(REPORT, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        if failures:
            pytest.fail(
                f"{len(failures)}/{count} trials failed (reproduce: COLLECT_FAULT_SEED={SEED} "
                f"COLLECT_FAULT_TRIALS={count} pytest tests/fault -k {self.name})\n" + "\n\n".join(failures),
                pytrace=False,
            )


# --- problems and the tagged server ----------------------------------------------------------------------

_CATEGORIES = ["algebra", "physics", "law", "geometry", "economics"]
_TAG_RE = re.compile(r"Problem #(\d{3})\.")
_ANSWER_TAG_RE = re.compile(r"\[P(\d{3}):(\d+):[0-9a-f]{8}\]")


def uid_of(tag: str) -> str:
    """The unique_id of the problem whose question carries `Problem #<tag>.`."""
    return f"fault/{tag}"


def make_rows(count: int) -> list[dict[str, Any]]:
    """`count` unified-schema rows, MCQ and open-ended alternating; each question carries its tag."""
    rows = []
    for i in range(count):
        category = _CATEGORIES[i % len(_CATEGORIES)]
        if i % 2 == 0:
            choices = [f"{i} apples", f"{i + 1} pears", f"{i + 2} plums", f"{i + 3} figs"]
            rows.append({
                "unique_id": uid_of(f"{i:03d}"),
                "question": f"Problem #{i:03d}. Which fruit count is right for item {i}?",
                "choices": choices,
                "choice_index_correct": i % 4,
                "explanation_correct": None,
                "answer_correct": choices[i % 4],
                "category": category,
            })  # fmt: skip
        else:
            rows.append({
                "unique_id": uid_of(f"{i:03d}"),
                "question": f"Problem #{i:03d}. What is {i} + {i}?",
                "choices": None,
                "choice_index_correct": None,
                "explanation_correct": None,
                "answer_correct": str(2 * i),
                "category": category,
            })  # fmt: skip
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write a .jsonl dataset."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


class TaggedServer(OpenAIServer):
    """The test server, answering texts unique per choice and naming their problem: `... [P007:42:1a2b3c4d]`.

    `served` maps every text handed out to its problem's unique_id, so the checker can tell a duplicated,
    invented or misfiled response from a real one. `pad` lengthens each answer (disk-full trials).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(api_key=SECRET, answer_fn=self._answer_text, **kwargs)
        self.served: dict[str, str] = {}
        self.pad = 0
        self._counter = itertools.count()
        self._served_lock = threading.Lock()

    def _answer_text(self, body: dict[str, Any], choice_index: int) -> str:
        match = _TAG_RE.search(prompt_text(body))
        tag = match.group(1) if match else "???"
        label = f"[P{tag}:{next(self._counter)}:{uuid.uuid4().hex[:8]}]"
        text = f"{'x' * self.pad}{default_answer(body, choice_index)} {label}"
        with self._served_lock:
            self.served[text] = uid_of(tag)
        return text

    def reset(self) -> None:
        """Back to the constructor's settings, keeping the tagged answers and what was served."""
        super().reset()
        self.answer_fn = self._answer_text


def problem_of(request_prompt: str) -> str | None:
    """The unique_id a request was for, from its prompt."""
    match = _TAG_RE.search(request_prompt)
    return uid_of(match.group(1)) if match else None


_CLEAN_BEHAVIOURS = {"ok", "delay", "fewerchoices", "rejectn"}


def failed_request(behaviour: str, status: int | None, n: int) -> bool:
    """Did the server answer this completion request with a failure (error status, drop, broken body)?"""
    if behaviour == "rejectn" and n > 1:
        return True
    return not (status == 200 and behaviour in _CLEAN_BEHAVIOURS)


# --- running collect ---------------------------------------------------------------------------------------


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `collect` process: the key in COLLECT_API_KEY, wide lines, no terminal."""
    return {**os.environ, "COLUMNS": "200", "COLLECT_API_KEY": SECRET, **(extra or {})}


def collect_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "llmrouter_collect", *args]


def run_collect(args: list[str], *, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> Run:
    """Run `collect ARGS` to its end."""
    done = subprocess.run(collect_cmd(args), capture_output=True, text=True, env=cli_env(env), timeout=timeout)
    return Run(args, done.returncode, done.stdout, done.stderr)


def start_collect(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `collect ARGS` in the background (stdout and stderr captured, for `finish`)."""
    return subprocess.Popen(
        collect_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(env)
    )


def finish(proc: subprocess.Popen[str], args: list[str], timeout: float = RUN_TIMEOUT) -> Run:
    """Wait for a started `collect` (killing it if it outlives `timeout`)."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"collect did not finish within {timeout} s: {stderr[-2000:]}") from None
    return Run(args, proc.returncode, stdout, stderr)


@dataclass
class Run:
    """One finished `collect` process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def brief(self) -> str:
        """For failure messages."""
        return f"exit {self.returncode}; stderr:\n{self.stderr[-3000:]}"

    def assert_clean_output(self) -> None:
        """No traceback, no secret, at most one `error:` line."""
        both = self.stdout + self.stderr
        assert "Traceback" not in both and 'File "' not in both, f"a traceback: {self.brief()}"
        assert self.stderr.count("error:") <= 1, f"more than one error line: {self.brief()}"
        assert SECRET not in both, f"the API key appears in the output: {self.brief()}"


def infer_args(server: OpenAIServer, dataset: Path, out: Path, k: int, *extra: str) -> list[str]:
    return ["infer", "--dataset", str(dataset), "--k", str(k), "--api-base", server.url, "--output-file", str(out),
            *FAST, *GENEROUS, *extra]  # fmt: skip


def wait_until(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen[str] | None = None) -> bool:
    """Poll `predicate` until it holds, `proc` exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def assert_key_nowhere(directory: Path, *runs: Run) -> None:
    """The API key is in no output and no file under `directory` (results, meta, lock, graded, logs)."""
    for run in runs:
        assert SECRET not in run.stdout + run.stderr, f"the API key appears in the output of {run.args[:1]}"
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), f"the API key is written in {path}"


# --- the invariant checker ----------------------------------------------------------------------------------


Snapshot = dict[str, dict[str, dict[str, Any]]]
"""unique_id → full_response → the good response (without its index)."""


@dataclass
class Lines:
    """A results file as read by the checker: its records, line by line."""

    records: list[dict[str, Any]]
    torn: bool


def read_lines(path: Path, *, allow_torn: bool = False) -> Lines:
    """Parse every line; a last line without its newline is allowed only with `allow_torn`."""
    if not path.exists():
        return Lines([], False)
    data = path.read_bytes()
    torn = bool(data) and not data.endswith(b"\n")
    assert allow_torn or not torn, f"{path} ends with an incomplete line: {data[-200:]!r}"
    lines = data.split(b"\n")
    complete = lines[:-1]
    records = []
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{path}, line {number} is not JSON: {raw[:200]!r}") from None
        assert isinstance(record, dict) and "unique_id" in record, f"{path}, line {number}: not a record"
        records.append(record)
    return Lines(records, torn)


def _good(response: dict[str, Any]) -> bool:
    return response.get("error") is None and response.get("full_response") is not None


@dataclass
class Checker:
    """Everything that must hold across the runs of one trial, checked after every run.

    - every line of the results file is a whole JSON record (a torn last line only where allowed);
    - every good response is a text the server handed out, for this problem, and appears once in the file;
    - every good response seen after an earlier run is still there, unchanged (nothing lost or altered);
    - `attempts` of a problem never exceeds the runs in which the server failed one of its requests, and is
      at least 1 once a failed request is recorded (the server never goes away in these trials);
    - the API key is in no output and no file of the trial;
    - at the end: each problem has exactly k good responses, indices 0..k-1, one line per problem.
    """

    out: Path
    server: TaggedServer
    uids: list[str]
    directory: Path
    snapshots: list[Snapshot] = field(default_factory=list)
    failure_runs: dict[str, int] = field(default_factory=dict)
    others: list[TaggedServer] = field(default_factory=list)
    """More endpoints of the same model: they share `server.served`, and their failed requests count too."""
    _requests_seen: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for other in self.others:
            other.served = self.server.served

    def after_run(self, run: Run | None, *, allow_torn: bool = False) -> Snapshot:
        """Check the file after a run (finished or interrupted); return its snapshot."""
        self._count_failures()
        if run is not None:
            assert SECRET not in run.stdout + run.stderr, f"the API key appears in the output: {run.brief()}"
        lines = read_lines(self.out, allow_torn=allow_torn)
        snapshot: Snapshot = {}
        seen: dict[str, str] = {}
        for record in lines.records:
            uid = record["unique_id"]
            assert uid in self.uids, f"a record for an unknown problem {uid!r}"
            assert isinstance(record.get("responses"), list), f"{uid}: responses is not a list"
            for response in record["responses"]:
                if not _good(response):
                    continue
                text = response["full_response"]
                owner = self.server.served.get(text)
                assert owner is not None, f"{uid}: a response the server never sent: {text[-120:]!r}"
                assert owner == uid, f"{uid}: holds a response given for {owner}: {text[-60:]!r}"
                assert text not in seen, f"{uid}: response duplicated in the file: {text[-60:]!r}"
                seen[text] = uid
                snapshot.setdefault(uid, {})[text] = {k: v for k, v in response.items() if k != "index"}
        for number, earlier in enumerate(self.snapshots):
            for uid, responses in earlier.items():
                now = snapshot.get(uid, {})
                for text, response in responses.items():
                    assert text in now, f"{uid}: a response saved after run {number + 1} is lost: {text[-60:]!r}"
                    assert now[text] == response, f"{uid}: a saved response was altered: {response} → {now[text]}"
        attempts: dict[str, int] = {}
        for record in lines.records:
            uid = record["unique_id"]
            attempts[uid] = max(attempts.get(uid, 0), int(record.get("attempts", 0)))
        failed_in_file = {r["unique_id"] for r in lines.records if not all(_good(x) for x in r["responses"])}
        for uid in failed_in_file:  # the server stays up in these trials: a recorded failure used an attempt
            assert attempts.get(uid, 0) >= 1, f"{uid}: a failed request is recorded but attempts is 0"
        for uid, used in attempts.items():
            allowed = self.failure_runs.get(uid, 0)
            assert used <= allowed, (
                f"{uid}: attempts {used}, but the server failed its requests in only {allowed} run(s) "
                "(an attempt is used only by a failed request)"
            )
        assert_key_nowhere(self.directory)
        self.snapshots.append(snapshot)
        return snapshot

    def _count_failures(self) -> None:
        """Add the runs in which a server failed a request of each problem (since the last check)."""
        settled = {"drop", "hang"}  # requests in flight when a run was killed get their answer first
        failed: set[str | None] = set()
        for number, server in enumerate([self.server, *self.others]):
            server.wait_for(
                lambda s: all(r.status is not None or r.behaviour in settled for r in s.completion_requests()), 3.0
            )
            requests = server.completion_requests()
            new = requests[self._requests_seen.get(number, 0) :]
            self._requests_seen[number] = len(requests)
            failed |= {problem_of(r.prompt) for r in new if failed_request(r.behaviour, r.status, r.n)}
        for uid in failed:
            if uid is not None:
                self.failure_runs[uid] = self.failure_runs.get(uid, 0) + 1

    def latest(self) -> Snapshot:
        """The good responses after the last checked run."""
        return self.snapshots[-1] if self.snapshots else {}

    def reset_server(self, shape: str, latency: float) -> None:
        """Before a run: count the last run's failures, then a server without queued behaviours, shaped."""
        self._count_failures()
        for server in [self.server, *self.others]:
            server.reset()
            apply_shape(server, shape)
            server.latency = latency
        self._requests_seen = {}

    def final(self, run: Run, k: int) -> None:
        """After the last (clean) run: exit 0, exactly k good responses each, compacted."""
        assert run.returncode == 0, f"the final clean run failed: {run.brief()}"
        run.assert_clean_output()
        self.after_run(run)
        lines = read_lines(self.out)
        by_uid: dict[str, list[dict[str, Any]]] = {}
        for record in lines.records:
            assert record["unique_id"] not in by_uid, f"{record['unique_id']}: more than one line after the run"
            by_uid[record["unique_id"]] = record["responses"]
        assert sorted(by_uid) == sorted(self.uids), f"problems missing: {sorted(set(self.uids) - set(by_uid))}"
        for uid, responses in by_uid.items():
            assert all(_good(r) for r in responses), f"{uid}: error responses left: {responses}"
            assert len(responses) == k, f"{uid}: {len(responses)} responses, not {k}"
            indices = [r["index"] for r in responses]
            assert indices == list(range(k)), f"{uid}: indices {indices}"


def signal_name(sig: int) -> str:
    return signal.Signals(sig).name


# --- resumable runs under faults ------------------------------------------------------------------------------


@dataclass
class Plan:
    """One trial of `collect infer` under faults, then a clean run that must finish the job."""

    problems: int
    k: int
    shape: str
    """How the server hands out samples: "n" (all k in one request), "fewer" (one choice per request:
    FewerChoices(1)), "reject-n" (400 for n>1: the client falls back to n=1)."""
    latency: float
    concurrency: int
    interrupts: list[int] = field(default_factory=list)
    """The signal that ends each interrupted run, in order (SIGKILL, SIGINT, SIGTERM)."""
    storm: Callable[[random.Random], list[Any]] | None = None
    """Behaviours queued before each faulty run (consumed one per request, then the shape applies)."""
    storm_runs: int = 0
    """Runs, after the interrupted ones, that meet a storm and go to their end (exit 0 or 1)."""
    max_retries: int = 3
    extra: list[str] = field(default_factory=list)

    def describe(self) -> str:
        sigs = ",".join(signal_name(s) for s in self.interrupts) or "-"
        return (f"{self.problems} problems, k={self.k}, shape={self.shape}, latency={self.latency:.3f}, "
                f"concurrency={self.concurrency}, interrupts={sigs}, storm runs={self.storm_runs}, "
                f"max-retries={self.max_retries}")  # fmt: skip


def apply_shape(server: OpenAIServer, shape: str) -> None:
    from tests.fakes.openai_server import FewerChoices, RejectN

    server.set_mode({"n": None, "fewer": FewerChoices(1), "reject-n": RejectN()}[shape])


def requests_per_problem(shape: str, k: int) -> int:
    return {"n": 1, "fewer": k, "reject-n": k}[shape]


def interrupted_run(
    server: OpenAIServer, args: list[str], sig: int, rng: random.Random, expected_requests: int, latency: float
) -> tuple[Run, bool]:
    """Start `collect`, send `sig` at a random moment of its work; return the run and whether it was signalled.

    The moment: after a random number of completion requests (0 .. all expected), plus a random part of a
    request's latency. SIGINT and SIGTERM wait at least for the run's GET /v1/models (the command is running);
    SIGKILL sometimes strikes at a random time from the start instead (start-up, lock, plan).
    """
    before_all = len(server.all_requests())
    before = len(server.completion_requests())
    proc = start_collect(args)
    try:
        if sig == signal.SIGKILL and rng.random() < 0.2:
            wait_until(lambda: False, rng.uniform(0.2, 2.0), proc)
        else:
            wait_until(lambda: len(server.all_requests()) > before_all, 30, proc)
            target = rng.randint(0, expected_requests)  # all of them: the signal lands in the final writes
            wait_until(lambda: len(server.completion_requests()) - before >= target, 30, proc)
            time.sleep(rng.uniform(0, max(latency, 0.01)))
        signalled = proc.poll() is None
        if signalled:
            proc.send_signal(sig)
        return finish(proc, args), signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_interrupted(run: Run, sig: int, signalled: bool) -> None:
    """What an interrupted run must show: SIGKILL nothing; SIGINT 130 and SIGTERM 143 with the resume hint."""
    if not signalled or run.returncode in (0, 1):  # it had finished (or was finishing) when the signal came
        assert run.returncode in (0, 1), run.brief()
        run.assert_clean_output()
        return
    if sig == signal.SIGKILL:
        assert run.returncode == -signal.SIGKILL, run.brief()
        return
    expected = EXIT_FOR_SIGNAL[sig]
    assert run.returncode == expected, f"{signal_name(sig)}: expected exit {expected}, got {run.brief()}"
    assert INTERRUPTED_HINT in run.stderr, f"{signal_name(sig)}: no resume hint: {run.brief()}"
    run.assert_clean_output()


def resume_trial(plan: Plan, rng: random.Random, directory: Path) -> None:
    """Run `plan`: interrupted runs, storm runs, then one clean run; check the invariants after each."""
    dataset = write_rows(directory / "problems.jsonl", make_rows(plan.problems))
    out = directory / "out" / "results.jsonl"
    uids = [uid_of(f"{i:03d}") for i in range(plan.problems)]
    with TaggedServer() as server:
        checker = Checker(out, server, uids, directory)
        args = infer_args(server, dataset, out, plan.k, "--max-concurrent", str(plan.concurrency),
                          "--max-retries", str(plan.max_retries), "--batch-size", str(rng.randint(1, 8)),
                          *plan.extra)  # fmt: skip
        per_problem = requests_per_problem(plan.shape, plan.k)
        try:
            for sig in plan.interrupts:
                checker.reset_server(plan.shape, plan.latency)
                if plan.storm is not None:
                    server.enqueue(*plan.storm(rng))
                remaining = sum(1 for uid in uids if len(checker.latest().get(uid, {})) < plan.k)
                run, signalled = interrupted_run(server, args, sig, rng, remaining * per_problem, plan.latency)
                check_interrupted(run, sig, signalled)
                checker.after_run(run)
            for _ in range(plan.storm_runs):
                checker.reset_server(plan.shape, plan.latency)
                if plan.storm is not None:
                    server.enqueue(*plan.storm(rng))
                run = run_collect(args)
                assert run.returncode in (0, 1), run.brief()
                run.assert_clean_output()
                checker.after_run(run)
            checker.reset_server(plan.shape, 0.0)
            checker.final(run_collect(args), plan.k)
        except AssertionError as err:
            raise AssertionError(f"{plan.describe()}\n{err}") from None
