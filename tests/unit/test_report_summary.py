"""`collect report` numbers computed by hand on small graded files: accuracy, outcomes, pass@k, maj@k, router."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmrouter_collect.errors import GradeError
from llmrouter_collect.report.loader import load
from llmrouter_collect.report.prices import Price
from llmrouter_collect.report.summary import build_report

# Two models, five problems, k=3. Each sample: (outcome, extracted answer).
ALPHA = {
    "p1": [("correct", "A"), ("correct", "A"), ("wrong", "B")],
    "p2": [("wrong", "B"), ("wrong", "C"), ("error", None)],
    "p3": [("correct", "A"), ("unparsed", None), ("truncated", None)],
    "p4": [("wrong", "D"), ("wrong", "D"), ("correct", "A")],
    "p5": [("wrong", "X"), ("wrong", "X"), ("wrong", "Y")],
}
BETA = {
    "p1": [("correct", "A"), ("correct", "A"), ("correct", "a")],
    "p2": [("wrong", "B"), ("correct", "A"), ("wrong", "C")],
    "p3": [("correct", "A"), ("error", None), ("error", None)],
    "p4": [("wrong", "D"), ("wrong", "D"), ("wrong", "E")],
    "p5": [("wrong", "X"), ("unparsed", None), ("wrong", "X")],
}
CATEGORY = {"p1": "algebra", "p2": "algebra", "p3": "law", "p4": "law", "p5": "law"}
PRICES = {"alpha": Price(1.0, 2.0), "org/beta": Price(10.0, 20.0)}


def graded_record(model: str, uid: str, samples: list[tuple[str, str | None]], completion: int) -> dict[str, Any]:
    """A graded results record as `collect extract` writes it (docs/records.md)."""
    responses = []
    for index, (outcome, answer) in enumerate(samples):
        failed = outcome == "error"
        responses.append(
            {
                "index": index,
                "full_response": None if failed else f"... The answer is ({answer}).",
                "reasoning_content": None,
                "finish_reason": None if failed else ("length" if outcome == "truncated" else "stop"),
                "usage": None if failed else {"prompt_tokens": 100, "completion_tokens": completion},
                "latency_s": None if failed else float(index + 1),
                "obtained_via": "n=3",
                "created_at": "2026-01-01T00:00:00.000+00:00",
                "error": {"type": "http_status", "status": 500, "message": "server error"} if failed else None,
                "extracted_answer": answer,
                "is_correct": outcome == "correct",
                "outcome": outcome,
                "extraction_rule": None if answer is None else "answer_is",
            }
        )
    return {
        "schema_version": 1,
        "unique_id": uid,
        "problem": f"Question {uid}?",
        "is_mcq": True,
        "choices": ["right", "b", "c", "d", "e"],
        "choice_index_correct": 0,
        "explanation_correct": None,
        "answer_correct": "right",
        "category": CATEGORY[uid],
        "dataset": "mmlu_pro" if uid != "p5" else "other",
        "model": model,
        "api_base": "http://127.0.0.1:8000/v1",
        "endpoint": "chat",
        "generation": {"temperature": 0.7, "top_p": None, "max_tokens": 512, "seed": None, "stop": []},
        "prompt_fingerprint": "sha256:abc",
        "k_requested": 3,
        "attempts": 1,
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "updated_at": "2026-01-01T00:00:00.000+00:00",
        "extractor_version": "1",
        "responses": responses,
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def alpha_records() -> list[dict[str, Any]]:
    return [graded_record("alpha", uid, samples, 50) for uid, samples in ALPHA.items()]


def beta_records() -> list[dict[str, Any]]:
    return [graded_record("org/beta", uid, samples, 100) for uid, samples in BETA.items()]


@pytest.fixture
def graded_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "graded"
    directory.mkdir()
    write_jsonl(directory / "alpha.graded.jsonl", alpha_records())
    write_jsonl(directory / "beta.graded.jsonl", beta_records())
    return directory


def test_model_numbers_by_hand(graded_dir: Path) -> None:
    report = build_report(load([graded_dir]), PRICES)
    assert [model.model for model in report.models] == ["alpha", "org/beta"]
    alpha, beta = (model.overall for model in report.models)

    assert (alpha.problems, alpha.responses, alpha.k) == (5, 15, 3)
    assert alpha.counts == {"correct": 4, "wrong": 8, "unparsed": 1, "truncated": 1, "error": 1}
    assert alpha.accuracy == pytest.approx(4 / 15)
    # accuracy over answered responses leaves out the failed request, the unparsed and the truncated one
    assert alpha.accuracy_answered == pytest.approx(4 / 12)
    assert alpha.rates["error"] == pytest.approx(1 / 15)
    assert alpha.rates["unparsed"] == pytest.approx(1 / 15)
    assert alpha.pass_at[1] == pytest.approx(4 / 15)
    assert alpha.pass_at[2] == pytest.approx((1 + 0 + 2 / 3 + 2 / 3 + 0) / 5)
    assert alpha.pass_at[3] == pytest.approx(3 / 5)
    assert alpha.majority == pytest.approx((1 + 0 + 1 + 0 + 0) / 5)
    assert alpha.ci_low is not None and alpha.ci_high is not None
    assert alpha.ci_low < alpha.accuracy < alpha.ci_high

    assert beta.counts == {"correct": 5, "wrong": 7, "unparsed": 1, "truncated": 0, "error": 2}
    assert beta.accuracy == pytest.approx(5 / 15)
    assert beta.accuracy_answered == pytest.approx(5 / 12)
    assert beta.pass_at[2] == pytest.approx((1 + 2 / 3 + 2 / 3 + 0 + 0) / 5)
    # p2 is a three-way tie (B, correct, C) worth 1/3; p3 has one vote, correct, beside two failed requests
    assert beta.majority == pytest.approx((1 + 1 / 3 + 1 + 0 + 0) / 5)


def test_tokens_latency_and_cost_by_hand(graded_dir: Path) -> None:
    report = build_report(load([graded_dir]), PRICES)
    alpha, beta = (model.overall for model in report.models)
    # 14 answered responses of 100 prompt + 50 completion tokens; the failed request has no usage
    assert (alpha.prompt_tokens_total, alpha.completion_tokens_total) == (1400, 700)
    # means are over the responses that report usage: a failed request is not a response of 0 tokens
    assert alpha.completion_tokens_mean == pytest.approx(50)
    assert alpha.prompt_tokens_mean == pytest.approx(100)
    assert beta.completion_tokens_mean == pytest.approx(100)
    assert alpha.cost_total == pytest.approx((1400 * 1 + 700 * 2) / 1e6)
    assert alpha.cost_per_problem == pytest.approx(0.0028 / 5)
    assert alpha.cost_per_correct == pytest.approx(0.0028 / 4)
    assert beta.cost_total == pytest.approx((1300 * 10 + 1300 * 20) / 1e6)
    # latencies 1, 2, 3 by sample index over answered responses: five 1s, five 2s, four 3s
    assert alpha.latency_p50 == 2.0
    assert alpha.latency_p95 == 3.0


def test_per_category_rows(graded_dir: Path) -> None:
    # p5 is the one problem of dataset `other`: categories are qualified by their dataset
    report = build_report(load([graded_dir]), PRICES)
    assert {row.group for row in report.models[0].groups} == {"mmlu_pro/algebra", "mmlu_pro/law", "other/law"}
    assert report.router.category_router is not None
    assert set(report.router.category_router.choices) == {"mmlu_pro/algebra", "mmlu_pro/law", "other/law"}
    for path in graded_dir.glob("*.jsonl"):  # with one dataset, the bare category names
        write_jsonl(path, [{**orjson.loads(line), "dataset": "mmlu_pro"} for line in path.read_bytes().splitlines()])
    report = build_report(load([graded_dir]), PRICES)
    alpha = report.models[0]
    rows = {row.group: row for row in alpha.groups}
    assert set(rows) == {"algebra", "law"}
    assert rows["algebra"].accuracy == pytest.approx(2 / 6)
    assert rows["law"].accuracy == pytest.approx(2 / 9)
    assert rows["law"].counts["truncated"] == 1
    assert rows["algebra"].problems + rows["law"].problems == alpha.overall.problems


def test_group_by_dataset(graded_dir: Path) -> None:
    report = build_report(load([graded_dir], group_by="dataset"))
    assert {row.group for row in report.models[0].groups} == {"mmlu_pro", "other"}
    assert report.models[0].overall.cost_total is None


def test_router_view_by_hand(graded_dir: Path) -> None:
    for path in graded_dir.glob("*.jsonl"):  # one dataset: categories by their bare names
        write_jsonl(path, [{**orjson.loads(line), "dataset": "mmlu_pro"} for line in path.read_bytes().splitlines()])
    view = build_report(load([graded_dir]), PRICES).router
    assert view.common_problems == 5
    # per-problem scores: alpha 2/3, 0, 1/3, 1/3, 0; beta 1, 1/3, 1/3, 0, 0
    assert [(p.model, p.accuracy) for p in view.points] == [
        ("org/beta", pytest.approx(5 / 15)),
        ("alpha", pytest.approx(4 / 15)),
    ]
    assert view.best_single is not None and view.best_single.routed == {"org/beta": 5}
    assert view.oracle is not None
    assert view.oracle.accuracy == pytest.approx((1 + 1 / 3 + 1 / 3 + 1 / 3 + 0) / 5)
    # p3 ties at 1/3 and p5 at 0: the oracle takes the cheaper model (alpha) there
    assert view.oracle.routed == {"org/beta": 2, "alpha": 3}
    assert view.oracle.cost_per_query == pytest.approx((3000 + 3000 + 200 + 200 + 200) / 5 / 1e6)
    assert view.category_router is not None
    assert view.category_router.choices == {"algebra": "org/beta", "law": "alpha"}
    assert view.category_router.accuracy == pytest.approx(2 / 5)
    assert view.coverage == pytest.approx(4 / 5)
    assert [(item.unique_id, item.group) for item in view.unsolved] == [("p5", "law")]
    assert [(item.unique_id, item.answer) for item in view.agreed_wrong] == [("p4", "D"), ("p5", "X")]


def test_router_view_uses_only_common_problems(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", alpha_records())
    write_jsonl(tmp_path / "b.jsonl", beta_records()[:3])
    view = build_report(load([tmp_path])).router
    assert view.common_problems == 3
    assert view.missing == {"alpha": 0, "org/beta": 2}
    assert view.best_single is not None and view.best_single.cost_per_query is None


def test_a_directory_of_mixed_files_groups_by_the_model_field(tmp_path: Path) -> None:
    alpha, beta = alpha_records(), beta_records()
    # one file holds both models; the other holds the rest of each
    write_jsonl(tmp_path / "mixed.jsonl", [alpha[0], beta[0], alpha[1]])
    write_jsonl(tmp_path / "rest.jsonl", [*beta[1:], *alpha[2:]])
    report = build_report(load([tmp_path]))
    assert [(model.model, model.overall.problems) for model in report.models] == [("alpha", 5), ("org/beta", 5)]
    assert report.models[0].overall.accuracy == pytest.approx(4 / 15)
    assert len(report.models[0].files) == 2


def test_a_file_written_in_fragments_is_merged(tmp_path: Path) -> None:
    record = graded_record("alpha", "p1", ALPHA["p1"], 50)
    first = {**record, "responses": record["responses"][:2]}
    second = {**record, "responses": record["responses"][2:]}
    path = write_jsonl(tmp_path / "fragments.jsonl", [first, second])
    report = build_report(load([path]))
    assert report.models[0].overall.responses == 3
    assert report.models[0].overall.counts["correct"] == 2


def ungraded(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("extracted_answer", "is_correct", "outcome", "extraction_rule")
    responses = [{k: v for k, v in response.items() if k not in keys} for response in record["responses"]]
    return {**{k: v for k, v in record.items() if k != "extractor_version"}, "responses": responses}


def test_a_file_that_is_not_graded_is_a_clear_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "raw.jsonl", [ungraded(record) for record in alpha_records()])
    with pytest.raises(GradeError, match="not a graded results file") as info:
        load([path])
    assert "collect extract" in str(info.value.hint)
    assert str(path) in info.value.message


def test_a_directory_skips_ungraded_files_with_a_warning(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "alpha.jsonl", [ungraded(record) for record in alpha_records()])
    write_jsonl(tmp_path / "beta.graded.jsonl", beta_records())
    warnings: list[str] = []
    collection = load([tmp_path], warn=warnings.append)
    assert list(collection.models) == ["org/beta"]
    assert any("alpha.jsonl" in warning and "collect extract" in warning for warning in warnings)


def test_a_directory_with_nothing_graded_is_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "alpha.jsonl", [ungraded(record) for record in alpha_records()])
    with pytest.raises(GradeError, match="no graded records"):
        load([tmp_path])


def test_half_graded_file_unknown_outcome_and_missing_model_are_errors(tmp_path: Path) -> None:
    records = alpha_records()
    path = write_jsonl(tmp_path / "half.jsonl", [records[0], ungraded(records[1])])
    with pytest.raises(GradeError, match="problem p2: responses have no `outcome`"):
        load([path])
    bad = alpha_records()[0]
    bad["responses"][0]["outcome"] = "maybe"
    with pytest.raises(GradeError, match="unknown outcome 'maybe'"):
        load([write_jsonl(tmp_path / "bad.jsonl", [bad])])
    # a record without a model after records with one: the file was edited
    nameless = {k: v for k, v in alpha_records()[1].items() if k != "model"}
    with pytest.raises(GradeError, match="problem p2: no `model` field"):
        load([write_jsonl(tmp_path / "nameless.jsonl", [alpha_records()[0], nameless])])


def test_an_older_format_without_model_names_is_reported_under_the_file_name(tmp_path: Path) -> None:
    # The scripts this tool replaces wrote no `model` field: the file stands for one model.
    old = [{k: v for k, v in record.items() if k != "model"} for record in alpha_records()]
    path = write_jsonl(tmp_path / "google_gemma-3-4b-it_MATH_500.graded.jsonl", old)
    warnings: list[str] = []
    report = build_report(load([path], warn=warnings.append))
    [model] = report.models
    assert model.model == "google_gemma-3-4b-it_MATH_500"
    assert (model.overall.problems, model.overall.responses) == (5, 15)
    assert model.overall.accuracy == pytest.approx(4 / 15)
    assert any("names no model" in warning for warning in warnings)


@pytest.mark.parametrize("newer", ["a", "b"])
def test_the_same_model_and_problem_in_two_files_the_newer_file_wins(tmp_path: Path, newer: str) -> None:
    old_name = "b" if newer == "a" else "a"
    wrong = [graded_record("alpha", "p1", [("wrong", "9")] * 3, 50)]
    write_jsonl(tmp_path / f"{old_name}.jsonl", alpha_records())
    write_jsonl(tmp_path / f"{newer}.jsonl", wrong)
    os.utime(tmp_path / f"{old_name}.jsonl", ns=(1_000_000_000, 1_000_000_000))
    warnings: list[str] = []
    collection = load([tmp_path], warn=warnings.append)
    report = build_report(collection)
    assert collection.models["alpha"].problems["p1"].correct == 0  # the newer file's p1
    assert report.models[0].overall.problems == 5  # p2..p5 still come from the older file
    [warning] = [w for w in warnings if "also in the newer" in w]
    older_file, newer_file = tmp_path / f"{old_name}.jsonl", tmp_path / f"{newer}.jsonl"
    assert f"1 problem(s) of {older_file} are also in the newer {newer_file}" in warning
    assert "--list" in warning
    sources = {source.path.name: source for source in collection.sources}
    assert sources[f"{old_name}.jsonl"].shadowed == 1
    assert sources[f"{newer}.jsonl"].models == {"alpha": 1}


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(GradeError, match="no such file"):
        load([tmp_path / "nope.jsonl"])
    with pytest.raises(GradeError, match=r"no \.jsonl files"):
        load([tmp_path])


def test_an_incomplete_last_line_is_left_out_with_a_warning(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "alpha.jsonl", alpha_records())
    with path.open("ab") as handle:
        handle.write(orjson.dumps(graded_record("alpha", "p1", ALPHA["p1"], 50))[:40])
    warnings: list[str] = []
    report = build_report(load([path], warn=warnings.append))
    assert report.models[0].overall.problems == 5
    assert any("incomplete" in warning for warning in warnings)


def test_partial_prices_do_not_decide_ties(graded_dir: Path) -> None:
    # only alpha priced: an unpriced model would look free, so ties go to the better-ranked model instead
    view = build_report(load([graded_dir]), {"alpha": Price(1.0, 2.0)}).router
    assert view.oracle is not None
    assert view.oracle.routed == {"org/beta": 4, "alpha": 1}
    assert view.oracle.cost_per_query is None


def test_a_directory_skips_files_that_are_not_results_with_a_warning(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "beta.graded.jsonl", beta_records())
    write_jsonl(tmp_path / "math500.jsonl", [{"unique_id": "test/a/1.json", "problem": "p", "answer": "1"}])
    (tmp_path / "notes.jsonl").write_text("these are my notes\n")
    warnings: list[str] = []
    collection = load([tmp_path], warn=warnings.append)
    assert list(collection.models) == ["org/beta"]
    assert collection.models["org/beta"].overall().responses == 15
    assert any("math500.jsonl" in warning and "it is a dataset" in warning for warning in warnings)
    assert any("notes.jsonl" in warning and "line 1 is not JSON" in warning for warning in warnings)
    # named on the command line, the same files are errors
    with pytest.raises(GradeError, match=r"math500\.jsonl is not a graded results file: it is a dataset"):
        load([tmp_path / "math500.jsonl"])
    with pytest.raises(GradeError, match="line 1 is not JSON"):
        load([tmp_path / "notes.jsonl"])


def test_records_without_responses_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    empty = {**graded_record("alpha", "p5", [], 50), "unique_id": "p6"}
    write_jsonl(tmp_path / "alpha.graded.jsonl", [*alpha_records(), empty])
    warnings: list[str] = []
    report = build_report(load([tmp_path], warn=warnings.append))
    assert report.models[0].overall.problems == 5
    assert any("1 problem record(s) have no responses" in warning for warning in warnings)
    assert any("no responses" in warning for warning in report.warnings)


def test_files_graded_by_different_extractor_versions_are_flagged(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "alpha.graded.jsonl", alpha_records())
    write_jsonl(tmp_path / "beta.graded.jsonl", [{**r, "extractor_version": "2"} for r in beta_records()])
    warnings: list[str] = []
    load([tmp_path], warn=warnings.append)
    assert any("different extractor versions (alpha: 1; org/beta: 2)" in warning for warning in warnings)
    same: list[str] = []
    load([tmp_path / "alpha.graded.jsonl"], warn=same.append)
    assert not any("extractor versions" in warning for warning in same)


def test_unsolved_problems_are_listed_in_natural_order(tmp_path: Path) -> None:
    records = [
        {**graded_record("alpha", "p5", [("wrong", "X")], 50), "unique_id": f"sample/{n}"} for n in (10, 2, 1, 21)
    ]
    write_jsonl(tmp_path / "alpha.graded.jsonl", records)
    report = build_report(load([tmp_path]))
    unsolved = [problem.unique_id for problem in report.router.unsolved]
    assert unsolved == ["sample/1", "sample/2", "sample/10", "sample/21"]


def test_a_raw_file_beside_its_graded_file_is_skipped_without_asking_to_grade_it(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "alpha.jsonl", [ungraded(record) for record in alpha_records()])
    write_jsonl(tmp_path / "alpha.graded.jsonl", alpha_records())
    write_jsonl(tmp_path / "beta.jsonl", [ungraded(record) for record in beta_records()])
    warnings: list[str] = []
    collection = load([tmp_path], warn=warnings.append)
    # the layout `collect extract` writes (X.graded.jsonl beside X.jsonl) is the normal case: no warning
    assert not [warning for warning in warnings if "alpha.jsonl" in warning]
    status = {source.path.name: source.status for source in collection.sources}
    assert status["alpha.jsonl"] == "skipped: not graded; its graded copy alpha.graded.jsonl is read"
    assert status["alpha.graded.jsonl"] == "read"
    [beta] = [warning for warning in warnings if "beta.jsonl" in warning]
    assert "run `collect extract -i" in beta


def test_files_graded_with_different_grading_packages_are_flagged(tmp_path: Path) -> None:
    old = {"extractor": "1", "math-verify": "0.8.0", "sympy": "1.13.3", "latex2sympy2_extended": "1.10.1"}
    new = {**old, "math-verify": "0.9.0", "sympy": "1.14.0"}
    write_jsonl(tmp_path / "alpha.graded.jsonl", [{**r, "grader": old} for r in alpha_records()])
    write_jsonl(tmp_path / "beta.graded.jsonl", [{**r, "grader": new} for r in beta_records()])
    warnings: list[str] = []
    load([tmp_path], warn=warnings.append)
    assert any("different grading packages" in w and "math-verify 0.8.0" in w and "math-verify 0.9.0" in w
               for w in warnings)
    same: list[str] = []
    load([tmp_path / "alpha.graded.jsonl"], warn=same.append)
    assert not any("grading packages" in warning for warning in same)


def test_a_dataset_name_with_a_slash_names_the_same_group_in_tables_and_router(graded_dir: Path) -> None:
    for path in graded_dir.glob("*.jsonl"):
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        write_jsonl(path, [{**row, "dataset": "org/set" if row["unique_id"] == "p5" else "mmlu_pro"} for row in rows])
    report = build_report(load([graded_dir]), PRICES)
    groups = {row.group for row in report.models[0].groups}
    assert groups == {"mmlu_pro/algebra", "mmlu_pro/law", "org_set/law"}
    assert report.router.category_router is not None
    assert set(report.router.category_router.choices) == groups


def test_a_problem_given_another_dataset_by_a_second_file_keeps_every_response(tmp_path: Path) -> None:
    # beta's p1 names another dataset than alpha's (a conflict): its groups must not merge and lose counts
    write_jsonl(tmp_path / "alpha.jsonl", [{**row, "dataset": "mmlu_pro"} for row in alpha_records()])
    beta = [{**row, "dataset": "other" if row["unique_id"] == "p1" else "mmlu_pro"} for row in beta_records()]
    write_jsonl(tmp_path / "beta.jsonl", beta)
    report = build_report(load([tmp_path]))
    for model in report.models:
        assert sum(row.responses for row in model.groups) == model.overall.responses
    beta_groups = {row.group for row in next(m for m in report.models if m.model == "org/beta").groups}
    assert "other/" + CATEGORY["p1"] in beta_groups
