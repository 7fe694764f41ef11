"""The invariant checker itself: it must see each kind of damage the fault trials look for.

No `collect` here: results files are written by hand, and a (never started) tagged server provides the
record of what was served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fault.harness import SECRET, Checker, Run, TaggedServer, uid_of

UIDS = [uid_of("000"), uid_of("001")]


def served(server: TaggedServer, uid: str, count: int) -> list[str]:
    """Have the server hand out `count` answers for `uid` (as it does for real requests)."""
    body = {"messages": [{"role": "user", "content": f"Problem #{uid[-3:]}. What is 1 + 1?"}]}
    return [server.answer_fn(body, i) for i in range(count)]  # type: ignore[misc]


def record(uid: str, texts: list[str | None], attempts: int = 0) -> dict[str, Any]:
    responses = [
        {"index": i, "full_response": t, "created_at": "2026-01-01T00:00:00Z",
         "error": None if t is not None else {"type": "http", "status": 500, "message": "x"}}
        for i, t in enumerate(texts)
    ]  # fmt: skip
    return {"unique_id": uid, "attempts": attempts, "k_requested": len(texts), "responses": responses}


def write(path: Path, *records: dict[str, Any], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Checker, TaggedServer, dict[str, list[str]], Path]:
    server = TaggedServer()
    texts = {uid: served(server, uid, 3) for uid in UIDS}
    out = tmp_path / "results.jsonl"
    return Checker(out, server, UIDS, tmp_path), server, texts, out


def ok_run() -> Run:
    return Run(["infer"], 0, "", "done")


def test_a_complete_file_passes(setup: Any) -> None:
    checker, _, texts, out = setup
    write(out, record(UIDS[0], texts[UIDS[0]][:1]))
    checker.after_run(None)
    write(out, *(record(uid, texts[uid]) for uid in UIDS))
    checker.final(ok_run(), 3)


SEEN_AS = {
    "duplicated": "duplicated",
    "lost": "is lost",
    "altered": "was altered",
    "invented": "never sent",
    "misfiled": "given for",
    "attempts": "an attempt is used only by a failed request",
    "key": "API key",
    "torn": "incomplete line",
    "short": "responses, not 3",
    "two lines": "more than one line",
}


@pytest.mark.parametrize("damage", list(SEEN_AS))
def test_each_kind_of_damage_is_seen(setup: Any, damage: str) -> None:
    checker, _, texts, out = setup
    a, b = UIDS
    write(out, record(a, texts[a][:2]), record(b, texts[b][:1]))
    checker.after_run(None)
    later = [record(a, texts[a]), record(b, texts[b])]
    if damage == "duplicated":
        later[1]["responses"][2]["full_response"] = texts[b][0]
    elif damage == "lost":
        later[0] = record(a, [texts[a][0], texts[a][2], None])
    elif damage == "altered":
        later[0]["responses"][1]["created_at"] = "2027-01-01T00:00:00Z"
    elif damage == "invented":
        later[1]["responses"][2]["full_response"] = "made up [P001:999:00000000]"
    elif damage == "misfiled":
        later[1]["responses"][2]["full_response"] = texts[a][2]
        later[0]["responses"][2]["full_response"] = None
    elif damage == "attempts":
        later[0]["attempts"] = 1
    elif damage == "key":
        (out.parent / "results.jsonl.lock").write_text(f"pid 1 {SECRET}")
    elif damage == "short":
        later[1] = record(b, texts[b][:2])
    elif damage == "two lines":
        later.append(record(b, []))
    write(out, *later, tail='{"unique_id": "fault/000", "resp' if damage == "torn" else "")
    with pytest.raises(AssertionError, match=SEEN_AS[damage]):
        checker.final(ok_run(), 3)
