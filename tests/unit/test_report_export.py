"""Router training exports read back through `datasets` and pandas; plots written as non-empty PNGs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from llmrouter_collect.errors import ConfigError, GradeError
from llmrouter_collect.report.metrics import assign_split
from llmrouter_collect.report.plots import write_plots
from llmrouter_collect.report.prices import Price
from llmrouter_collect.report.run import run_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def graded_record(model: str, uid: str, outcomes: list[str], category: str) -> dict[str, Any]:
    """A graded record (docs/records.md) with answer `A` for correct samples and `B` for wrong ones."""
    responses = []
    for index, outcome in enumerate(outcomes):
        failed = outcome == "error"
        answer = {"correct": "A", "wrong": "B"}.get(outcome)
        responses.append(
            {
                "index": index,
                "full_response": None if failed else "The answer is (A).",
                "reasoning_content": None,
                "finish_reason": None if failed else "stop",
                "usage": None if failed else {"prompt_tokens": 200, "completion_tokens": 100, "reasoning_tokens": 0},
                "latency_s": None if failed else 0.5,
                "obtained_via": "n=2",
                "created_at": "2026-01-01T00:00:00.000+00:00",
                "error": {"type": "timeout", "status": None, "message": "timed out"} if failed else None,
                "extracted_answer": answer,
                "is_correct": outcome == "correct",
                "outcome": outcome,
                "extraction_rule": "answer_is" if answer else None,
            }
        )
    return {
        "schema_version": 1,
        "unique_id": uid,
        "problem": f'What is {uid}? (with | pipes, "quotes", and a comma)',
        "is_mcq": True,
        "choices": ["one", "two"],
        "choice_index_correct": 0,
        "explanation_correct": None,
        "answer_correct": "one",
        "category": category,
        "dataset": "sample",
        "model": model,
        "generation": {"temperature": 0.7},
        "k_requested": len(outcomes),
        "extractor_version": "1",
        "responses": responses,
    }


@pytest.fixture
def graded_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "graded"
    directory.mkdir()
    small = [
        graded_record("small", f"sample/{i}", ["correct", "wrong"] if i % 2 else ["wrong", "error"], "math")
        for i in range(12)
    ]
    large = [
        graded_record("org/large-1.5", f"sample/{i}", ["correct", "correct"] if i % 3 else ["wrong", "unparsed"], "law")
        for i in range(12)
    ]
    (directory / "small.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in small))
    (directory / "large.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in large))
    return directory


def test_exports_load_with_datasets_and_pandas(
    graded_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    import datasets

    out = tmp_path / "export"
    result = run_report([graded_dir], price_flags=["small=1,2"], export_dir=out, test_fraction=0.3)
    names = sorted(path.name for path in result.written)
    assert names == ["long.jsonl", "long.parquet", "wide.csv", "wide.jsonl", "wide.parquet"]
    assert not [path for path in out.iterdir() if path.name.startswith(".")], "temporary files left behind"

    long = datasets.load_dataset(
        "parquet", data_files=str(out / "long.parquet"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert long.num_rows == 2 * 12 * 2
    long_json = datasets.load_dataset(
        "json", data_files=str(out / "long.jsonl"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert long_json.num_rows == long.num_rows
    frame = long.to_pandas()
    first = frame[(frame.model == "small") & (frame.unique_id == "sample/0")].sort_values("sample_index")
    assert first.outcome.tolist() == ["wrong", "error"]
    assert first.is_correct.tolist() == [False, False]
    assert first.cost_usd.iloc[0] == pytest.approx((200 * 1 + 100 * 2) / 1e6)
    assert first.cost_usd.iloc[1] == 0.0  # a failed request has no usage
    assert first.error_type.isna().tolist() == [True, False]
    assert first.error_type.iloc[1] == "timeout"
    assert frame[frame.model == "org/large-1.5"].cost_usd.isna().all()  # no price given
    # a problem lands on the same side for every model, and the side is the documented hash
    sides = frame.groupby("unique_id").split.nunique()
    assert (sides == 1).all()
    assert set(frame.split) == {"train", "test"}
    for uid, split in frame[["unique_id", "split"]].drop_duplicates().itertuples(index=False):
        assert split == assign_split(uid, 0.3)

    wide = datasets.load_dataset(
        "parquet", data_files=str(out / "wide.parquet"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert wide.num_rows == 12
    row = {r["unique_id"]: r for r in wide}["sample/1"]
    assert row["small"] == pytest.approx(0.5)
    assert row["small__k"] == 2
    assert row["small__correct"] == 1
    assert row["org/large-1.5"] == pytest.approx(1.0)
    assert row["org/large-1.5__answered"] == 2
    assert row["org/large-1.5__cost"] is None
    assert row["small__cost"] == pytest.approx((200 + 200) / 1e6)
    assert row["problem"].startswith("What is sample/1?")
    # files are read in name order: large.jsonl names the category; the conflict was reported
    assert row["category"] == "law"
    assert any("another category" in warning for warning in result.report.warnings)
    assert row["choices"] == ["one", "two"]
    zero = {r["unique_id"]: r for r in wide}["sample/0"]
    assert zero["small"] == 0.0
    assert zero["small__answered"] == 1
    assert zero["small__errors"] == 1
    assert zero["small__completion_tokens"] == pytest.approx(100)  # the failed request is not a 0-token sample

    wide_json = pd.read_json(out / "wide.jsonl", lines=True)
    assert len(wide_json) == 12
    wide_csv = pd.read_csv(out / "wide.csv")
    assert list(wide_csv.columns[:8]) == [
        "unique_id",
        "dataset",
        "category",
        "split",
        "is_mcq",
        "problem",
        "choices",
        "answer_correct",
    ]
    assert json.loads(wide_csv.choices.iloc[0]) == ["one", "two"]
    assert wide_csv.set_index("unique_id").loc["sample/3", "small"] == pytest.approx(0.5)
    pd.testing.assert_series_equal(
        pd.read_parquet(out / "wide.parquet").set_index("unique_id")["small"].sort_index(),
        wide_csv.set_index("unique_id")["small"].sort_index(),
    )


def test_an_export_that_fails_leaves_earlier_files_alone(graded_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run_report([graded_dir], export_dir=out)
    before = (out / "wide.csv").read_bytes()
    (graded_dir / "broken.jsonl").write_text('{"unique_id": "x", "responses": [{"index": 0}]}\n', encoding="utf-8")
    with pytest.raises(GradeError, match="is not a graded results file"):
        run_report([graded_dir / "broken.jsonl"], export_dir=out)
    assert (out / "wide.csv").read_bytes() == before
    assert not [path for path in out.iterdir() if path.name.startswith(".")]


def test_plots_are_written(graded_dir: Path, tmp_path: Path) -> None:
    result = run_report([graded_dir], price_flags=["small=0.03,0.06", "org/large-1.5=0.09,0.11"])
    written = write_plots(result.report, tmp_path / "plots")
    assert sorted(path.name for path in written) == [
        "accuracy_by_category.png",
        "accuracy_vs_cost.png",
        "pass_at_k.png",
    ]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000


def test_plots_without_prices_use_tokens(graded_dir: Path, tmp_path: Path) -> None:
    result = run_report([graded_dir], plots_dir=tmp_path / "plots")
    assert {path.name for path in result.written} == {
        "accuracy_by_category.png",
        "accuracy_vs_cost.png",
        "pass_at_k.png",
    }
    assert all(path.stat().st_size > 10_000 for path in result.written)


def test_prices_from_files_and_flags(graded_dir: Path, tmp_path: Path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text('[prices]\nsmall = { input = 1, output = 2 }\n"org/large-1.5" = [3, 15]\n', encoding="utf-8")
    report = run_report([graded_dir], prices_file=toml, price_flags=["small=2,4"]).report
    costs = {model.model: model.price for model in report.models}
    assert costs == {"small": Price(2.0, 4.0), "org/large-1.5": Price(3.0, 15.0)}
    assert report.unpriced == []
    with pytest.raises(ConfigError, match="--price 'small=1'"):
        run_report([graded_dir], price_flags=["small=1"])


def test_prices_csv_as_a_spreadsheet_saves_it_and_its_mistakes(tmp_path: Path) -> None:
    from llmrouter_collect.report.prices import load_prices_file

    excel = tmp_path / "excel.csv"
    excel.write_bytes("model, input, output\r\nsmall,1,2\r\n".encode("utf-8-sig"))  # BOM, CRLF, spaces
    assert load_prices_file(excel) == {"small": Price(1.0, 2.0)}
    short = tmp_path / "short.csv"
    short.write_text("model,input,output\nsmall,1,2\nlarge,0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_prices_file(short)
    assert info.value.message == f"--prices {short}, row 3: output price is missing"
    header = tmp_path / "header.csv"
    header.write_text("name,in,out\nsmall,1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_prices_file(header)
    assert "(it has: name,in,out)" in info.value.message
    assert "model,input,output" in str(info.value.hint)


def test_cost_plot_tick_labels_never_overlap_and_the_legend_hides_no_model(graded_dir: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from llmrouter_collect.report.plots import _accuracy_vs_cost

    # Tiny per-query costs within a factor 2 (a linear axis): long dollar labels such as $0.000025.
    result = run_report([graded_dir], price_flags=["small=0.03,0.06", "org/large-1.5=0.09,0.11"])
    figure = _accuracy_vs_cost(result.report)
    assert figure is not None
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    [axes] = figure.axes
    lo, hi = axes.get_xlim()
    labels = [label for label in axes.get_xticklabels() if label.get_text() and lo <= label.get_position()[0] <= hi]
    assert len(labels) >= 2
    boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.x0)
    for left, right in itertools.pairwise(boxes):
        assert left.x1 < right.x0, [label.get_text() for label in labels]
    legend = axes.get_legend().get_window_extent(renderer)
    for point in result.report.router.points:
        assert point.cost_per_query is not None
        x, y = axes.transData.transform((point.cost_per_query, 100 * point.accuracy))
        assert not legend.contains(x, y), point.model


def test_export_into_the_input_directory_is_skipped_when_read_back(graded_dir: Path, tmp_path: Path) -> None:
    run_report([graded_dir], export_dir=graded_dir)
    warnings: list[str] = []
    result = run_report([graded_dir], warn=warnings.append)
    assert [model.model for model in result.report.models] == ["org/large-1.5", "small"]
    assert any("wide.jsonl" in warning and "collect report --export" in warning for warning in warnings)
    assert any("long.jsonl" in warning and "not a results file" in warning for warning in warnings)


@pytest.mark.parametrize("flag", ["export_dir", "plots_dir"])
def test_export_or_plots_path_that_is_a_file(graded_dir: Path, tmp_path: Path, flag: str) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    with pytest.raises(ConfigError, match="is a file") as info:
        run_report([graded_dir], **{flag: taken})
    assert "pass a directory" in str(info.value.hint)
    assert taken.read_text() == "mine\n"


def test_toml_prices_with_unquoted_model_names_say_to_quote_them(tmp_path: Path) -> None:
    from llmrouter_collect.report.prices import load_prices_file

    dotted = tmp_path / "dotted.toml"
    dotted.write_text("gpt-4o.mini = [0.15, 0.6]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_prices_file(dotted)
    assert "model 'gpt-4o': holds 'mini'" in info.value.message
    assert '"org/model-1.5" = [0.15, 0.6]' in str(info.value.hint)
    slashed = tmp_path / "slashed.toml"
    slashed.write_text("[org/model]\ninput = 1\noutput = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_prices_file(slashed)
    assert "quote model names" in str(info.value.hint)
    quoted = tmp_path / "quoted.toml"
    quoted.write_text('"gpt-4o.mini" = [0.15, 0.6]\n["org/model"]\ninput = 1\noutput = 2\n', encoding="utf-8")
    assert load_prices_file(quoted) == {"gpt-4o.mini": Price(0.15, 0.6), "org/model": Price(1.0, 2.0)}


def test_cost_plot_tick_labels_are_distinct_when_models_sit_close(graded_dir: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from llmrouter_collect.report.plots import _accuracy_vs_cost

    # Without prices the x axis is completion tokens: 100 and 100.5 per response put the ticks 0.1 apart.
    large = graded_dir / "large.jsonl"
    records = [orjson.loads(line) for line in large.read_bytes().splitlines()]
    for record in records[:6]:
        for response in record["responses"]:
            response["usage"]["completion_tokens"] = 101
    large.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    for flags in ([], ["small=1,2", "org/large-1.5=1,2"]):
        figure = _accuracy_vs_cost(run_report([graded_dir], price_flags=flags).report)
        assert figure is not None
        FigureCanvasAgg(figure).draw()
        [axes] = figure.axes
        lo, hi = axes.get_xlim()
        texts = [label.get_text() for label in axes.get_xticklabels() if lo <= label.get_position()[0] <= hi]
        assert len(texts) >= 2 and len(set(texts)) == len(texts), texts


def test_a_symlink_planted_at_the_old_predictable_temp_names_is_never_followed(
    graded_dir: Path, tmp_path: Path
) -> None:
    """Temp files were `.NAME.tmp-<pid>`: anyone able to write the directory could plant a link there and have
    the export (or a plot) overwrite the file it points at. Now the temp names are fresh (fileio.atomic_path)."""
    import os

    out, plots = tmp_path / "export", tmp_path / "plots"
    out.mkdir()
    plots.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    names = [f"{stem}.{ext}" for stem in ("long", "wide") for ext in ("parquet", "jsonl")] + ["wide.csv"]
    for name in names:
        (out / f".{name}.tmp-{os.getpid()}").symlink_to(victim)
    for name in ("accuracy_by_category.png", "pass_at_k.png", "accuracy_vs_cost.png"):
        (plots / f".{name}.tmp-{os.getpid()}").symlink_to(victim)
    result = run_report([graded_dir], export_dir=out, plots_dir=plots, price_flags=["small=1,2", "org/large-1.5=3,4"])
    assert victim.read_text() == "keep me"
    assert len(result.written) == 8
    assert all(path.stat().st_size > 0 and not path.is_symlink() for path in result.written)


def test_a_model_without_problems_in_a_group_is_hatched_not_a_zero_bar(graded_dir: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from llmrouter_collect.report.plots import _accuracy_by_group

    # small answered only `math` problems, org/large-1.5 only `law` ones
    figure = _accuracy_by_group(run_report([graded_dir]).report)
    FigureCanvasAgg(figure).draw()
    [axes] = figure.axes
    hatched = [patch for patch in axes.patches if patch.get_hatch() == "///"]
    assert len(hatched) == 2 and all(patch.get_width() == 100 for patch in hatched)
    assert [text.get_text() for text in axes.texts] == ["no problems", "no problems"]
    assert any("not 0%" in text.get_text() for text in axes.get_legend().get_texts())
    ticks = [label.get_text() for label in axes.get_xticklabels() if label.get_text()]
    assert ticks and all(tick.endswith("%") for tick in ticks), ticks


def test_models_with_the_same_figures_share_one_label(graded_dir: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from llmrouter_collect.report.plots import _accuracy_vs_cost

    small = graded_dir / "small.jsonl"
    records = [orjson.loads(line) for line in small.read_bytes().splitlines()]
    for record in records:
        record["model"] = "small-copy"
        record["category"] = "law"
    (graded_dir / "small-copy.jsonl").write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    figure = _accuracy_vs_cost(run_report([graded_dir]).report)
    assert figure is not None
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    [axes] = figure.axes
    labels = sorted(text.get_text() for text in axes.texts)
    assert labels == ["org/large-1.5", "small, small-copy"]
    ticks = [label.get_text() for label in axes.get_yticklabels() if label.get_text()]
    assert all(tick.endswith("%") and "." not in tick for tick in ticks), ticks


def test_point_labels_merge_equal_points_and_stack_near_ones() -> None:
    from llmrouter_collect.report.plots import _point_labels

    placed = _point_labels([1.0, 1.0, 1.001, 10.0], [50.0, 50.0, 50.2, 10.0], ["a", "b", "c", "d"])
    assert [(label, stack) for _, _, label, stack in placed] == [("c", 0), ("a, b", 1), ("d", 0)]


def test_models_with_the_same_pass_curve_share_one_line(graded_dir: Path) -> None:
    from llmrouter_collect.report.plots import _pass_at_k

    small = graded_dir / "small.jsonl"
    records = [{**orjson.loads(line), "model": "small-copy"} for line in small.read_bytes().splitlines()]
    (graded_dir / "small-copy.jsonl").write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    figure = _pass_at_k(run_report([graded_dir]).report)
    [axes] = figure.axes
    assert [line.get_label() for line in axes.get_lines()] == ["org/large-1.5", "small = small-copy"]
