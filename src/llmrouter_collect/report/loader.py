"""Read graded results files, streaming, into compact per-model, per-group and per-problem counts."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from ..errors import ConfigError, GradeError
from ..shards import ShardCheck
from ..store import iter_records, loads_line
from .metrics import majority_vote

OUTCOMES = ("correct", "wrong", "unparsed", "truncated", "error")
"""Every outcome `collect extract` gives a response, in display order."""

GROUP_FIELDS = ("category", "dataset")
"""Record fields a report can be broken down by."""


class RecordSink(Protocol):
    """Receives every graded record as it is read (e.g. the long-table exporter)."""

    def add_record(self, model: str, record: dict[str, Any]) -> None:
        """Take one merged, validated record of `model`."""


@dataclass(slots=True)
class GroupStats:
    """Counts for one model over one group of problems (a category, or everything)."""

    problems: int = 0
    responses: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    clusters: Counter[tuple[int, int]] = field(default_factory=Counter)
    """(samples n, correct c) → number of problems: enough for accuracy, its interval and every pass@k."""
    majority: float = 0.0
    """Sum over problems of the maj@k score (fractional on ties)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    with_usage: int = 0
    """Responses that report token counts (a failed request has none): the divisor of the token means."""
    latencies: array[float] = field(default_factory=lambda: array("d"))
    """Seconds per answered response (failed requests excluded)."""

    def merge(self, other: GroupStats) -> None:
        """Add another group's counts into this one."""
        self.problems += other.problems
        self.responses += other.responses
        self.outcomes.update(other.outcomes)
        self.clusters.update(other.clusters)
        self.majority += other.majority
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.with_usage += other.with_usage
        self.latencies.extend(other.latencies)


@dataclass(slots=True)
class ProblemResult:
    """One model's result on one problem, without any text but its single winning wrong answer."""

    samples: int
    correct: int
    answered: int
    """Samples with a final answer (correct or wrong)."""
    errors: int
    """Samples whose request failed."""
    prompt_tokens: int
    completion_tokens: int
    with_usage: int
    """Samples that report token counts (failed requests have none)."""
    majority: float
    """maj@k score of this problem (1, 0, or 1/m on an m-way tie that includes the correct answer)."""
    majority_wrong: str | None
    """The wrong answer that wins the vote outright, if one does."""


@dataclass(slots=True)
class ProblemInfo:
    """What the report keeps about a problem (its text goes to the exporter's spool, not here)."""

    category: str
    dataset: str
    is_mcq: bool


@dataclass(slots=True)
class ModelData:
    """Everything read for one model."""

    name: str
    files: list[Path] = field(default_factory=list)
    groups: dict[str, GroupStats] = field(default_factory=dict)
    problems: dict[str, ProblemResult] = field(default_factory=dict)
    extractor_versions: set[str] = field(default_factory=set)
    generation: dict[str, Any] | None = None

    def overall(self) -> GroupStats:
        """All groups merged."""
        total = GroupStats()
        for stats in self.groups.values():
            total.merge(stats)
        return total

    @property
    def max_samples(self) -> int:
        """The largest number of samples any problem has (the k of pass@k)."""
        return max((result.samples for result in self.problems.values()), default=0)


@dataclass(slots=True)
class SourceFile:
    """What the report did with one file it was given or found (`collect report --list`)."""

    path: Path
    status: str
    """`read`, or `skipped: <why>`."""
    models: Counter[str] = field(default_factory=Counter)
    """Problems read per model."""
    shadowed: int = 0
    """Problems left out because a newer file has the same model and problem."""
    newer: set[Path] = field(default_factory=set)
    """The files whose records won over this file's."""


@dataclass(slots=True)
class Collection:
    """The models read from a set of graded files, and the problems they answered."""

    models: dict[str, ModelData] = field(default_factory=dict)
    problems: dict[str, ProblemInfo] = field(default_factory=dict)
    group_by: str = "category"
    warnings: list[str] = field(default_factory=list)
    conflicts: int = 0
    """Records whose problem has another category or dataset in a record read earlier."""
    without_responses: int = 0
    """Records with an empty `responses` list (left out of every count, and reported)."""
    graders: set[str] = field(default_factory=set)
    """What graded the records: each distinct `grader` (extractor and math-verify/sympy/LaTeX-parser versions)."""
    sources: list[SourceFile] = field(default_factory=list)
    """Every file looked at, in reading order, and what was taken from it."""
    qualified: bool = False
    """Category groups are named `dataset/category`: the files hold several datasets, whose categories may
    share a name (MATH-500's `Algebra`, another benchmark's `algebra` or `math`)."""

    def group_of(self, info: ProblemInfo) -> str:
        """The group a problem is counted in (its category, dataset-qualified when needed, or its dataset)."""
        if self.group_by == "dataset":
            return info.dataset
        return _qualified(info.dataset, info.category) if self.qualified else info.category


def find_files(paths: Sequence[Path]) -> list[tuple[Path, bool]]:
    """Expand the given files and directories into (file, given_explicitly) pairs.

    A directory contributes its `*.jsonl` files (not recursive), sorted by name.

    Raises:
        GradeError: a path that does not exist, or a directory with no .jsonl file.
    """
    found: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
            if not files:
                raise GradeError(
                    f"{path}: no .jsonl files in this directory",
                    hint="pass graded results files (from `collect extract`) or the directory holding them",
                )
            found.extend((file, False) for file in files)
        elif path.is_file():
            found.append((path, True))
        else:
            raise GradeError(f"{path}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for file, explicit in found:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((file, explicit))
    return unique


def newest_first(files: list[tuple[Path, bool]]) -> list[tuple[Path, bool]]:
    """Order files so that, among files whose first record names the same model, the most recently modified
    is read first (it wins a problem both hold); every other file keeps its place."""
    slots: dict[str, list[int]] = {}
    for index, (path, _) in enumerate(files):
        slots.setdefault(_first_model(path) or f"file:{index}", []).append(index)
    ordered = list(files)
    for indexes in slots.values():
        if len(indexes) > 1:
            group = sorted((files[i] for i in indexes), key=lambda item: -_mtime(item[0]))
            for i, item in zip(indexes, group, strict=True):
                ordered[i] = item
    return ordered


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _first_model(path: Path) -> str | None:
    """The `model` of a file's first line (files are written one model per run), or None."""
    try:
        with path.open("rb") as handle:
            record = loads_line(handle.readline(1 << 24))
    except (OSError, orjson.JSONDecodeError):
        return None
    model = record.get("model") if isinstance(record, dict) else None
    return model if isinstance(model, str) and model else None


def load(
    paths: Sequence[Path],
    *,
    group_by: str = "category",
    sinks: Iterable[RecordSink] = (),
    warn: Callable[[str], None] | None = None,
) -> Collection:
    """Read graded results files (or directories of them), streaming, and count what a report needs.

    Records are grouped by their `model` field, so one file may hold several models and one model may span
    several files. Response texts are never kept: each record is reduced to counts as soon as it is read.

    Args:
        paths: graded results files, or directories whose `*.jsonl` files are read.
        group_by: the record field tables are broken down by (`category` or `dataset`).
        sinks: receivers of every record (exporters), called while reading.
        warn: called with one line per recoverable problem (skipped file, incomplete last line).

    Raises:
        GradeError: a file given by name that is not graded, a record without a model or with an unknown
            outcome, or nothing graded at all; the same model and problem in two shard files (`collect infer
            --shard`: they must not overlap). Otherwise the same model and problem in two files is not an error:
            the most recently modified file wins, with a warning naming both. Shard files of a model that miss a
            shard get a warning naming it.
        ConfigError: an unknown `group_by`.
    """
    if group_by not in GROUP_FIELDS:
        raise ConfigError(f"invalid --by {group_by!r}", hint=f"use one of: {', '.join(GROUP_FIELDS)}")
    collection = Collection(group_by=group_by)

    def note(message: str) -> None:
        collection.warnings.append(message)
        if warn is not None:
            warn(message)

    sinks = list(sinks)
    origin: dict[tuple[str, str], SourceFile] = {}
    shards = ShardCheck()
    for path, explicit in newest_first(find_files(paths)):
        _load_file(path, explicit, collection, sinks, origin, shards, note)
    for warning in shards.missing():
        note(warning)
    for source in collection.sources:
        if source.shadowed:
            newer = ", ".join(str(path) for path in sorted(source.newer))
            note(
                f"{source.shadowed} problem(s) of {source.path} are also in the newer {newer} (same model): "
                f"the newer file's responses are used and these are left out. To report {source.path} instead, "
                "move the newer file out of the directory; `collect report --list` shows what is read"
            )
    _name_groups(collection)
    if collection.conflicts:
        note(
            f"{collection.conflicts} records give a problem another category or dataset than an earlier file; "
            "the router view and exports use the first one read"
        )
    versions = {name: sorted(data.extractor_versions) for name, data in sorted(collection.models.items())}
    if len({v for found in versions.values() for v in found}) > 1:
        listed = "; ".join(f"{name}: {', '.join(found)}" for name, found in versions.items() if found)
        note(
            f"the files were graded by different extractor versions ({listed}); "
            "rerun `collect extract` on the older ones so every response is graded by the same rules"
        )
    elif len(collection.graders) > 1:
        note(
            "the files were graded with different grading packages (" + "; ".join(sorted(collection.graders))
            + "); rerun `collect extract` on all of them with one installation so verdicts are comparable"
        )
    if collection.without_responses:
        note(
            f"{collection.without_responses} problem record(s) have no responses (not asked yet?); "
            "they are left out of every count"
        )
    if not collection.models:
        raise GradeError(
            "no graded records found in " + ", ".join(str(path) for path in paths),
            hint="run `collect extract -i RESULTS.jsonl` first, then report on its output",
        )
    return collection


def _qualified(dataset: str, category: str) -> str:
    """`math500/Algebra`; a `/` in the dataset name becomes `_`, so the first `/` always ends the dataset."""
    return f"{dataset.replace('/', '_')}/{category}"


def _name_groups(collection: Collection) -> None:
    """Groups are counted under `dataset/category` while reading; with a single dataset the prefix only adds
    noise, so it is dropped (names stay unique: one dataset, one prefix)."""
    if collection.group_by != "category":
        return
    # from the groups themselves: a record that gives a problem another dataset than an earlier file (a
    # conflict) must not merge two groups of one model when the prefixes go
    datasets = {key.split("/", 1)[0] for data in collection.models.values() for key in data.groups}
    datasets |= {_qualified(info.dataset, "").split("/", 1)[0] for info in collection.problems.values()}
    collection.qualified = len(datasets) > 1
    if collection.qualified:
        return
    for data in collection.models.values():
        data.groups = {key.split("/", 1)[1]: stats for key, stats in data.groups.items()}


def _load_file(
    path: Path,
    explicit: bool,
    collection: Collection,
    sinks: list[RecordSink],
    origin: dict[tuple[str, str], SourceFile],
    shards: ShardCheck,
    note: Callable[[str], None],
) -> None:
    source = SourceFile(path=path, status="read")
    collection.sources.append(source)
    problem = _not_results(path)
    if problem is not None:
        if explicit:
            raise GradeError(f"{path} is not a graded results file: {problem}", hint=_RESULTS_HINT)
        source.status = f"skipped: not a results file ({problem})"
        note(f"skipped {path}: not a results file ({problem})")
        return
    torn: list[int] = []
    first = True
    records = 0
    unnamed: str | None = None
    for record in iter_records(path, on_torn=torn.append):
        graded = _check_graded(path, record)
        if first:
            first = False
            if not graded:
                if explicit:
                    raise _not_graded(path)
                graded_copy = path.with_name(f"{_model_from_name(path)}.graded.jsonl")
                if graded_copy.is_file():
                    # the layout `collect extract` writes: nothing to warn about
                    source.status = f"skipped: not graded; its graded copy {graded_copy.name} is read"
                else:
                    source.status = "skipped: not graded"
                    note(f"skipped {path}: not a graded results file (run `collect extract -i {path}` first)")
                return
        elif not graded:
            raise GradeError(
                f"{path}, problem {record['unique_id']}: responses have no `outcome` (not graded)",
                hint=f"the file mixes graded and ungraded records; rerun `collect extract -i {path}`",
            )
        records += 1
        model = record.get("model")
        if records == 1 and not (isinstance(model, str) and model):
            # An older results format names no model: the file stands for one model, named after the file.
            unnamed = _model_from_name(path)
            note(f"{path} names no model (an older results format); its records are reported as model {unnamed!r}")
        if unnamed is not None and model is None:
            model = unnamed
        if not isinstance(model, str) or not model:
            raise GradeError(
                f"{path}, problem {record['unique_id']}: no `model` field",
                hint="records written by `collect infer` name their model; was this file edited?",
            )
        key = (model, str(record["unique_id"]))
        if record.get("shard") is not None:  # shard files of one model are one run: an overlap is refused
            shards.add(model, key[1], record["shard"], path)
        winner = origin.get(key)
        if winner is not None:
            source.shadowed += 1
            source.newer.add(winner.path)
            continue
        origin[key] = source
        source.models[model] += 1
        _add_record(collection, model, path, record)
        for sink in sinks:
            sink.add_record(model, record)
    if torn:
        note(f"{path}: the last line is incomplete (a run still writing?); it was left out")
    if records == 0 and first:
        source.status = "skipped: empty"
        note(f"skipped {path}: empty file")


_RESULTS_HINT = "`collect report` reads the graded files written by `collect extract` (see docs/records.md)"


def _not_results(path: Path) -> str | None:
    """Why the file's first line is not a results record (None when it is one, or the file is empty/torn)."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 24)
    except OSError:
        return None  # the reader reports it
    if not first.strip() or not first.endswith(b"\n"):
        return None
    try:
        record = loads_line(first)
    except orjson.JSONDecodeError:
        return "line 1 is not JSON"
    if not isinstance(record, dict):
        return "line 1 is not a JSON object"
    if isinstance(record.get("responses"), list) and "unique_id" in record:
        return None
    if "split" in record and "answer_correct" in record:
        return "it is a table written by `collect report --export`"
    if {"question", "problem"} & record.keys():
        return "it is a dataset: run `collect infer` and `collect extract` on it first"
    return "line 1 has no `unique_id` and `responses`"


def _model_from_name(path: Path) -> str:
    """`runs/gemma-3-4b_MATH_500.graded.jsonl` → `gemma-3-4b_MATH_500`."""
    name = path.name
    for suffix in (".graded.jsonl", ".jsonl"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return path.stem


def _not_graded(path: Path) -> GradeError:
    return GradeError(
        f"{path} is not a graded results file (its responses have no `outcome`)",
        hint=f"run `collect extract -i {path}` first, then report on the file it writes",
    )


def _check_graded(path: Path, record: dict[str, Any]) -> bool:
    responses = record.get("responses")
    if not isinstance(responses, list):
        raise GradeError(
            f"{path}, problem {record['unique_id']}: no `responses` list; this is not a results file",
            hint="pass graded results files written by `collect extract`",
        )
    if not responses:
        return True
    graded = ["outcome" in response for response in responses]
    if all(graded):
        for response in responses:
            if response["outcome"] not in OUTCOMES:
                raise GradeError(
                    f"{path}, problem {record['unique_id']}, response {response.get('index')}: "
                    f"unknown outcome {response['outcome']!r}",
                    hint=f"outcomes are {', '.join(OUTCOMES)}; rerun `collect extract` on the inference file",
                )
        return True
    if any(graded):
        raise GradeError(
            f"{path}, problem {record['unique_id']}: some responses have no `outcome`",
            hint=f"rerun `collect extract -i {path}`",
        )
    return False


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _has_usage(usage: Any) -> bool:
    """True when a response's `usage` carries a prompt or completion token count."""
    return isinstance(usage, dict) and any(
        isinstance(usage.get(key), int | float) and not isinstance(usage.get(key), bool)
        for key in ("prompt_tokens", "completion_tokens")
    )


def _add_record(collection: Collection, model: str, path: Path, record: dict[str, Any]) -> None:
    data = collection.models.get(model)
    if data is None:
        data = collection.models[model] = ModelData(name=model, generation=record.get("generation"))
    if not data.files or data.files[-1] != path:
        data.files.append(path)
    version = record.get("extractor_version")
    if isinstance(version, str):
        data.extractor_versions.add(version)
    grader = record.get("grader")
    if isinstance(grader, dict):
        collection.graders.add(", ".join(f"{name} {value}" for name, value in grader.items()))
    uid = str(record["unique_id"])
    responses: list[dict[str, Any]] = record["responses"]
    if not responses:
        collection.without_responses += 1
        return
    category = str(record.get("category") or "(none)")
    dataset = str(record.get("dataset") or "(none)")
    is_mcq = bool(record.get("is_mcq"))
    known = collection.problems.get(uid)
    if known is None:
        collection.problems[uid] = ProblemInfo(category=category, dataset=dataset, is_mcq=is_mcq)
    elif known.category != category or known.dataset != dataset:
        collection.conflicts += 1
    # `dataset/category` until every file is read (see _name_groups)
    group = _qualified(dataset, category) if collection.group_by == "category" else dataset
    stats = data.groups.get(group)
    if stats is None:
        stats = data.groups[group] = GroupStats()

    correct = answered = errors = prompt = completion = reasoning = with_usage = 0
    for response in responses:
        outcome = response["outcome"]
        stats.outcomes[outcome] += 1
        if outcome == "correct":
            correct += 1
        if outcome in ("correct", "wrong"):
            answered += 1
        if outcome == "error":
            errors += 1
        else:
            latency = response.get("latency_s")
            if isinstance(latency, int | float) and not isinstance(latency, bool):
                stats.latencies.append(float(latency))
        usage = response.get("usage") or {}
        if _has_usage(usage):
            with_usage += 1
        prompt += _int(usage.get("prompt_tokens"))
        completion += _int(usage.get("completion_tokens"))
        reasoning += _int(usage.get("reasoning_tokens"))
    samples = len(responses)
    score, wrong = majority_vote(
        ((response.get("extracted_answer"), response["outcome"] == "correct") for response in responses),
        is_mcq=is_mcq,
    )
    stats.problems += 1
    stats.responses += samples
    stats.clusters[(samples, correct)] += 1
    stats.majority += score
    stats.prompt_tokens += prompt
    stats.completion_tokens += completion
    stats.reasoning_tokens += reasoning
    stats.with_usage += with_usage
    data.problems[uid] = ProblemResult(
        samples=samples,
        correct=correct,
        answered=answered,
        errors=errors,
        prompt_tokens=prompt,
        completion_tokens=completion,
        with_usage=with_usage,
        majority=score,
        majority_wrong=wrong,
    )
