"""The results store: append, read back, merge, torn last line, corruption, lock, compaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmrouter_collect.errors import StoreError
from llmrouter_collect.records import merge_records, problem_signature
from llmrouter_collect.store import (
    ResultsWriter,
    compact,
    iter_records,
    loads_line,
    lock_path,
    problem_differences,
    scan,
)


def fragment(
    uid: str, texts: list[str | None], *, start: int = 0, attempts: int = 1, k: int = 2
) -> dict[str, Any]:
    responses = []
    for i, text in enumerate(texts):
        error = None if text is not None else {"type": "http", "status": 500, "message": "boom"}
        responses.append({"index": start + i, "full_response": text, "error": error})
    return {"unique_id": uid, "model": "m", "k_requested": k, "attempts": attempts, "responses": responses}


def write(path: Path, records: list[dict[str, Any]]) -> None:
    with ResultsWriter(path, sync_every=1) as writer:
        for record in records:
            writer.append(record)


def test_append_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [fragment("a", ["1", "2"]), fragment("b", ["3", "4"])])
    records = list(iter_records(path))
    assert [r["unique_id"] for r in records] == ["a", "b"]
    assert [x["full_response"] for x in records[0]["responses"]] == ["1", "2"]
    assert path.read_bytes().count(b"\n") == 2


def test_merge_fragments_keeps_good_and_drops_replaced_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(
        path,
        [
            fragment("a", [None, None], attempts=1),
            fragment("b", ["x", "y"]),
            fragment("a", ["p"], attempts=2),
            fragment("a", ["q"], start=1, attempts=2),
        ],
    )
    merged = {r["unique_id"]: r for r in iter_records(path)}
    assert [x["full_response"] for x in merged["a"]["responses"]] == ["p", "q"]
    assert [x["index"] for x in merged["a"]["responses"]] == [0, 1]
    assert merged["a"]["attempts"] == 2
    state = scan(path)
    assert (
        state.problems["a"].good == 2 and state.problems["a"].errors == 2 and state.problems["a"].lines == 3
    )


def test_merge_fills_missing_slots_with_newest_errors() -> None:
    merged = merge_records([fragment("a", ["ok"], k=3), fragment("a", [None, None], k=3)])
    assert [r["full_response"] for r in merged["responses"]] == ["ok", None, None]
    assert [r["index"] for r in merged["responses"]] == [0, 1, 2]


def test_torn_last_line_is_skipped_then_cut_by_writer(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [fragment("a", ["1", "2"])])
    with path.open("ab") as handle:
        handle.write(b'{"unique_id": "b", "respo')  # a crash mid-write
    torn: list[int] = []
    assert [r["unique_id"] for r in iter_records(path, on_torn=torn.append)] == ["a"]
    assert torn == [2]
    writer = ResultsWriter(path).open()
    assert writer.torn_bytes_cut == len(b'{"unique_id": "b", "respo')
    writer.append(fragment("c", ["5", "6"]))
    writer.close()
    assert [r["unique_id"] for r in iter_records(path)] == ["a", "c"]


def test_corrupt_middle_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(
        orjson.dumps(fragment("a", ["1"])) + b"\nnot json\n" + orjson.dumps(fragment("b", ["1"])) + b"\n"
    )
    with pytest.raises(StoreError, match=r"r\.jsonl, line 2"):
        list(iter_records(path))


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    first = ResultsWriter(path).open()
    try:
        with pytest.raises(StoreError, match="another `collect infer`"):
            ResultsWriter(path).open()
    finally:
        first.close()
    ResultsWriter(path).open().close()  # free again once the first is closed


def test_compact_rewrites_to_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [fragment("a", ["1"]), fragment("b", ["2", "3"]), fragment("a", ["4"], start=1)])
    before = list(iter_records(path))
    assert compact(path) is True
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    assert list(iter_records(path)) == before
    assert compact(path) is False  # already compact: left alone
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    assert list(iter_records(tmp_path / "none.jsonl")) == []
    assert scan(tmp_path / "none.jsonl").problems == {}


def test_a_symlink_shares_the_lock_of_its_target(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(Path("data") / "real.jsonl")  # dangling until the first write
    first = ResultsWriter(real).open()
    try:
        with pytest.raises(StoreError, match="another `collect infer`"):
            ResultsWriter(link).open()
    finally:
        first.close()
    first = ResultsWriter(link).open()
    try:
        with pytest.raises(StoreError, match="another `collect infer`"):
            ResultsWriter(real).open()
    finally:
        first.close()
    assert lock_path(link) == real.with_name("real.jsonl.lock")
    assert not (tmp_path / "link.jsonl.lock").exists()


def test_compacting_through_a_symlink_rewrites_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(real.name)
    write(link, [fragment("a", ["1"]), fragment("b", ["2", "3"]), fragment("a", ["4"], start=1)])
    assert link.read_bytes() != b"" and real.read_bytes().count(b"\n") == 3
    before = list(iter_records(real))
    assert compact(link) is True
    assert link.is_symlink() and os.readlink(link) == "real.jsonl"
    assert real.read_bytes().count(b"\n") == 2 and list(iter_records(link)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl", "real.jsonl", "real.jsonl.lock"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"responses": "text"}, "`responses` is a string"),
        ({"responses": [{"index": 0}, "x"]}, r"`responses\[1\]` is a string"),
        ({"attempts": "x"}, "`attempts` is a string"),
        ({"attempts": True}, "`attempts` is a boolean"),
        ({"k_requested": 1.5}, "`k_requested` is a number"),
        ({"unique_id": {"a": 1}}, "`unique_id` is an object"),
        ({"unique_id": None}, "`unique_id` is null"),
        ({"model": ["m"]}, "`model` is a list"),
    ],
)
def test_a_line_with_wrong_types_names_file_line_and_field(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    path = tmp_path / "r.jsonl"
    bad = {**fragment("b", ["1"]), **change}
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [fragment("a", ["1"]), bad, fragment("c", ["2"])]))
    for read in (scan, lambda p: list(iter_records(p)), compact):
        with pytest.raises(StoreError, match=rf"r\.jsonl, line 2: {field}") as caught:
            read(path)
        assert caught.value.hint and "line" in caught.value.hint


def test_numeric_unique_ids_are_read_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, [{**fragment("x", ["1"]), "unique_id": 7}, {**fragment("x", ["2"], start=1), "unique_id": "7"}])
    assert list(scan(path).problems) == ["7"] and scan(path).problems["7"].good == 2
    assert [r["unique_id"] for r in iter_records(path)] == [7]


def test_scan_fingerprints_problem_fields_and_flags_lines_that_disagree(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    same = {"problem": "What is 1+1?", "answer_correct": "2", "choices": None}
    write(
        path,
        [
            {**fragment("a", ["1"]), **same},
            {**fragment("a", ["2"], start=1), **same},
            {**fragment("b", ["1"]), **same},
            {**fragment("b", ["2"], start=1), **same, "answer_correct": "3"},
            fragment("c", ["1"]),  # an old line without problem fields
        ],
    )
    state = scan(path)
    a, b, c = state.problems["a"], state.problems["b"], state.problems["c"]
    assert a.signature is not None and not a.mixed
    assert a.signature == problem_signature({"unique_id": "zz", **same, "category": "ignored"}, a.signature[0])
    assert b.mixed and b.signature == a.signature
    assert c.signature is not None and c.signature[0] == 0 and not c.mixed
    differences = problem_differences(path, {"b": {**same, "answer_correct": "2"}, "zz": same})
    assert differences == {"b": ["answer_correct"], "zz": []}


def test_unwritable_locations_are_store_errors_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for target in (blocker / "r.jsonl", blocker / "sub" / "r.jsonl"):
        with pytest.raises(StoreError, match=r"file\.txt is a file, not a directory") as caught:
            ResultsWriter(target).open()
        assert caught.value.hint and "--output-file" in caught.value.hint
    with pytest.raises(StoreError, match="is a directory"):
        ResultsWriter(tmp_path).open()
    if Path("/proc/self").exists():
        with pytest.raises(StoreError, match=r"/proc/r\.jsonl\.lock"):
            ResultsWriter(Path("/proc/r.jsonl")).open()
        with pytest.raises(StoreError, match="cannot create the directory /proc/nowhere"):
            ResultsWriter(Path("/proc/nowhere/r.jsonl")).open()
    assert blocker.read_text() == "x"


def test_the_store_imports_without_fcntl(tmp_path: Path) -> None:
    """`collect --help` must work where there is no fcntl (Windows): the store imports it only to lock."""
    code = "import sys; sys.modules['fcntl'] = None; import llmrouter_collect.store, llmrouter_collect.cli; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_lone_surrogate_escape_is_read_as_the_replacement_character(tmp_path: Path) -> None:
    """Python's json module writes an unpaired UTF-16 half as an escape that orjson refuses."""
    path = tmp_path / "r.jsonl"
    record = {"unique_id": "p1", "responses": [{"index": 0, "full_response": "x \ud800 \U0001f600", "error": None}]}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    [read] = list(iter_records(path))
    assert read["responses"][0]["full_response"] == "x \ufffd \U0001f600"
    assert loads_line(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}  # a valid pair stays one character
    with pytest.raises(orjson.JSONDecodeError):
        loads_line(b'{"a": "\\ud800"')
