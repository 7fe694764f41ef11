"""The results file: append-only JSONL, crash-safe writes, streaming reads, per-problem merge and compaction.

While a run goes on, every finished request appends one line (a fragment of its problem's record); a problem
may then have several lines (top-ups, retries, n>1 fallbacks). Readers merge them (`iter_records`). At the end
of a run `compact` rewrites the file atomically to exactly one line per problem. Lines are written with a
single `os.write` each, so `kill -9` loses only requests in flight; a torn last line (power loss, disk full)
is skipped by readers and cut off by the next writer.

A results path that is a symlink is followed: the lock, the appends and the compaction all go to the file it
points to, and the link stays a link.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import StoreError
from .fileio import atomic_open, real_path
from .records import PROBLEM_FIELDS, is_good, merge_records, problem_signature

_READ_CHUNK = 1 << 20


WRITABLE_HINT = "pass --output-file (or --output-dir) somewhere writable"
"""How to get past an output location that cannot be written."""

_EDITED_HINT = "the file was edited or damaged; fix or delete that line (or pass --output-file NEW.jsonl)"


@dataclass(slots=True)
class ProblemState:
    """What a results file says about one problem, for planning a resumed run.

    `signature` is a small fingerprint of the problem's fields (question, choices, answers, ...) as first
    written (see records.problem_signature); `mixed` says that later lines of the problem disagree with it.
    """

    good: int = 0
    errors: int = 0
    attempts: int = 0
    k_requested: int = 0
    lines: int = 0
    signature: tuple[int, bytes] | None = None
    mixed: bool = False


@dataclass(slots=True)
class FileState:
    """A summary of a whole results file: per-problem states, and the run fields of its first record."""

    problems: dict[str, ProblemState] = field(default_factory=dict)
    first_record: dict[str, Any] | None = None
    size: int = 0
    """Bytes read: the offset just after the last complete line (where the next run's lines begin)."""
    lines: int = 0
    """Line number of the last line read (blank lines count)."""

    @property
    def one_line_per_problem(self) -> bool:
        """True when every problem read has exactly one line: nothing in the part read needs compaction."""
        return all(problem.lines == 1 for problem in self.problems.values())


def iter_lines(
    path: Path,
    *,
    on_torn: Callable[[int], None] | None = None,
    start: int = 0,
    start_line: int = 0,
) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Yield (line_no, offset, length, record) for each complete line of a results file, streaming.

    A last line without its newline (a write cut short, or a run still writing) is not yielded: `on_torn`
    gets its line number. A bad line elsewhere raises StoreError naming the file and line. `start` (an offset
    just after a newline) and `start_line` (the number of lines before it) read only the rest of the file.
    """
    handle = _open(path)
    if handle is None:
        return
    with handle:
        if start:
            handle.seek(start)
        yield from _iter_handle(handle, path, on_torn, start, start_line)


def _open(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from None


def _iter_handle(
    handle: BinaryIO, path: Path, on_torn: Callable[[int], None] | None, offset: int = 0, line_no: int = 0
) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    pending = b""
    while True:
        chunk = handle.read(_READ_CHUNK)
        if not chunk:
            break
        data = pending + chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            line_no += 1
            raw = data[start:end]
            if raw.strip():
                yield line_no, offset, end - start, _parse(path, line_no, raw)
            offset += end - start + 1
            start = end + 1
        pending = data[start:]
    if pending.strip() and on_torn is not None:
        on_torn(line_no + 1)


def loads_line(raw: bytes) -> Any:
    """Parse one JSON line. A lone surrogate escape (`"\\ud800"`, as Python's json module writes unpaired
    UTF-16 halves) is valid JSON that orjson refuses: such a line is read with the json module and each lone
    surrogate becomes U+FFFD, so the record can be graded and written back as UTF-8.

    Raises:
        ValueError (orjson.JSONDecodeError): not valid JSON.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if b"\\u" not in raw:
            raise
        try:
            value = json.loads(raw)
        except ValueError:
            raise orjson.JSONDecodeError("not valid JSON", raw.decode("utf-8", "replace"), 0) from None
        return _without_surrogates(value)


_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins valid pairs: what is left is a lone half


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    return value


def _parse(path: Path, line_no: int, raw: bytes) -> dict[str, Any]:
    try:
        record = loads_line(raw)
    except orjson.JSONDecodeError:
        raise StoreError(
            f"{path}, line {line_no}: not valid JSON",
            hint="the file was edited or damaged in the middle; fix or delete that line",
        ) from None
    if not isinstance(record, dict) or "unique_id" not in record:
        raise StoreError(
            f"{path}, line {line_no}: not a results record (no unique_id)",
            hint="is this a results file written by `collect infer`?",
        )
    problem = _type_problem(record)
    if problem is not None:
        raise StoreError(f"{path}, line {line_no}: {problem}", hint=_EDITED_HINT)
    return record


def _type_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with the types of a record's fields that the store relies on, or None."""
    uid = record["unique_id"]
    if not isinstance(uid, str | int | float) or isinstance(uid, bool):
        return f"`unique_id` is {_show(uid)}, not a string or a number"
    for name in ("attempts", "k_requested"):
        value = record.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"`{name}` is {_show(value)}, not a whole number"
    model = record.get("model")
    if model is not None and not isinstance(model, str):
        return f"`model` is {_show(model)}, not a string"
    responses = record.get("responses", [])
    if not isinstance(responses, list):
        return f"`responses` is {_show(responses)}, not a list"
    for index, response in enumerate(responses):
        if not isinstance(response, dict):
            return f"`responses[{index}]` is {_show(response)}, not an object"
    return None


def _show(value: Any) -> str:
    """A value and its JSON type, short, for an error message."""
    kinds = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list",
             dict: "an object", type(None): "null"}  # fmt: skip
    text = orjson.dumps(value).decode()
    if len(text) > 40:
        text = text[:37] + "..."
    kind = kinds.get(type(value), type(value).__name__)
    return "null" if value is None else f"{kind} ({text})"


def scan(path: Path, *, on_torn: Callable[[int], None] | None = None) -> FileState:
    """Read a results file once and summarise each problem (good responses, errors, attempts, a fingerprint
    of its fields); memory holds a few numbers per problem, never texts."""
    state = FileState()
    for line_no, offset, length, record in iter_lines(path, on_torn=on_torn):
        state.size = offset + length + 1
        state.lines = line_no
        if state.first_record is None:
            state.first_record = {key: value for key, value in record.items() if key != "responses"}
        problem = state.problems.setdefault(str(record["unique_id"]), ProblemState())
        problem.lines += 1
        problem.attempts = max(problem.attempts, record.get("attempts", 0))
        problem.k_requested = max(problem.k_requested, record.get("k_requested", 0))
        signature = problem_signature(record)
        if problem.signature is None:
            problem.signature = signature
        elif signature != problem.signature:
            problem.mixed = True
        for response in record.get("responses", []):
            if is_good(response):
                problem.good += 1
            else:
                problem.errors += 1
    return state


def problem_differences(path: Path, expected: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """For the problems in `expected` (unique_id → the problem's record fields, from the dataset), the names
    of the fields where some line of the file holds another value (streaming; for an error message)."""
    found: dict[str, list[str]] = {}
    for _, _, _, record in iter_lines(path):
        uid = str(record["unique_id"])
        wanted = expected.get(uid)
        if wanted is None:
            continue
        names = found.setdefault(uid, [])
        for name in PROBLEM_FIELDS[1:]:
            if name in record and record[name] != wanted.get(name) and name not in names:
                names.append(name)
    return {uid: found.get(uid, []) for uid in expected}


def iter_records(path: Path, *, on_torn: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one merged record per problem, in the order problems first appear; memory holds only offsets.

    Safe on a file that `collect infer` is still appending to: only complete lines are read.
    """
    handle = _open(path)
    if handle is None:
        return
    # One handle for both passes: if a finishing run replaces the file (compaction), the offsets stay valid.
    with handle:
        # Keyed by model too, so a file that concatenates several models' results never mixes them.
        index: dict[tuple[str | None, str], list[tuple[int, int]]] = {}
        for _, offset, length, record in _iter_handle(handle, path, on_torn):
            index.setdefault((record.get("model"), str(record["unique_id"])), []).append((offset, length))
        for spans in index.values():
            fragments = []
            for offset, length in spans:
                handle.seek(offset)
                fragments.append(loads_line(handle.read(length)))
            single = len(fragments) == 1 and _is_compact(fragments[0])
            yield fragments[0] if single else merge_records(fragments)


def _is_compact(record: dict[str, Any]) -> bool:
    responses = record.get("responses")
    if not isinstance(responses, list):
        return True  # nothing to merge; the reader of the record reports what is wrong with it
    return all(isinstance(r, dict) and r.get("index") == i for i, r in enumerate(responses))


def compact(path: Path, *, known: FileState | None = None) -> bool:
    """Rewrite the file with exactly one merged line per problem (atomic, through fileio: temp file, fsync,
    rename; a symlink stays a link and the file it points to is rewritten).

    `known` is what `scan` read of the file before lines were appended (under the same lock): then only the
    lines after `known.size` are read to decide, and a file whose known part has one line per problem and
    whose new lines each start a problem of their own is left alone without reading the rest of it.

    Returns True if the file was rewritten, False if it already had one line per problem (a file that is
    left alone is neither read whole nor written). On failure (disk full) the original file is left as it was.
    """
    real = real_path(path)
    if _needs_compaction(real, known):
        _rewrite_merged(path, real)
        return True
    return False


def _needs_compaction(real: Path, known: FileState | None) -> bool:
    """Whether some problem has more than one line (or the last line is torn), reading as little as possible."""
    torn: list[int] = []
    if known is not None and known.one_line_per_problem:
        new_keys: set[str] = set()
        for _, _, _, record in iter_lines(real, on_torn=torn.append, start=known.size, start_line=known.lines):
            uid = str(record["unique_id"])
            if uid in known.problems or uid in new_keys:
                return True  # a top-up of a problem the file held, or a second line of a new one
            new_keys.add(uid)
        return bool(torn)
    counts: dict[tuple[str | None, str], int] = {}
    for _, _, _, record in iter_lines(real, on_torn=torn.append):
        key = (record.get("model"), str(record["unique_id"]))
        counts[key] = counts.get(key, 0) + 1
    return bool(torn) or any(count != 1 for count in counts.values())


def _rewrite_merged(path: Path, real: Path) -> None:
    try:
        with atomic_open(real) as out:
            for record in iter_records(real):
                out.write(orjson.dumps(record) + b"\n")
    except OSError as err:
        raise StoreError(
            f"could not compact {path}: {err.strerror}",
            hint="the results are safe in the uncompacted file; free disk space and rerun to compact",
        ) from None


class ResultsWriter:
    """Appends records to a results file: one os.write per line, fsync every `sync_every` lines (never, when
    None: the caller then calls `fsync`, which may run in another thread).

    Holds an exclusive lock (`<file>.lock` beside the real file, flock) for its lifetime, so a second run on
    the same file (or on a symlink to it) refuses to start; the lock goes with the process, even after kill -9.
    """

    def __init__(self, path: Path, *, sync_every: int | None = 10) -> None:
        self.path = path
        self.real = real_path(path)
        self.sync_every = max(1, sync_every) if sync_every is not None else None
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._unsynced = 0
        self.torn_bytes_cut = 0

    def open(self) -> ResultsWriter:
        """Lock the file, cut off a torn last line, and open it for appending.

        Raises:
            StoreError: the location cannot be written (naming it), or another run holds the lock.
        """
        ensure_writable_location(self.path)
        self._lock_fd = acquire_lock(self.real)
        try:
            self._fd = os.open(self.real, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self.torn_bytes_cut = _cut_torn_tail(self._fd, self.real)
        except OSError as err:
            self.close()
            raise StoreError(f"cannot open {self.path} for writing: {err.strerror}", hint=WRITABLE_HINT) from None
        return self

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line; it survives a crash of this process once this returns."""
        if self._fd is None:
            raise RuntimeError("writer is not open")
        data = orjson.dumps(record) + b"\n"
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a short write: finish it (regular files rarely do this)
                written += os.write(self._fd, data[written:])
        except OSError as err:
            raise _write_error(self.path, err) from None
        self._unsynced += 1
        if self.sync_every is not None and self._unsynced >= self.sync_every:
            self.sync()

    def sync(self) -> None:
        """Force written lines to the disk (survives power loss)."""
        if self._fd is not None and self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as err:
                raise _write_error(self.path, err) from None
            self._unsynced = 0

    def fsync(self) -> None:
        """Force everything written so far to the disk; safe to call from a worker thread while appends go on."""
        fd = self._fd
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError as err:
                raise _write_error(self.path, err) from None

    def close(self) -> None:
        """Sync, close the file and release the lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            release_lock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ResultsWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_error(path: Path, err: OSError) -> StoreError:
    if err.errno == errno.ENOSPC:
        return StoreError(
            f"disk full while writing {path}",
            hint="results written so far are safe; free some space and rerun the same command to resume",
        )
    return StoreError(f"cannot write {path}: {err.strerror}", hint="rerun the same command to resume")


def _cut_torn_tail(fd: int, path: Path) -> int:
    """If the file does not end with a newline, truncate it after its last complete line; return bytes cut."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    with path.open("rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        # Search backwards for the last newline.
        position = size
        block = 1 << 16
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            data = handle.read(position - start)
            cut = data.rfind(b"\n")
            if cut >= 0:
                os.ftruncate(fd, start + cut + 1)
                return size - (start + cut + 1)
            position = start
    os.ftruncate(fd, 0)
    return size


def ensure_writable_location(path: Path) -> None:
    """Create the directory of a results file (the real one, behind any symlink) or raise StoreError naming
    the path: a parent that is a file, a read-only or foreign directory, a path that is a directory."""
    real = real_path(path)
    shown = str(path) if real == path else f"{path} (→ {real})"
    if real.is_dir():
        raise StoreError(f"the output file {shown} is a directory", hint="pass --output-file with a file name")
    for ancestor in real.parents:  # the nearest one that exists must be a directory
        if ancestor.exists():
            if not ancestor.is_dir():
                raise StoreError(f"cannot write {shown}: {ancestor} is a file, not a directory", hint=WRITABLE_HINT)
            break
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(
            f"cannot create the directory {real.parent} for {shown}: {err.strerror}", hint=WRITABLE_HINT
        ) from None
    if not real.parent.is_dir():  # mkdir(exist_ok=True) accepts an existing name only if it is a directory
        raise StoreError(f"cannot write {shown}: {real.parent} is not a directory", hint=WRITABLE_HINT)


def lock_path(path: Path) -> Path:
    """The lock file beside a results file (beside the real file, when `path` is a symlink)."""
    real = real_path(path)
    return real.with_name(real.name + ".lock")


def acquire_lock(path: Path) -> int:
    """Take the exclusive lock of a results file, or raise StoreError if another run holds it (or the lock
    file cannot be created). `path` and a symlink to it share one lock."""
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise StoreError(f"cannot create the lock file {lock}: {err.strerror}", hint=WRITABLE_HINT) from None
    if not _try_lock(fd):
        os.close(fd)
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            holder = f" (pid {int(lock.read_text().strip())})"
        raise StoreError(
            f"another `collect infer` is writing {path}{holder}",
            hint="wait for it to finish, or pass --output-file to write elsewhere",
        ) from None
    with contextlib.suppress(OSError):  # the pid is only a courtesy for the message above
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    return fd


def release_lock(fd: int) -> None:
    """Release a lock taken by acquire_lock."""
    with contextlib.suppress(OSError):
        _unlock(fd)
    os.close(fd)


# The lock modules are imported where they are used, so importing the store works on every platform.
if sys.platform == "win32":

    def _try_lock(fd: int) -> bool:
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _try_lock(fd: int) -> bool:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
