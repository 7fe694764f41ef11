"""Shards (`--shard I/N`): the hash share is disjoint, covering, balanced and independent of the other hashes of
unique_id; shard files of one model read together refuse overlaps and name missing shards."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from llmrouter_collect.benchmarks import select_subset
from llmrouter_collect.errors import ConfigError, GradeError
from llmrouter_collect.infer import identity_mismatch, output_path
from llmrouter_collect.records import Problem
from llmrouter_collect.report.metrics import assign_split
from llmrouter_collect.settings import load_settings
from llmrouter_collect.shards import ShardCheck, ShardSpec, parse_shard, select_shard, shard_number

IDS = [f"test/{['algebra', 'geometry', 'law', 'physics'][n % 4]}/{7 * n + 3}.json" for n in range(10_000)]


def problem(uid: str, category: str = "c") -> Problem:
    return Problem(unique_id=uid, question="q", answer_correct="1", category=category, dataset="t")


@pytest.mark.parametrize(("text", "index", "count"), [("2/3", 2, 3), (" 1 / 1 ", 1, 1), ("10/10", 10, 10)])
def test_parse_shard_reads_i_of_n(text: str, index: int, count: int) -> None:
    assert parse_shard(text) == ShardSpec(index, count)
    assert str(parse_shard(text)) == f"{index}/{count}"


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "1/0", "a/b", "-1/3", "1/3/4", ""])
def test_parse_shard_refuses_what_is_not_i_of_n(text: str) -> None:
    with pytest.raises(ValueError, match=r"I/N with whole numbers 1 ≤ I ≤ N"):
        parse_shard(text)


def test_a_bad_shard_setting_is_one_line_naming_the_flag_and_the_form() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(shard="4/3")
    assert caught.value.message.count("\n") == 0
    assert "--shard / COLLECT_SHARD ('4/3')" in caught.value.message
    assert "I/N" in caught.value.message


def test_the_shard_setting_comes_from_the_environment_and_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_SHARD", " 2 /3")
    settings = load_settings()
    assert settings.shard == "2/3"
    assert settings.shard_spec == ShardSpec(2, 3)
    assert load_settings(shard=None).shard == "2/3"
    monkeypatch.delenv("COLLECT_SHARD")
    assert load_settings().shard_spec is None


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_shards_are_disjoint_and_cover_every_problem(count: int) -> None:
    problems = [problem(uid) for uid in IDS[:500]]
    shares = [select_shard(problems, ShardSpec(index, count)) for index in range(1, count + 1)]
    ids = [p.unique_id for share in shares for p in share]
    assert len(ids) == len(set(ids)) == len(problems)
    for share in shares:  # each keeps the selection's order
        assert share == [p for p in problems if p in share]
    assert select_shard(problems, None) == problems


@pytest.mark.parametrize("count", [2, 3, 8])
def test_the_shards_are_balanced_on_ten_thousand_ids(count: int) -> None:
    sizes = Counter(shard_number(uid, count) for uid in IDS)
    assert set(sizes) == set(range(1, count + 1))
    expected = len(IDS) / count
    for size in sizes.values():
        assert abs(size - expected) / expected < 0.05, sizes


def test_the_share_is_stable_and_depends_only_on_the_id_and_n() -> None:
    # The definition pinned: a change of salt or hash would move problems to other machines mid-collection.
    digest = hashlib.sha256(b"shard:test/algebra/3.json").digest()
    assert shard_number("test/algebra/3.json", 5) == int.from_bytes(digest, "big") % 5 + 1


def test_each_shard_has_the_global_share_of_the_router_test_split() -> None:
    global_test = sum(assign_split(uid) == "test" for uid in IDS) / len(IDS)
    for index in (1, 2, 3):
        share = [uid for uid in IDS if shard_number(uid, 3) == index]
        test = sum(assign_split(uid) == "test" for uid in share) / len(share)
        assert abs(test - global_test) < 0.02, (index, test, global_test)


def test_a_subset_is_split_evenly_by_the_shards() -> None:
    # The subset takes the lowest unsalted hashes per category; an unsalted shard hash would skew it.
    problems = [problem(uid, uid.split("/")[1]) for uid in IDS]
    subset = select_subset(problems, 600)
    sizes = Counter(shard_number(p.unique_id, 3) for p in subset)
    assert all(abs(size - 200) <= 30 for size in sizes.values()), sizes


def test_the_default_file_name_carries_the_shard(tmp_path: Path) -> None:
    sharded = load_settings(output_dir=tmp_path, dataset="sample", shard="2/3")
    assert output_path(sharded, "org/m") == tmp_path / "org_m_sample.shard-2-of-3.jsonl"
    assert output_path(load_settings(output_dir=tmp_path, dataset="sample"), "org/m") == tmp_path / "org_m_sample.jsonl"
    given = load_settings(output_dir=tmp_path, dataset="sample", shard="2/3", output_file="x.jsonl")
    assert output_path(given, "m") == tmp_path / "x.jsonl"


def test_resume_refuses_a_file_of_another_shard_and_takes_absent_as_unsharded() -> None:
    current = {"model": "m", "endpoint": "chat", "shard": "2/3"}
    assert identity_mismatch({**current}, current) is None
    other = identity_mismatch({**current, "shard": "1/3"}, current) or ""
    assert "the file belongs to shard 1/3, this run is shard 2/3 (--shard)" in other
    unsharded = {"model": "m", "endpoint": "chat"}
    assert "the file belongs to no shard (every problem), this run is shard 2/3" in (
        identity_mismatch(unsharded, current) or ""
    )
    assert "the file belongs to shard 2/3, this run is no shard" in (identity_mismatch(current, unsharded) or "")
    assert identity_mismatch(unsharded, dict(unsharded)) is None  # older files, which have no shard, still resume


def test_shard_check_refuses_a_problem_two_shard_files_hold() -> None:
    check = ShardCheck()
    check.add("m", "p1", "1/3", Path("a.jsonl"))
    check.add("m", "p1", "1/3", Path("a.jsonl"))  # the same file again (its lines are merged): fine
    check.add("other", "p1", "2/3", Path("b.jsonl"))  # another model: fine
    with pytest.raises(GradeError) as caught:
        check.add("m", "p1", "1/2", Path("c.jsonl"))
    message = caught.value.message
    assert "a.jsonl (1/3) and c.jsonl (1/2) both hold problem p1 of model 'm'" in message
    assert "\n" not in message


def test_shard_check_names_missing_shards_and_mixed_splits() -> None:
    check = ShardCheck()
    check.add("m", "p1", "1/3", Path("a"))
    check.add("m", "p2", "2/3", Path("b"))
    check.add("n", "p1", "1/2", Path("c"))
    check.add("n", "p2", "2/2", Path("d"))
    check.add("x", "p1", "1/2", Path("e"))
    check.add("x", "p2", "2/3", Path("f"))
    warnings = check.missing()
    assert len(warnings) == 2
    assert "model 'm': shard 3/3 missing (read 1/3, 2/3)" in warnings[0]
    assert "--shard 3/3" in warnings[0]
    assert "model 'x': its shard files come from splits of different sizes (1/2, 2/3)" in warnings[1]


def test_shard_check_refuses_a_shard_field_that_is_not_i_of_n() -> None:
    with pytest.raises(GradeError, match=r"a.jsonl, problem p1: `shard` is 3, not I/N"):
        ShardCheck().add("m", "p1", 3, Path("a.jsonl"))
