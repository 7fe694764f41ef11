"""Grade whole results files: stream records, grade responses, check math in parallel, write atomically."""

from __future__ import annotations

import itertools
import os
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import CollectError, GradeError, StoreError
from ..fileio import atomic_open
from ..shards import ShardCheck
from ..store import iter_records, loads_line
from . import (
    EXTRACTOR_VERSION,
    GRADER_ERROR,
    OUTCOMES,
    Outcome,
    Task,
    Verdict,
    grader_failure,
    grader_versions,
    task_of,
)
from .math import Found
from .pool import GradePool, Result, default_workers

GRADED_SUFFIX = ".graded.jsonl"
DIRECTORY_OUTPUT = "processed_results"
"""Where a directory's graded files went before they were written beside their inputs (a common `-o` value)."""
_WINDOW = 5_000
"""Records held in memory while their math checks run (order is kept; memory stays bounded)."""


@dataclass
class FileSummary:
    """What grading one file did: outcome counts overall and per category."""

    input: Path
    output: Path
    records: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    torn_line: int | None = None
    symbolic_checks: int = 0
    cache_hits: int = 0
    timeouts: int = 0
    short: int = 0
    """Problems with fewer responses than asked (`k_requested`): a run still going, or stopped early."""
    grader_errors: int = 0
    """Responses the grader failed on (graded `unparsed` with extraction_rule `grader_error`, never wrong)."""

    @property
    def responses(self) -> int:
        """All responses graded."""
        return sum(self.counts.values())

    @property
    def accuracy(self) -> float | None:
        """Correct over all responses (failed requests and unreadable answers count as not correct)."""
        return ratio(self.counts["correct"], self.responses)

    @property
    def answered_accuracy(self) -> float | None:
        """Correct over responses with a final answer (correct + wrong)."""
        return ratio(self.counts["correct"], self.counts["correct"] + self.counts["wrong"])


def ratio(part: int, whole: int) -> float | None:
    """part/whole, or None for an empty whole."""
    return part / whole if whole else None


@dataclass
class FileFailure:
    """A file that could not be graded, with the reason."""

    input: Path
    error: CollectError


# --- paths --------------------------------------------------------------------------------------------------

def is_graded_name(path: Path) -> bool:
    """True for a file name written by `extract` (skipped when a directory is scanned)."""
    return path.name.endswith(GRADED_SUFFIX)


def _first_record(path: Path) -> dict[str, Any] | None:
    """The file's first line as a JSON object, or None (unreadable, not JSON, not an object)."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 24)
        record = loads_line(first)
    except (OSError, orjson.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _already_graded(path: Path) -> bool:
    """True when the file's first record carries `extractor_version` (an output of `extract`, renamed)."""
    record = _first_record(path)
    return record is not None and "extractor_version" in record


def check_shard_overlaps(sources: list[Path]) -> None:
    """Refuse shard files (`collect infer --shard`) of one model that hold the same problem, before any is graded.

    Each file is graded on its own, but the graded copies are read together by `collect report`, which refuses
    such an overlap too: better said before the grading than after it. Only models with two or more shard
    files are read (their problem ids only matter).

    Raises:
        GradeError: two shard files of one model hold the same problem (both files and the problem named).
    """
    by_model: dict[str, list[Path]] = {}
    for path in sources:
        first = _first_record(path)
        if first is not None and first.get("shard") is not None:
            by_model.setdefault(str(first.get("model")), []).append(path)
    check = ShardCheck()
    for files in by_model.values():
        if len(files) < 2:
            continue
        for path in files:
            for record in iter_records(path):
                check.add(str(record.get("model")), str(record.get("unique_id")), record.get("shard"), path)


def default_output(input_file: Path) -> Path:
    """`X.jsonl` → `X.graded.jsonl` beside it."""
    stem = input_file.name[: -len(".jsonl")] if input_file.name.endswith(".jsonl") else input_file.name
    return input_file.with_name(stem + GRADED_SUFFIX)


def plan(input_path: Path, output: Path | str | None) -> list[tuple[Path, Path]]:
    """Pair every input file with its output file.

    One rule without `output`: `X.jsonl` is graded to `X.graded.jsonl` beside it, whether it is given by name
    or found in a directory (a directory contributes its `*.jsonl` files except graded outputs). `output` is a
    file, or a directory to put the `X.graded.jsonl` files in; given as a string ending in `/` it is a
    directory, created if needed.

    Raises:
        GradeError: missing input, an output that would overwrite an input or any existing file that is not a
            graded results file, a directory with no results files.
    """
    into_directory = isinstance(output, str) and output.endswith(("/", os.sep))
    if isinstance(output, str):
        output = Path(output)
    if not input_path.exists():
        raise GradeError(f"input not found: {input_path}", hint="pass --input with a results file or directory")
    if input_path.is_dir():
        candidates = sorted(path for path in input_path.iterdir() if path.is_file() and path.name.endswith(".jsonl"))
        files = [path for path in candidates if not is_graded_name(path) and not _already_graded(path)]
        if not files:
            graded = f" (only {len(candidates)} graded output(s) of `collect extract`)" if candidates else ""
            raise GradeError(
                f"no results files (*.jsonl) to grade in {input_path}{graded}",
                hint="pass a directory of files written by `collect infer`, or one file (a graded file is graded "
                "again when named)",
            )
        if output is None:
            # One rule for a file and a directory alike: X.jsonl → X.graded.jsonl beside it.
            pairs = [(path, default_output(path)) for path in files]
        else:
            out_dir = output
            if out_dir.exists() and not out_dir.is_dir():
                raise GradeError(f"--output {out_dir} is a file, but the input is a directory",
                                 hint="pass a directory as --output")
            if not out_dir.exists() and out_dir.name.endswith(".jsonl"):
                raise GradeError(
                    f"--output {out_dir} names a file, but the input is a directory (one output file per input "
                    "file)",
                    hint="pass a directory as --output, e.g. graded/",
                )
            pairs = [(path, out_dir / default_output(path).name) for path in files]
    else:
        if output is None:
            target = default_output(input_path)
        elif output.is_dir() or into_directory:
            target = output / default_output(input_path).name
        else:
            target = output
        pairs = [(input_path, target)]
    for source, target in pairs:
        if target.resolve() == source.resolve():
            raise GradeError(f"output {target} is the input file", hint="the input is never overwritten; "
                             "pass another --output")
        _check_overwritable(target)
    return pairs


def _check_overwritable(target: Path) -> None:
    """Refuse an output path that holds anything but an earlier output of `extract` (or nothing)."""
    if target.is_dir():
        raise GradeError(f"output {target} is a directory", hint="pass a file name, or the directory itself "
                         "as --output")
    if not target.exists() or target.stat().st_size == 0 or _already_graded(target):
        return
    raise GradeError(
        f"output {target} exists and is not a graded results file; it was left as it is",
        hint="`collect extract` only replaces its own earlier outputs: pass another --output, or move that file",
    )


# --- grading ------------------------------------------------------------------------------------------------

@dataclass
class _Pending:
    record: dict[str, Any]
    task: Task
    slots: list[Verdict | Found | None] = field(default_factory=list)
    waiting: int = 1  # its extraction units, then its symbolic checks


_Unit = tuple[_Pending, list[int]]
"""Some responses of one record (by index), extracted together in a worker."""

_BATCH_RESPONSES = 1_000
"""Responses per extraction batch sent to a worker."""


def _lean(response: Any) -> Any:
    """The fields extraction reads (a failed request's error object becomes a flag); a response that is not an
    object goes as it is (graded as a grader failure)."""
    if not isinstance(response, dict):
        return response
    return {
        "full_response": response.get("full_response"),
        "finish_reason": response.get("finish_reason"),
        "error": None if response.get("error") is None else True,
    }


def grade_file(
    source: Path,
    target: Path,
    *,
    workers: int | None = None,
    timeout: float = 5.0,
    on_record: Callable[[int], None] | None = None,
) -> FileSummary:
    """Grade one results file into `target` (written atomically: temp file, fsync, rename).

    Reads only complete lines (safe on a file `collect infer` is still writing) and merges multi-line
    problems; the input is never modified. Extraction and symbolic math checks run in `workers` processes
    (default: all cores), each response's extraction and each check limited to `timeout` seconds; identical
    (answer, reference) pairs are checked once. Records are written in input order.

    One response the grader fails on (an exception, a time-out, a worker that dies on it) never stops the file:
    it is graded `unparsed` with extraction_rule `grader_error` and counted in `FileSummary.grader_errors`.

    Raises:
        GradeError: the file is not a results file.
        StoreError: the file cannot be read or the output cannot be written.
    """
    _check_kind(source)
    summary = FileSummary(source, target)

    def torn(line_no: int) -> None:
        summary.torn_line = line_no

    cache: dict[tuple[str, str], Result] = {}
    waiters: dict[tuple[str, str], list[tuple[_Pending, int]]] = {}
    batches: dict[int, list[_Unit]] = {}
    window: deque[_Pending] = deque()
    batch_keys = itertools.count()
    pool = GradePool(workers or default_workers(), timeout)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target) as out:

            def flush() -> None:
                while window and window[0].waiting == 0:
                    item = window.popleft()
                    out.write(_dumps(_finish(item, summary)) + b"\n")
                    if on_record is not None:
                        on_record(summary.records)

            def submit(units: list[_Unit]) -> None:
                key = next(batch_keys)
                batches[key] = units
                pool.submit_batch(
                    key, [(item.task, [_lean(item.record["responses"][i]) for i in indices]) for item, indices in units]
                )

            def place(item: _Pending, indices: list[int], slots: list[Verdict | Found]) -> None:
                item.waiting -= 1
                for index, slot in zip(indices, slots, strict=True):
                    item.slots[index] = slot
                    if not isinstance(slot, Found):
                        continue
                    key = (slot.answer, item.task.gold)
                    if key in cache:
                        summary.cache_hits += 1
                        item.slots[index] = _verdict(slot, cache[key])
                        continue
                    if key in waiters:
                        summary.cache_hits += 1
                    else:
                        summary.symbolic_checks += 1
                        waiters[key] = []
                        pool.submit_verify(key, slot.answer, item.task.gold)
                    waiters[key].append((item, index))
                    item.waiting += 1

            def retry(units: list[_Unit]) -> None:
                """A batch whose worker died or ran out of time: split it until the response at fault is alone."""
                if len(units) > 1:
                    for unit in units:
                        submit([unit])
                    return
                item, indices = units[0]
                if len(indices) > 1:
                    item.waiting += len(indices) - 1
                    for index in indices:
                        submit([(item, [index])])
                    return
                place(item, indices, [grader_failure()] * len(indices))

            def settle(results: list[tuple[Hashable, Any]]) -> None:
                for key, result in results:
                    if isinstance(key, int):  # an extraction batch
                        units = batches.pop(key)
                        if result is None:
                            retry(units)
                            continue
                        for (item, indices), slots in zip(units, result, strict=True):
                            place(item, indices, slots)
                        continue
                    assert isinstance(key, tuple)
                    cache[key] = result
                    if result == "timeout":
                        summary.timeouts += 1
                    for item, index in waiters.pop(key, []):
                        found = item.slots[index]
                        assert isinstance(found, Found)
                        item.slots[index] = _verdict(found, result)
                        item.waiting -= 1

            batch: list[_Unit] = []
            batch_size = 0

            def send_batch() -> None:
                nonlocal batch, batch_size
                if batch:
                    submit(batch)
                    batch, batch_size = [], 0

            for number, record in enumerate(iter_records(source, on_torn=torn), start=1):
                item = _Pending(record, task_of(record, where=f"{source}, record {number} "))
                count = len(record["responses"])
                item.slots = [None] * count
                window.append(item)
                batch.append((item, list(range(count))))
                batch_size += count or 1
                if batch_size >= _BATCH_RESPONSES:
                    send_batch()
                if pool.busy:
                    settle(pool.collect(0.0))
                flush()
                while len(window) > _WINDOW or pool.busy > 4 * pool.workers + 64:
                    if not pool.busy:
                        send_batch()
                    settle(pool.collect(None))
                    flush()
            send_batch()
            while window:
                settle(pool.collect(None))
                flush()
            if summary.records == 0:
                state = (f"line {summary.torn_line} is incomplete" if summary.torn_line is not None
                         else "it holds only blank lines")
                raise GradeError(
                    f"{source}: no complete results record ({state}); nothing was written",
                    hint="wait until `collect infer` has finished a problem, or check that this is a results file",
                )
    except OSError as err:
        raise StoreError(
            f"cannot write {target}: {err.strerror}",
            hint="an earlier output there was left as it was; check the output path and free space",
        ) from None
    finally:
        pool.close()
    return summary


def _verdict(found: Found, result: Result) -> Verdict:
    if result == "error":  # the checker raised: not proof of anything either way
        return grader_failure()
    # A check that ran out of time is not proof of equality: graded wrong, and marked so in the response.
    return Verdict(found.answer, "correct" if result is True else "wrong", found.rule, result == "timeout")


def _dumps(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate in a text: written as U+FFFD rather than lost
        return orjson.dumps(_scrub(record))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):  # a lone surrogate becomes U+FFFD; a proper pair stays the character it encodes
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {str(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _finish(item: _Pending, summary: FileSummary) -> dict[str, Any]:
    record = item.record
    responses = []
    category = str(record.get("category") or "(none)")
    counts = summary.by_category.setdefault(category, Counter())
    for index, (response, verdict) in enumerate(zip(record["responses"], item.slots, strict=True)):
        assert isinstance(verdict, Verdict)
        if isinstance(response, dict):
            responses.append({**response, **verdict.fields()})
        else:  # kept as it was, beside the grade, so nothing in the input is lost
            responses.append({"index": index, "invalid_response": response, **verdict.fields()})
        summary.counts[verdict.outcome] += 1
        counts[verdict.outcome] += 1
        if verdict.extraction_rule == GRADER_ERROR:
            summary.grader_errors += 1
    summary.records += 1
    asked = record.get("k_requested")
    if isinstance(asked, int) and not isinstance(asked, bool) and len(responses) < asked:
        summary.short += 1
    return {**record, "responses": responses, "extractor_version": EXTRACTOR_VERSION, "grader": grader_versions()}


def _check_kind(path: Path) -> None:
    """Fail early, with a clear message, on a file that is not a results file."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 24)
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from None
    if not first:
        raise GradeError(f"{path} is empty: no results to grade", hint="run `collect infer` first")
    if not first.strip() or not first.endswith(b"\n"):
        return  # a blank first line (the reader skips it), or one torn line of a run that has just started
    try:
        record = loads_line(first)
    except orjson.JSONDecodeError:
        raise GradeError(
            f"{path} is not a results file (line 1 is not JSON)",
            hint="`collect extract` reads the JSONL files written by `collect infer`",
        ) from None
    if not isinstance(record, dict) or "unique_id" not in record or not isinstance(record.get("responses"), list):
        if isinstance(record, dict) and ({"question", "problem"} & record.keys()):
            raise GradeError(
                f"{path} is a dataset, not a results file: line 1 has a question but no `responses`",
                hint=f"collect responses first: `collect infer --dataset {path}`, then grade the file it writes",
            )
        raise GradeError(
            f"{path} is not a results file: line 1 has no `unique_id` and `responses`",
            hint="`collect extract` reads the JSONL files written by `collect infer` (see docs/records.md)",
        )


# --- auditing a grader upgrade -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Change:
    """A response whose verdict differs between its graded file and the current grader."""

    model: str | None
    unique_id: str
    index: int
    old_outcome: str | None
    old_answer: str | None
    new_outcome: str
    new_answer: str | None


@dataclass
class CheckSummary:
    """What regrading a graded file with the current grader would change."""

    input: Path
    responses: int = 0
    changes: list[Change] = field(default_factory=list)
    old_graders: set[str] = field(default_factory=set)
    """How the file was graded: one description per distinct `grader` (or bare `extractor_version`) found."""
    missing: int = 0
    """Responses of the regraded file that the graded file does not have (a record it lacks)."""


def describe_grader(record: dict[str, Any]) -> str:
    """One line naming what graded a record: `extractor 1.5, math-verify 0.9.0, ...` (older files: the version)."""
    grader = record.get("grader")
    if isinstance(grader, dict):
        return ", ".join(f"{name} {value}" for name, value in grader.items())
    version = record.get("extractor_version")
    return f"extractor {version}" if version is not None else "ungraded"


def check_file(
    source: Path, *, workers: int | None = None, timeout: float = 5.0, on_record: Callable[[int], None] | None = None
) -> CheckSummary:
    """Regrade a graded file with the current grader and list the responses whose verdict would change.

    The file is left as it is: the regraded copy goes to a temporary directory and is deleted. A verdict is its
    outcome and its extracted answer.

    Raises:
        GradeError: the file is not a graded file.
        StoreError: the file cannot be read.
    """
    import tempfile

    _check_kind(source)
    if not _already_graded(source):
        raise GradeError(
            f"{source} is not a graded file (its first record has no `extractor_version`)",
            hint="--check audits the output of `collect extract`; grade the file first",
        )
    summary = CheckSummary(source)
    old: dict[tuple[str | None, str, int], tuple[str | None, str | None]] = {}
    for record in iter_records(source):
        summary.old_graders.add(describe_grader(record))
        for index, response in enumerate(record.get("responses") or []):
            if isinstance(response, dict):
                old[(record.get("model"), str(record.get("unique_id")), index)] = (
                    response.get("outcome"), response.get("extracted_answer"),
                )
    with tempfile.TemporaryDirectory(prefix="collect-check-") as tmp:
        target = Path(tmp) / "regraded.jsonl"
        grade_file(source, target, workers=workers, timeout=timeout, on_record=on_record)
        for record in iter_records(target):
            model, uid = record.get("model"), str(record.get("unique_id"))
            for index, response in enumerate(record["responses"]):
                summary.responses += 1
                key = (model, uid, index)
                if key not in old:
                    summary.missing += 1
                    continue
                before = old[key]
                after = (response["outcome"], response["extracted_answer"])
                if before != after:
                    summary.changes.append(Change(model, uid, index, *before, *after))
    return summary


def grade_path(
    input_path: Path,
    output: Path | str | None = None,
    *,
    workers: int | None = None,
    timeout: float = 5.0,
    on_file: Callable[[Path, Path], None] | None = None,
    on_record: Callable[[int], None] | None = None,
) -> Iterator[FileSummary | FileFailure]:
    """Grade a results file, or every results file of a directory, yielding one summary (or failure) per file.

    `on_file(source, target)` is called before each file, `on_record(n)` after each record written.

    Raises:
        GradeError: when the paths themselves are wrong (see `plan`), or shard files of one model overlap (see
            `check_shard_overlaps`); a bad file in a directory is yielded as a FileFailure and the other files
            are still graded.
    """
    pairs = plan(input_path, output)
    if len(pairs) > 1:
        check_shard_overlaps([source for source, _ in pairs])
    for source, target in pairs:
        if on_file is not None:
            on_file(source, target)
        try:
            yield grade_file(source, target, workers=workers, timeout=timeout, on_record=on_record)
        except CollectError as error:
            if len(pairs) == 1:
                raise
            yield FileFailure(source, error)


__all__ = [
    "DIRECTORY_OUTPUT",
    "GRADED_SUFFIX",
    "OUTCOMES",
    "Change",
    "CheckSummary",
    "FileFailure",
    "FileSummary",
    "Outcome",
    "check_file",
    "check_shard_overlaps",
    "default_output",
    "describe_grader",
    "grade_file",
    "grade_path",
    "plan",
]
