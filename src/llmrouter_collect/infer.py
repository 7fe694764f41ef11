"""`collect infer`: plan (problems × k − what the file already holds) → bounded workers → client → store."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .benchmarks import ProblemSet, dataset_fingerprint, dataset_label, open_problems
from .client import (
    GENERATION_RECORD_DEFAULTS,
    GenerationParams,
    OpenAIClient,
    Reply,
    RequestFailed,
    RetryPolicy,
    create_http_client,
    create_transport,
)
from .endpoints import EndpointPool, EndpointStats
from .errors import ConfigError, DatasetError, EndpointError, StoreError
from .fileio import atomic_write_bytes, real_path
from .prompts import Templates, build_completion_prompt, build_messages, load_templates
from .records import FIELD_LABELS, RUN_FIELDS, SCHEMA_VERSION, Problem, now_iso, problem_signature
from .settings import Settings
from .store import (
    WRITABLE_HINT,
    FileState,
    ResultsWriter,
    compact,
    lock_path,
    problem_differences,
    scan,
)

SYNC_INTERVAL_S = 5.0
"""Longest time a written line waits for its fsync when results trickle in slowly."""
CLIENT_ERRORS_BEFORE_STOP = 10
"""A run whose first requests all fail with a client error (4xx) stops after this many: the settings are wrong."""
META_RUNS_KEPT = 50
"""How many runs the `.meta.json` history keeps (the first run of the file, and the latest ones)."""
OUTAGE_KINDS = ("connection", "timeout", "transport")
"""Failures after which the server is probed: if it does not answer, the run stops without using attempts."""


@dataclass(slots=True)
class InferStats:
    """Live counters of a run; the progress display reads them while the run updates them."""

    problems_total: int = 0
    to_do: int = 0
    skipped_done: int = 0
    skipped_exhausted: int = 0
    problems_done: int = 0
    problems_failed: int = 0
    problems_exhausted: int = 0
    problems_not_asked: int = 0
    responses: int = 0
    requests: int = 0
    failed_requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors_by_message: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    endpoints: list[EndpointStats] = field(default_factory=list)
    """Per endpoint: tries, replies, errors, in flight, state (live)."""

    @property
    def finished(self) -> int:
        """Problems of this run's plan that are over, well or not."""
        return self.problems_done + self.problems_failed + self.problems_not_asked

    @property
    def retryable(self) -> int:
        """Problems left without their k responses that the same command, rerun, would ask again."""
        return self.problems_failed - self.problems_exhausted + self.problems_not_asked

    @property
    def out_of_attempts(self) -> int:
        """Problems that have used --max-attempts: skipped by this run, or failed by it for the last time."""
        return self.skipped_exhausted + self.problems_exhausted


@dataclass(slots=True)
class InferSummary:
    """What a run did, for the closing summary and the exit code."""

    output_path: Path
    model: str
    stats: InferStats
    elapsed_s: float
    torn_bytes_cut: int = 0
    stopped: StopReason | None = None
    n_fallback: bool = False
    max_attempts: int = 0

    @property
    def left_failed(self) -> int:
        """Problems still without their k good responses when the run ended."""
        return self.stats.problems_failed + self.stats.problems_not_asked + self.stats.skipped_exhausted


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why a run stopped asking before its plan was done (the server is gone, or every request is refused)."""

    message: str
    hint: str


@dataclass(slots=True)
class ProblemRun:
    """One problem's work in this run: how many samples it still needs and how its requests went."""

    problem: Problem
    need: int
    prior_attempts: int
    next_index: int
    counted: bool = False
    """A request of this problem failed in this run (not for want of a server): the run uses one attempt."""
    asked: bool = False
    outstanding: int = 0
    got: int = 0

    @property
    def attempts(self) -> int:
        """The attempt count to write: earlier runs' count, plus one once a request failed in this run.

        Successes never use an attempt, so an interrupted run costs nothing; lines written before a failure
        carry the lower count, and readers take the highest count over a problem's lines.
        """
        return self.prior_attempts + (1 if self.counted else 0)


def _decide(uid: str, state: FileState, k: int, max_attempts: int) -> tuple[int, int, int]:
    """(need, good, attempts) of one problem; need ≤ 0: done; need > 0 and attempts ≥ max_attempts: exhausted."""
    known = state.problems.get(uid)
    good = known.good if known else 0
    attempts = known.attempts if known else 0
    return k - good, good, attempts


def iter_runs(problems: Iterable[Problem], state: FileState, k: int, max_attempts: int) -> Iterator[ProblemRun]:
    """The ProblemRuns of the problems to ask, one at a time: per problem, done (k good responses), exhausted
    (max_attempts used), or ask for the rest (pure)."""
    for problem in problems:
        need, good, attempts = _decide(problem.unique_id, state, k, max_attempts)
        if need > 0 and attempts < max_attempts:
            yield ProblemRun(problem=problem, need=need, prior_attempts=attempts, next_index=good)


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """What a plan holds, counted from the problems' ids and the file's state alone."""

    skipped_done: int
    skipped_exhausted: int
    to_ask: int
    responses_to_ask: int
    responses_held: int
    most_held: int
    first_to_ask: str | None
    """The unique_id of the first problem to ask, or None."""


def count_plan(ids: Iterable[str], state: FileState, k: int, max_attempts: int) -> PlanCounts:
    """Count what `iter_runs` would yield and skip, without the problems' texts (pure)."""
    done = exhausted = to_ask = responses = held = most = 0
    first: str | None = None
    for uid in ids:
        need, good, attempts = _decide(uid, state, k, max_attempts)
        held += min(good, k)
        most = max(most, good)
        if need <= 0:
            done += 1
        elif attempts >= max_attempts:
            exhausted += 1
        else:
            to_ask += 1
            responses += need
            if first is None:
                first = uid
    return PlanCounts(done, exhausted, to_ask, responses, held, most, first)


def output_path(settings: Settings, model: str) -> Path:
    """Where results go: --output-file (a bare name lands in --output-dir), else a name from model and data."""
    if settings.output_file:
        given = Path(settings.output_file).expanduser()
        return given if given.is_absolute() or len(given.parts) > 1 else settings.output_dir / given
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    shard = settings.shard_spec.file_suffix if settings.shard_spec else ""  # one model's shards side by side
    return settings.output_dir / f"{safe_model}_{dataset_label(settings.dataset_names)}{shard}.jsonl"


def identity_mismatch(existing: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """Name the first run field (model, endpoint, generation, prompt) where a file and this run differ."""
    if not existing:
        return None
    if existing.get("shard") != current.get("shard"):  # absent: a run over every problem (and older files)
        return (
            f"shard: the file belongs to {_shard_name(existing.get('shard'))}, "
            f"this run is {_shard_name(current.get('shard'))} (--shard)"
        )
    flags = {
        "model": "--model",
        "endpoint": "--endpoint",
        "prompt_fingerprint": "--prompt-template",
        "temperature": "--temperature",
        "top_p": "--top-p",
        "max_tokens": "--max-tokens",
        "seed": "--seed",
        "stop": "--stop",
        "token_limit_field": "--token-limit-field",
        "reasoning_effort": "--reasoning-effort",
        "extra_body": "--extra-body",
    }
    for key in RUN_FIELDS:
        if key not in existing:
            continue  # files from older versions do not record every field
        old, new = existing[key], current[key]
        if key == "generation" and isinstance(old, dict):
            for sub, value in new.items():
                # A field added later is absent from older files: those were made with its default.
                before = old[sub] if sub in old else GENERATION_RECORD_DEFAULTS.get(sub, value)
                if before != value:
                    return f"generation.{sub}: the file has {before!r}, this run {value!r} ({flags[sub]})"
        elif old != new:
            what = (
                "the prompt templates differ"
                if key == "prompt_fingerprint"
                else f"the file has {old!r}, this run {new!r}"
            )
            return f"{key}: {what} ({flags[key]})"
    return None


def _shard_name(shard: Any) -> str:
    return f"shard {shard}" if shard is not None else "no shard (every problem)"


def split_tokens(total: int, weights: list[int]) -> list[int]:
    """Share `total` tokens over responses in proportion to `weights`, summing exactly to `total` (pure)."""
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum <= 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    exact = [total * w / weight_sum for w in weights]
    shares = [int(x) for x in exact]
    leftovers = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in leftovers[: total - sum(shares)]:
        shares[i] += 1
    return shares


def reply_responses(reply: Reply, first_index: int, n_asked: int) -> list[dict[str, Any]]:
    """The response entries of a successful reply (at most n_asked of them), with per-response usage."""
    samples = reply.samples[:n_asked]
    count = len(samples)
    prompt_shares = split_tokens(reply.prompt_tokens, [1] * count)
    lengths = [len(s.text) + 1 for s in samples]
    completion_shares = split_tokens(reply.completion_tokens, lengths)
    reasoning_shares = split_tokens(reply.reasoning_tokens, lengths)
    created = now_iso()
    responses = []
    for i, sample in enumerate(samples):
        responses.append(
            {
                "index": first_index + i,
                "full_response": sample.text,
                "reasoning_content": sample.reasoning,
                "finish_reason": sample.finish_reason,
                "usage": {
                    "prompt_tokens": prompt_shares[i],
                    "completion_tokens": completion_shares[i],
                    "reasoning_tokens": reasoning_shares[i],
                },
                "latency_s": round(reply.latency_s, 4),
                "obtained_via": f"n={n_asked}",
                "created_at": created,
                "error": None,
            }
        )
    return responses


def error_responses(failure: RequestFailed, first_index: int, count: int, n_asked: int) -> list[dict[str, Any]]:
    """One entry per sample a failed request should have produced."""
    created = now_iso()
    error = failure.as_record()
    return [
        {
            "index": first_index + i,
            "full_response": None,
            "reasoning_content": None,
            "finish_reason": None,
            "usage": None,
            "latency_s": None,
            "obtained_via": f"n={n_asked}",
            "created_at": created,
            "error": error,
        }
        for i in range(count)
    ]


class _Engine:
    """Runs the planned problems with at most `max_concurrent` requests in flight, writing as they finish."""

    def __init__(
        self,
        settings: Settings,
        pool: EndpointPool,
        writer: ResultsWriter,
        params: GenerationParams,
        templates: Templates,
        identity: dict[str, Any],
        stats: InferStats,
        warn: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.writer = writer
        self.params = params
        self.templates = templates
        self.stats = stats
        self.warn = warn
        self.n_supported = True
        self.stopped: StopReason | None = None
        self._successes = 0
        self._client_errors = 0
        self._record_head = {"schema_version": SCHEMA_VERSION}
        self._record_run = {**identity, "api_base": pool.base_url, "k_requested": settings.k_responses}
        self._last_sync = time.monotonic()
        self._since_sync = 0
        self._sync_task: asyncio.Future[None] | None = None

    async def run(self, runs: Iterable[ProblemRun], total: int) -> None:
        """Ask the planned problems (`total` of them; taken from `runs` one at a time, as the queue has room)."""
        queue: asyncio.Queue[tuple[ProblemRun, int] | None] = asyncio.Queue(maxsize=self.settings.max_concurrent * 2)
        workers = self.settings.max_concurrent
        queued = 0
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(queue))
                for problem_run in runs:
                    if self.stopped:
                        break
                    jobs = self._split(problem_run.need)
                    problem_run.outstanding = len(jobs)  # all at once: it cannot reach 0 before the last is queued
                    queued += 1
                    for n in jobs:
                        await queue.put((problem_run, n))
                for _ in range(workers):
                    await queue.put(None)
        except BaseException:
            await self._settle_sync()
            raise
        # A run that stopped (server gone, every request refused) never queued the rest: not asked either.
        self.stats.problems_not_asked += total - queued
        await self.finish_sync()

    def _split(self, need: int) -> list[int]:
        return [need] if self.n_supported else [1] * need

    async def _worker(self, queue: asyncio.Queue[tuple[ProblemRun, int] | None]) -> None:
        while True:
            job = await queue.get()
            if job is None:
                return
            problem_run, n = job
            if not self.stopped:
                problem_run.asked = True
                await self._ask(problem_run, n)
            problem_run.outstanding -= 1
            if problem_run.outstanding == 0:
                if problem_run.got >= problem_run.need:
                    self.stats.problems_done += 1
                elif problem_run.asked:
                    self.stats.problems_failed += 1
                    if problem_run.attempts >= self.settings.max_attempts:
                        self.stats.problems_exhausted += 1
                else:
                    self.stats.problems_not_asked += 1

    async def _ask(self, problem_run: ProblemRun, n_wanted: int) -> None:
        problem = problem_run.problem
        prompt: str | list[dict[str, str]] = (
            build_messages(problem, self.templates)
            if self.params.endpoint == "chat"
            else build_completion_prompt(problem, self.templates)
        )
        remaining = n_wanted
        probing_n = False
        while remaining > 0:
            n = remaining if (self.n_supported and not probing_n) else 1
            self.stats.requests += 1
            try:
                reply = await self.pool.generate(prompt, self.params, n)
            except RequestFailed as failure:
                if failure.status == 400 and n > 1:
                    probing_n = True  # maybe the server does not take n>1: try once with n=1
                    continue
                await self._fail(problem_run, failure, remaining, n)
                return
            if probing_n and self.n_supported:
                self.n_supported = False
                self.warn(f"the server rejects n={n_wanted}; asking for samples one by one (n=1)")
            if not reply.samples:
                await self._fail(
                    problem_run,
                    RequestFailed("malformed", "the server returned no choices", 200),
                    remaining,
                    n,
                )
                return
            self._successes += 1
            responses = reply_responses(reply, problem_run.next_index, n)
            problem_run.next_index += len(responses)
            problem_run.got += len(responses)
            remaining -= len(responses)
            self._write(problem_run, responses, reply.api_base)
            self.stats.responses += len(responses)
            self.stats.prompt_tokens += reply.prompt_tokens
            self.stats.completion_tokens += reply.completion_tokens

    async def _fail(self, problem_run: ProblemRun, failure: RequestFailed, remaining: int, n: int) -> None:
        self.stats.failed_requests += 1
        self.stats.errors_by_message[failure.message[:200]] += 1
        if failure.kind in OUTAGE_KINDS and not await self._server_answers():
            # A server that cannot be reached (or hangs) does not use up the problem's attempts; stop asking.
            if not self.stopped:
                lost = "the server" if len(self.pool.clients) == 1 else "every endpoint"
                self.stopped = StopReason(
                    f"lost {lost}: {failure.message}",
                    "is it still running? (`collect serve status`) — rerun the same command to resume",
                )
        else:
            problem_run.counted = True
        if failure.kind == "http" and failure.status is not None and 400 <= failure.status < 500:
            self._client_errors += 1
            if not self._successes and self._client_errors >= CLIENT_ERRORS_BEFORE_STOP and not self.stopped:
                self.stopped = StopReason(
                    f"the first {self._client_errors} requests were all refused — {failure.message}",
                    f"{failure.hint}, and rerun"
                    if failure.hint
                    else "fix the setting it names (e.g. --max-tokens below the server's context length) and rerun",
                )
        self._write(problem_run, error_responses(failure, problem_run.next_index, remaining, n))

    async def _server_answers(self) -> bool:
        """After a connection failure or a timeout: is the server still there (it only dropped a connection, or
        one request was slow) or gone (it refuses connections, or does not answer /models either)?"""
        if self.stopped:
            return False
        return await self.pool.server_answers()  # one probe per endpoint, shared by the requests that failed

    def _write(self, problem_run: ProblemRun, responses: list[dict[str, Any]], api_base: str | None = None) -> None:
        now = now_iso()
        record = {
            **self._record_head,
            **problem_run.problem.to_record_fields(),
            **self._record_run,
            **({"api_base": api_base} if api_base else {}),
            "attempts": problem_run.attempts,
            "created_at": now,
            "updated_at": now,
            "responses": responses,
        }
        self.writer.append(record)
        self._since_sync += 1
        if self._since_sync >= self.settings.batch_size or time.monotonic() - self._last_sync > SYNC_INTERVAL_S:
            self._start_sync()

    def _start_sync(self) -> None:
        # fsync takes ~0.3 ms or more; in a worker thread the event loop keeps serving requests meanwhile.
        if self._sync_task is not None:
            if not self._sync_task.done():
                return  # one at a time: the next write starts the next one
            self._sync_task.result()  # an earlier sync's failure (disk full) stops the run here
        self._since_sync = 0
        self._last_sync = time.monotonic()
        self._sync_task = asyncio.get_running_loop().run_in_executor(None, self.writer.fsync)

    async def _settle_sync(self) -> None:
        """After a failure or an interruption: let a sync in progress end before the file is closed under it
        (it would fail on a closed descriptor, and its error would be printed as a stray traceback at exit).
        Its own error is secondary: the failure that stopped the run is the one reported."""
        task = self._sync_task
        if task is None:
            return
        with contextlib.suppress(BaseException):
            await asyncio.wait([task])
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it

    async def finish_sync(self) -> None:
        """Wait for a sync in progress, and raise its failure."""
        if self._sync_task is not None:
            await self._sync_task


async def resolve_model(
    client: OpenAIClient,
    settings: Settings,
    on_wait: Callable[[str], None] | None = None,
    *,
    notice_after: float = 2.0,
) -> str:
    """Check that the server answers, and find the model: the one given, or a local server's only model.

    Args:
        on_wait: told once (a one-line message) when GET /models has not answered within `notice_after`
            seconds, so the user knows what the run waits for (at most `client.models_timeout` seconds).

    Raises:
        EndpointError: no server at the URL, a server that accepts connections but does not answer, a refused
            key, or a model the local server does not serve.
    """
    base = client.base_url
    probe = asyncio.ensure_future(client.model_entries())
    try:
        if on_wait is not None:
            done, _ = await asyncio.wait({probe}, timeout=notice_after)
            if not done:
                on_wait(f"waiting for {base} to answer GET /models (up to {client.models_timeout:g} s)")
        entries = await probe
    except RequestFailed as failure:
        if failure.kind == "connection":
            hint = (
                "start a local server with `collect serve --model MODEL` (`collect serve status` lists the ones "
                "running), or point --api-base at a running one"
                if settings.api_mode == "local"
                else "check --api-base and your network"
            )
            raise EndpointError(f"no server answers at {base} ({failure.message})", hint=hint) from None
        if failure.kind == "timeout":
            raise EndpointError(
                f"the server at {base} accepted the connection but did not answer GET /models "
                f"within {client.models_timeout:g} s",
                hint="is vLLM still loading the model, or stuck? `collect serve status` shows its state and log; "
                "rerun once it answers (--connect-timeout bounds connecting, --request-timeout also bounds this wait)",
            ) from None
        entries = []  # some OpenAI-compatible APIs have no /models; the first request will tell
    finally:
        probe.cancel()  # only does something when this coroutine itself is cancelled mid-wait
    served = [str(entry["id"]) for entry in entries]
    model: str | None = None
    if settings.model:
        if settings.api_mode == "local" and served and settings.model not in served:
            raise EndpointError(
                f"model {settings.model!r} is not served at {base}",
                hint=f"it serves: {client.quote(', '.join(served[:20]), 300)}; pass --model with one of these",
            )
        model = settings.model
    elif settings.api_mode == "local" and len(served) == 1:
        model = served[0]
    if model is not None:
        _check_context(model, entries, settings.max_tokens, base)
        return model
    if served:
        raise EndpointError(
            "no --model given and the server has several models",
            hint=f"pass --model with one of: {client.quote(', '.join(served[:20]), 300)}",
        )
    raise EndpointError("no --model given", hint="pass --model NAME or set COLLECT_MODEL")


def _check_context(model: str, entries: list[dict[str, Any]], max_tokens: int, base: str) -> None:
    """Refuse --max-tokens that cannot fit the model's context (vLLM lists `max_model_len` in /models)."""
    limit = next((entry.get("max_model_len") for entry in entries if entry.get("id") == model), None)
    if isinstance(limit, int) and not isinstance(limit, bool) and max_tokens >= limit:
        raise EndpointError(
            f"--max-tokens {max_tokens} does not fit the context of {model!r} at {base} "
            f"({limit} tokens, prompt included)",
            hint=f"pass --max-tokens below {limit} (e.g. --max-tokens {max(limit // 2, limit - 1024)}), "
            "or serve the model with a larger --max-model-len",
        )


def changed_problems(problems: Iterable[Problem], state: FileState) -> list[Problem]:
    """The problems whose fields (question, choices, answers, ...) differ from what the file holds (pure).

    Compares the per-problem fingerprints `scan` took; a problem whose lines already disagree counts as
    changed. Problems the file does not hold yet are not compared.
    """
    changed = []
    for problem in problems:
        known = state.problems.get(problem.unique_id)
        if known is None or known.signature is None:
            continue
        mask, digest = known.signature
        if known.mixed or problem_signature(problem.to_record_fields(), mask) != (mask, digest):
            changed.append(problem)
    return changed


def changed_ids(problems: ProblemSet, state: FileState) -> list[str]:
    """`changed_problems` for a ProblemSet: the ids whose fields differ from what the file holds.

    The digests the set holds are compared with the file's without reading the dataset again; only problems
    whose lines lack some fields (files of older versions) are read again and compared field by field.
    """
    changed: list[str] = []
    partial: list[str] = []
    for index, uid in enumerate(problems.ids):
        known = state.problems.get(uid)
        if known is None or known.signature is None:
            continue
        mask, digest = known.signature
        if known.mixed:
            changed.append(uid)
        elif mask != problems.signature_mask:
            partial.append(uid)
        elif digest != problems.digest(index):
            changed.append(uid)
    if partial:
        changed.extend(p.unique_id for p in changed_problems(problems.fetch(partial), state))
        differ = set(changed)
        order = {uid: index for index, uid in enumerate(problems.ids) if uid in differ}
        changed.sort(key=order.__getitem__)
    return changed


def dataset_changed_error(path: Path, changed: list[Problem], shown: int = 3, total: int | None = None) -> StoreError:
    """The refusal to resume a file whose problems were edited in the dataset, naming ids and fields.

    `total` is how many differ in all, when `changed` holds only the first of them."""
    first = changed[:shown]
    total = len(changed) if total is None else total
    fields = problem_differences(path, {p.unique_id: p.to_record_fields() for p in first})
    examples = "; ".join(
        f"{p.unique_id}: {', '.join(FIELD_LABELS.get(name, name) for name in fields[p.unique_id]) or 'lines disagree'}"
        for p in first
    )
    more = f"; and {total - len(first)} more" if total > len(first) else ""
    count = "1 problem of the dataset differs" if total == 1 else f"{total} problems of the dataset differ"
    return StoreError(
        f"{path}: {count} from the file's ({examples}{more}); new samples would be mixed with answers to the old text",
        hint="restore the dataset as it was to resume this file, or pass --output-file NEW.jsonl for a fresh file",
    )


def write_meta(
    path: Path,
    settings: Settings,
    identity: dict[str, Any],
    problems: ProblemSet | list[Problem],
    warn: Callable[[str], None] = lambda message: None,
) -> None:
    """Write `<results>.meta.json`: effective settings (no secrets), versions, dataset fingerprint, and the
    history of the runs on this file (`runs`, kept from the earlier meta file; at most META_RUNS_KEPT)."""
    meta_path = path.with_name(path.name + ".meta.json")
    fingerprint = problems.fingerprint() if isinstance(problems, ProblemSet) else dataset_fingerprint(problems)
    now = now_iso()
    runs = _earlier_runs(meta_path, warn)
    runs.append(
        {
            "started_at": now,
            "collect_version": __version__,
            "datasets": settings.dataset_names,
            "num_problems": settings.num_problems,
            "problems": len(problems),
            "dataset_fingerprint": fingerprint,
            "k_responses": settings.k_responses,
            "max_attempts": settings.max_attempts,
        }
    )
    if len(runs) > META_RUNS_KEPT:
        runs = [runs[0], *runs[len(runs) - META_RUNS_KEPT + 1 :]]
    meta = {
        "schema_version": SCHEMA_VERSION,
        "collect_version": __version__,
        "updated_at": now,
        **identity,
        "api_base": settings.resolved_api_bases,
        "k_responses": settings.k_responses,
        "datasets": settings.dataset_names,
        "num_problems": settings.num_problems,
        "dataset_fingerprint": fingerprint,
        "settings": settings.model_dump(mode="json", exclude={"api_key"}),
        "runs": runs,
    }
    try:
        atomic_write_bytes(meta_path, orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as err:
        raise StoreError(f"cannot write {meta_path}: {err.strerror}", hint=WRITABLE_HINT) from None


def _earlier_runs(meta_path: Path, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The run history of an existing meta file; a meta file from before the history holds one run."""
    try:
        old = orjson.loads(meta_path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError) as err:
        warn(f"{meta_path}: unreadable ({err}); its run history starts again")
        return []
    if not isinstance(old, dict):
        warn(f"{meta_path}: not a meta file; its run history starts again")
        return []
    runs = old.get("runs")
    if isinstance(runs, list):
        return [run for run in runs if isinstance(run, dict)]
    keys = ("collect_version", "datasets", "num_problems", "dataset_fingerprint", "k_responses")
    return [{"started_at": old.get("updated_at"), **{key: old.get(key) for key in keys}}]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run is about to do, told before any completion request is sent (and all that `--dry-run` does)."""

    model: str | None
    """The model asked, or None when a dry run found no server and no --model was given."""
    model_source: str
    """How the model was chosen: "given", "the server's only model", or "unverified: ..." (dry run, no server)."""
    api_base: str
    endpoint: str
    problems: int
    k: int
    output_path: Path | None
    """None when the file is named after a model that is not known (dry run without a server or --model)."""
    file_exists: bool
    """The output file exists and holds results (so the run resumes it)."""
    problems_done: int
    """Problems that already hold k good responses in the file."""
    problems_exhausted: int
    """Problems left out: they used --max-attempts."""
    problems_to_ask: int
    responses_to_ask: int
    responses_held: int
    """Good responses the file holds for this run's problems (counted up to k per problem)."""
    most_held: int
    """The most good responses the file holds for one of this run's problems (may exceed k)."""
    first_prompt: str | list[dict[str, str]] | None
    """The first prompt to be sent (chat messages or completion text), or None when nothing is to be asked."""
    shard: str | None = None
    """`I/N` when the run asks one shard of the selection (`--shard`), else None."""
    selected: int = 0
    """Problems of the selection (`--num-problems`) before the shard was taken (`problems` when not sharded)."""

    @property
    def responses_total(self) -> int:
        """Problems × k."""
        return self.problems * self.k

    def fewer_than_held(self) -> str | None:
        """The notice for a --k below what the file holds for these problems, or None."""
        if self.most_held <= self.k:
            return None
        outcome = (
            "nothing to do (pass a larger --k to add samples)"
            if self.problems_to_ask == 0
            else f"problems that hold {self.k} or more are left as they are"
        )
        return f"the file holds up to {self.most_held} responses per problem; --k {self.k} asks for fewer: {outcome}"


def _plan(
    *,
    settings: Settings,
    problems: ProblemSet,
    templates: Templates,
    model: str | None,
    model_source: str,
    api_base: str,
    path: Path | None,
    state: FileState,
    selected: int,
) -> tuple[RunPlan, PlanCounts]:
    counts = count_plan(problems.ids, state, settings.k_responses, settings.max_attempts)
    first: str | list[dict[str, str]] | None = None
    if counts.first_to_ask is not None:
        [problem] = problems.fetch([counts.first_to_ask])
        first = (
            build_messages(problem, templates)
            if settings.endpoint == "chat"
            else build_completion_prompt(problem, templates)
        )
    plan = RunPlan(
        model=model,
        model_source=model_source,
        api_base=api_base,
        endpoint=settings.endpoint,
        problems=len(problems),
        k=settings.k_responses,
        output_path=path,
        file_exists=bool(state.problems),
        problems_done=counts.skipped_done,
        problems_exhausted=counts.skipped_exhausted,
        problems_to_ask=counts.to_ask,
        responses_to_ask=counts.responses_to_ask,
        responses_held=counts.responses_held,
        most_held=counts.most_held,
        first_prompt=first,
        shard=settings.shard,
        selected=selected,
    )
    return plan, counts


async def _choose_model(
    pool: EndpointPool, settings: Settings, warn: Callable[[str], None], *, dry_run: bool
) -> tuple[str | None, str]:
    """The model and how it was chosen; a dry run without a server goes on with the model unverified.

    With several endpoints, those that answer must agree on the model; those that do not answer yet are taken out
    (the run starts on the others, and probes them)."""
    if dry_run and not await pool.server_answers():
        return settings.model, f"unverified: no server answers at {pool.base_url}"
    how = "given" if settings.model else "the server's only model"
    clients = pool.clients
    if len(clients) == 1:
        return await resolve_model(clients[0], settings, on_wait=warn), how
    answers = await asyncio.gather(*(client.answers_now() for client in clients))
    live = [client for client, answered in zip(clients, answers, strict=True) if answered]
    if not live:
        live = [clients[0]]  # resolve_model says why it cannot be reached (or it came up meanwhile)
    for client, answered in zip(clients, answers, strict=True):
        if not answered and client is not live[0]:
            warn(f"endpoint {client.base_url} does not answer yet: the run starts on the others and probes it")
            pool.take_out(client, "does not answer GET /models")
    models = await asyncio.gather(*(resolve_model(client, settings, on_wait=warn) for client in live))
    if len(set(models)) > 1:
        served = "; ".join(f"{model} at {client.base_url}" for client, model in zip(live, models, strict=True))
        raise EndpointError(
            f"the endpoints serve different models ({served})",
            hint="pass --model NAME to pick one, or give only the endpoints of one model (a fleet file runs several)",
        )
    return models[0], how


async def run_infer(
    settings: Settings,
    *,
    stats: InferStats | None = None,
    warn: Callable[[str], None] = lambda message: None,
    on_output: Callable[[Path], None] = lambda path: None,
    on_plan: Callable[[RunPlan], None] = lambda plan: None,
) -> InferSummary:
    """Ask the model k times per problem and store every response; resumes what the output file holds.

    Args:
        settings: the effective settings.
        stats: counters to update live (for a progress display).
        warn: receives warnings meant for the user.
        on_output: called with the output path once it is known (before any request is sent).
        on_plan: called with the plan (model, endpoint, problems × k, what the file holds, output) before any
            completion request is sent.

    Raises:
        DatasetError, ConfigError: bad input, found before any request is sent.
        EndpointError: the server refused the run (unreachable at start, 401/403/404, a URL or TLS certificate
            no retry can cure).
        StoreError: the results file is locked by another run, belongs to other settings, or cannot be written.

    A run that writes no result (refused before any request, or failed at once) removes the files it created
    (the results file, its `.meta.json` and `.lock`, an output directory it made), never one that was there.
    """
    summary = await _infer(settings, stats=stats, warn=warn, on_output=on_output, on_plan=on_plan, dry_run=False)
    assert isinstance(summary, InferSummary)
    return summary


async def plan_infer(settings: Settings, *, warn: Callable[[str], None] = lambda message: None) -> RunPlan:
    """What `run_infer` would do (`collect infer --dry-run`): no completion request is sent, no file written.

    Only GET /models is sent, to check the model; when no server answers, the plan says the model is unverified
    (and names no output file if the file is named after a model not given).

    Raises:
        As `run_infer`, except that an unreachable server is not an error.
    """
    plan = await _infer(settings, warn=warn, dry_run=True)
    assert isinstance(plan, RunPlan)
    return plan


async def _infer(
    settings: Settings,
    *,
    stats: InferStats | None = None,
    warn: Callable[[str], None] = lambda message: None,
    on_output: Callable[[Path], None] = lambda path: None,
    on_plan: Callable[[RunPlan], None] = lambda plan: None,
    dry_run: bool,
) -> InferSummary | RunPlan:
    stats = stats or InferStats()
    if settings.api_mode == "remote" and not settings.api_key:
        raise ConfigError("remote mode needs an API key", hint="set COLLECT_API_KEY (or pass --api-key)")
    api_bases = settings.resolved_api_bases  # refuses a key headed for an address only a .env chose, before loading
    for notice in settings.api_base_notices:
        warn(notice)
    templates = load_templates(settings.prompt_template)
    selection = open_problems(settings.dataset_names, settings.num_problems, settings.dataset_map)
    spec = settings.shard_spec  # after the subset: the N shards make the selection
    problems = selection if spec is None else selection.only(spec.holds)
    stats.problems_total = len(problems)
    # One connection more per endpoint than requests in flight: a GET /models probe must never queue behind busy
    # connections (aiohttp hands a freed keep-alive connection to the next request before a waiting one).
    transport = create_transport(settings.max_concurrent + len(api_bases))
    http = create_http_client(
        api_bases[0],
        api_key=settings.api_key_value,
        request_timeout=settings.request_timeout,
        connect_timeout=settings.connect_timeout,
        transport=transport,
    )
    policy = RetryPolicy(
        max_retries=settings.max_retries,
        initial_delay=settings.initial_retry_delay,
        max_delay=settings.max_retry_delay,
    )

    def count_retry(kind: str) -> None:
        stats.retries += 1

    clients = [
        OpenAIClient(http, transport, request_timeout=settings.request_timeout, base_url=base) for base in api_bases
    ]
    pool = EndpointPool(
        clients,
        policy=policy,
        endpoint_concurrency=settings.endpoint_concurrency,
        rpm=settings.rpm,
        tpm=settings.tpm,
        on_retry=count_retry,
        warn=warn,
    )
    stats.endpoints = pool.stats
    async with http:
        try:
            return await _infer_with(
                settings, pool, stats, warn, on_output, on_plan, templates, problems, len(selection), dry_run=dry_run
            )
        finally:
            await pool.aclose()


async def _infer_with(
    settings: Settings,
    pool: EndpointPool,
    stats: InferStats,
    warn: Callable[[str], None],
    on_output: Callable[[Path], None],
    on_plan: Callable[[RunPlan], None],
    templates: Templates,
    problems: ProblemSet,
    selected: int,
    *,
    dry_run: bool,
) -> InferSummary | RunPlan:
    """The run once its settings, problems (`selected`: before the shard was taken) and endpoints are known:
    choose the model, plan, ask."""
    model, model_source = await _choose_model(pool, settings, warn, dry_run=dry_run)
    plan_args: dict[str, Any] = {
        "settings": settings,
        "problems": problems,
        "templates": templates,
        "model": model,
        "model_source": model_source,
        "api_base": pool.base_url,
        "selected": selected,
    }
    params = GenerationParams(
        model=model or "",
        endpoint=settings.endpoint,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_tokens,
        seed=settings.seed,
        stop=tuple(settings.stop_sequences),
        token_limit_field=settings.token_limit_field,
        reasoning_effort=settings.reasoning_effort,
        extra_body=settings.extra_body,
    )
    identity = {
        "model": model,
        "endpoint": settings.endpoint,
        "generation": params.as_record(),
        "prompt_fingerprint": templates.fingerprint(problems.shapes),
    }
    if settings.shard:
        identity["shard"] = settings.shard  # on every record and in the meta file; resume checks it
    if dry_run:
        path = output_path(settings, model or "") if model is not None or settings.output_file else None
        state = scan(real_path(path)) if path is not None and path.exists() else FileState()
        if path is not None and model is not None:
            _check_resumable(path, state, identity, problems)  # refused now, as the real run would be
        plan, _ = _plan(**plan_args, path=path, state=state)
        on_plan(plan)
        notice = plan.fewer_than_held()
        if notice:
            warn(notice)
        return plan
    assert model is not None  # resolve_model returns one or raises
    path = output_path(settings, model)
    on_output(path)
    real = real_path(path)  # a symlink is followed: one lock, one file, and compaction keeps the link
    created = _CreatedFiles.before(real)
    try:
        with ResultsWriter(path, sync_every=None) as writer:
            try:
                summary = await _run_locked(
                    settings, pool, writer, params, templates, identity, problems, stats, warn, on_plan,
                    path, real, plan_args,
                )
            finally:
                created.remove_if_empty()  # under the lock: no other run can be using these files
    finally:
        created.remove_new_directories()
    return summary


async def _run_locked(
    settings: Settings,
    pool: EndpointPool,
    writer: ResultsWriter,
    params: GenerationParams,
    templates: Templates,
    identity: dict[str, Any],
    problems: ProblemSet,
    stats: InferStats,
    warn: Callable[[str], None],
    on_plan: Callable[[RunPlan], None],
    path: Path,
    real: Path,
    plan_args: dict[str, Any],
) -> InferSummary:
    """The part of a run that holds the results file's lock: check the file, plan, ask, compact."""
    if writer.torn_bytes_cut:
        warn(f"{path}: cut off an incomplete last line ({writer.torn_bytes_cut} bytes) left by a crash")
    state = scan(real)
    _check_resumable(path, state, identity, problems)
    run_plan, plan = _plan(**plan_args, path=path, state=state)
    on_plan(run_plan)
    notice = run_plan.fewer_than_held()
    if notice:
        warn(notice)
    write_meta(real, settings, identity, problems, warn)
    stats.to_do = plan.to_ask
    stats.skipped_done = plan.skipped_done
    stats.skipped_exhausted = plan.skipped_exhausted
    stats.started = time.monotonic()
    engine = _Engine(settings, pool, writer, params, templates, identity, stats, warn)
    # Problems are read again from the dataset as the queue takes them: memory holds the ones in flight.
    runs = iter_runs(problems, state, settings.k_responses, settings.max_attempts) if plan.to_ask else iter(())
    try:
        await engine.run(runs, plan.to_ask)
    except* EndpointError as group:
        raise group.exceptions[0] from None
    except* StoreError as group:
        raise group.exceptions[0] from None
    except* DatasetError as group:  # the dataset was edited while the run read it
        raise group.exceptions[0] from None
    elapsed = time.monotonic() - stats.started
    summary = InferSummary(
        output_path=path,
        model=params.model,
        stats=stats,
        elapsed_s=elapsed,
        stopped=engine.stopped,
        n_fallback=not engine.n_supported,
        torn_bytes_cut=writer.torn_bytes_cut,
        max_attempts=settings.max_attempts,
    )
    writer.fsync()
    # Still under the lock: a run started meanwhile must not append to the file being replaced. Only the lines
    # this run appended are read to decide; a file that did not change is neither read again nor rewritten.
    try:
        compact(real, known=state)
    except StoreError as err:  # the uncompacted file is complete and readable; only tidiness is lost
        warn(f"{err.message} ({err.hint})")
    return summary


def _check_resumable(path: Path, state: FileState, identity: dict[str, Any], problems: ProblemSet) -> None:
    """Refuse a file made with other settings, or whose problems the dataset has since changed."""
    mismatch = identity_mismatch(state.first_record, identity)
    if mismatch:
        hint = "rerun with the file's settings to resume, or pass --output-file NEW.jsonl for a new file"
        if not any(known.good for known in state.problems.values()):
            # e.g. every request was refused until a setting was changed: there is nothing to resume
            hint = (
                f"it holds no response yet, only failed requests: remove it (and {path.name}.meta.json) "
                "to start it again with these settings, or pass --output-file NEW.jsonl"
            )
        raise StoreError(f"{path} was made with other settings — {mismatch}", hint=hint)
    changed = changed_ids(problems, state) if state.problems else []
    if changed:
        raise dataset_changed_error(path, problems.fetch(changed[:3]), total=len(changed))


@dataclass(slots=True)
class _CreatedFiles:
    """The files (and directories) a run is about to create, so that a run that wrote no result can take them
    away again: a failed first try must not leave an empty results file, meta file and lock behind."""

    results: Path
    new: list[Path]
    new_directories: list[Path]

    @classmethod
    def before(cls, real: Path) -> _CreatedFiles:
        """Note which of the run's files do not exist yet (call before anything is created)."""
        files = [real, real.with_name(real.name + ".meta.json"), lock_path(real)]
        directories = []
        for ancestor in real.parents:
            if ancestor.exists():
                break
            directories.append(ancestor)  # deepest first
        return cls(results=real, new=[p for p in files if not p.exists()], new_directories=directories)

    def remove_if_empty(self) -> None:
        """If the results file is empty (the run wrote no result, and it held none), remove the files the run
        created: the results file itself only if the run created it (the lock last: the caller still holds it)."""
        try:
            if self.results.stat().st_size != 0:
                self.new_directories = []
                return
        except OSError:
            pass
        for created in self.new:
            with contextlib.suppress(OSError):
                created.unlink()

    def remove_new_directories(self) -> None:
        """Remove the directories the run created, if they are empty (after `remove_if_empty`)."""
        for directory in self.new_directories:
            with contextlib.suppress(OSError):
                directory.rmdir()
