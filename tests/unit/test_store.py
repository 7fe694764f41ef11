"""The results store: append, read back, merge, torn last line, corruption, lock, compaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from llmrouter_collect.errors import StoreError
from llmrouter_collect.records import merge_records
from llmrouter_collect.store import ResultsWriter, compact, iter_records, scan


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
