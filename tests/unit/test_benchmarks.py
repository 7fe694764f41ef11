"""The benchmark catalogue: each benchmark's row mapping on real rows, local copies, `hf:` specs and column maps,
the Hugging Face cache path (offline), subsets across benchmarks, and `collect datasets`."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmrouter_collect.benchmarks import (
    CATALOGUE,
    GPQA_SHUFFLE_SEED,
    canonical_number,
    dataset_label,
    detect_benchmark,
    load_problems,
    parse_hf_spec,
    select_subset,
)
from llmrouter_collect.errors import DatasetError
from llmrouter_collect.records import Problem

DATA = Path(__file__).parent / "data" / "benchmarks"
BY_NAME = {benchmark.name: benchmark for benchmark in CATALOGUE}


def real_rows(name: str) -> list[dict[str, Any]]:
    """Real rows of a benchmark, copied into tests/unit/data/benchmarks (see the README there)."""
    return [orjson.loads(line) for line in (DATA / f"{name}.jsonl").read_bytes().splitlines() if line.strip()]


def mapped(name: str, rows: list[dict[str, Any]]) -> list[Problem]:
    mapper = BY_NAME[name].row_mapper()
    return [mapper(row, name) for row in rows]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


# Rows written for these tests in the Hub schemas (no real rows: see the README in tests/unit/data/benchmarks).
GPQA_ROWS: list[dict[str, Any]] = [
    {
        "Pre-Revision Question": "An older wording of the question.",
        "Question": "A ball is thrown straight up at 10 m/s (g = 10 m/s^2). How long until it returns to the hand?",
        "Correct Answer": " 2 s\n",
        "Incorrect Answer 1": "1 s",
        "Incorrect Answer 2": "4 s",
        "Incorrect Answer 3": "0.5 s ",
        "Explanation": "Up for v/g = 1 s, and as long down.",
        "Subdomain": "Physics (general)",
        "Record ID": "recTestRow000001",
        "High-level domain": "Physics",
        "Writer's Difficulty Estimate": "Easy",
    },
    {
        "Question": "Which element has the atomic number 6?",
        "Correct Answer": "Carbon",
        "Incorrect Answer 1": "Nitrogen",
        "Incorrect Answer 2": "Boron",
        "Incorrect Answer 3": "Oxygen",
        "Explanation": "Carbon has six protons.",
        "Subdomain": "Chemistry (general)",
        "Record ID": "recTestRow000002",
        "High-level domain": "Chemistry",
    },
]
HELLASWAG_ROWS: list[dict[str, Any]] = [
    {
        "ind": 7,
        "activity_label": "Making a sandwich",
        "ctx_a": "A woman lays two slices of bread on a cutting board.",
        "ctx_b": "she",
        "ctx": "A woman lays two slices of bread on a cutting board. she",
        "endings": [
            "spreads butter on one slice and adds cheese.",
            "throws the board into the lake.",
            "paints the bread blue with a roller.",
            "folds the cutting board in half.",
        ],
        "source_id": "activitynet~v_test0000001",
        "split": "val",
        "split_type": "indomain",
        "label": "0",
    },
    {
        "ind": 12,
        "activity_label": "Washing a car",
        "ctx_a": "A man sprays water over a red car.",
        "ctx_b": "he",
        "ctx": "A man sprays water over a red car. he",
        "endings": ["eats the sponge.", "climbs into the hose.", "scrubs the roof with a soapy sponge.", "sings."],
        "source_id": "activitynet~v_test0000002",
        "split": "val",
        "split_type": "zeroshot",
        "label": "2",
    },
]


# --- the catalogue, benchmark by benchmark ---------------------------------------------------------


def test_catalogue_entries_are_complete() -> None:
    names = [benchmark.name for benchmark in CATALOGUE]
    assert names == [
        "math500", "mmlu_pro", "gsm8k", "mmlu", "arc_challenge", "gpqa_diamond", "aime24", "aime25", "winogrande",
        "hellaswag",
    ]
    assert {b.name: b.kind for b in CATALOGUE} == {
        "math500": "math", "mmlu_pro": "mcq", "gsm8k": "number", "mmlu": "mcq", "arc_challenge": "mcq",
        "gpqa_diamond": "mcq", "aime24": "number", "aime25": "number", "winogrande": "mcq", "hellaswag": "mcq",
    }
    assert [b.name for b in CATALOGUE if b.gated] == ["gpqa_diamond"]
    assert BY_NAME["mmlu"].source == "cais/mmlu (all, test)"
    assert BY_NAME["aime24"].source == "HuggingFaceH4/aime_2024 (train)"


def test_gsm8k_takes_the_number_after_the_hashes() -> None:
    rows = real_rows("gsm8k")
    problems = mapped("gsm8k", rows)
    assert [p.answer_correct for p in problems] == ["18", "3", "1450000", "-10"]  # "#### 1,450,000" in the data
    first = problems[0]
    assert first.unique_id == "gsm8k/test/2b2e3f9639f6"  # SHA-256 of the question: independent of row order
    assert first.unique_id == "gsm8k/test/" + hashlib.sha256(rows[0]["question"].encode()).hexdigest()[:12]
    assert (first.question, first.category, first.answer_kind, first.prompt) == (
        rows[0]["question"], "GSM8K", "number", "gsm8k"
    )
    assert first.explanation_correct == rows[0]["answer"] and first.choices is None
    assert first.to_record_fields()["answer_kind"] == "number"


def test_mmlu_maps_the_index_and_the_subject_and_numbers_repeated_questions() -> None:
    rows = real_rows("mmlu")
    problems = mapped("mmlu", rows)
    assert problems[0].choices == ("0", "4", "2", "6")
    assert (problems[0].choice_index_correct, problems[0].answer_correct) == (1, "4")
    assert [p.category for p in problems] == ["abstract_algebra", "world_religions", *["college_physics"] * 2]
    assert problems[1].question == rows[1]["question"]  # leading space kept, as in the data
    # the same question twice in the data (MMLU has 105 such pairs): the second gets its own id
    assert rows[2] == rows[3]
    assert problems[3].unique_id == problems[2].unique_id + "-2"
    assert all(p.unique_id.startswith("mmlu/test/") and p.answer_kind == "mcq" for p in problems)


def test_arc_finds_the_answer_by_its_label_whatever_the_labels() -> None:
    problems = mapped("arc_challenge", real_rows("arc_challenge"))
    assert [p.unique_id for p in problems] == [
        "arc_challenge/Mercury_7175875",
        "arc_challenge/NYSEDREGENTS_2008_8_34",
        "arc_challenge/TIMSS_1995_8_J7",
        "arc_challenge/NYSEDREGENTS_2010_4_4",
    ]
    assert [len(p.choices or ()) for p in problems] == [4, 4, 5, 3]
    assert [p.correct_letter for p in problems] == ["C", "B", "D", "A"]  # answerKey "2" of labels 1–4 is B
    assert problems[1].answer_correct == "Kinetic energy increases and potential energy decreases."
    assert problems[0].answer_correct == "Planetary days will become shorter."


def test_arc_answer_key_outside_the_labels_is_an_error(tmp_path: Path) -> None:
    row = {**real_rows("arc_challenge")[1], "answerKey": "B"}  # letters on a row labelled 1–4
    path = write_jsonl(tmp_path / "arc.jsonl", [row])
    with pytest.raises(DatasetError) as info:
        load_problems([str(path)])
    assert str(info.value).startswith(
        f"{path} (ARC-Challenge schema), line 1, field 'answerKey': 'B' is not one of the labels 1, 2, 3, 4"
    )


def test_gpqa_options_are_shuffled_by_a_stable_hash_of_the_record_id() -> None:
    problems = mapped("gpqa_diamond", GPQA_ROWS)
    ball, carbon = problems
    assert ball.unique_id == "gpqa_diamond/recTestRow000001"
    assert sorted(ball.choices or ()) == ["0.5 s", "1 s", "2 s", "4 s"]  # stripped, as common code does
    assert ball.answer_correct == "2 s" and (ball.choices or ())[ball.choice_index_correct or 0] == "2 s"
    assert (ball.category, carbon.category) == ("Physics", "Chemistry")
    assert ball.explanation_correct == "Up for v/g = 1 s, and as long down."
    # golden: the order must never change, or results of earlier runs would no longer match their options
    assert ball.choices == GOLDEN_GPQA_ORDER
    assert GPQA_SHUFFLE_SEED == 0


GOLDEN_GPQA_ORDER = ("2 s", "4 s", "1 s", "0.5 s")


def test_gpqa_correct_option_lands_anywhere_and_the_seed_changes_the_order() -> None:
    rows = [{**GPQA_ROWS[1], "Record ID": f"rec{n:05d}"} for n in range(40)]
    positions = collections.Counter(p.choice_index_correct for p in mapped("gpqa_diamond", rows))
    assert set(positions) == {0, 1, 2, 3}
    columns = BY_NAME["gpqa_diamond"].columns
    assert columns is not None
    other = dataclasses.replace(columns, shuffle_seed=1).mapper()
    reseeded = [other(row, "gpqa_diamond") for row in rows]
    assert [p.choices for p in reseeded] != [p.choices for p in mapped("gpqa_diamond", rows)]
    assert all((p.choices or ())[p.choice_index_correct or 0] == "Carbon" for p in reseeded)


def test_aime_answers_are_integers_whether_strings_or_ints() -> None:
    aime24 = mapped("aime24", real_rows("aime24"))
    assert [(p.unique_id, p.answer_correct) for p in aime24] == [("aime24/60", "204"), ("aime24/83", "45")]
    assert aime24[1].explanation_correct is not None and aime24[1].explanation_correct.endswith("~akliu")
    aime25 = mapped("aime25", real_rows("aime25"))
    assert [(p.unique_id, p.answer_correct) for p in aime25] == [("aime25/1", "70"), ("aime25/2", "588")]
    assert {p.answer_kind for p in aime24 + aime25} == {"number"}
    assert {p.prompt for p in aime24 + aime25} == {"aime"}
    assert [p.category for p in aime24 + aime25] == ["AIME 2024"] * 2 + ["AIME 2025"] * 2


def test_winogrande_two_options_and_a_one_based_string_answer() -> None:
    rows = real_rows("winogrande")
    problems = mapped("winogrande", rows)
    assert [p.choices for p in problems] == [("Sarah", "Maria")] * 2
    assert [p.answer_correct for p in problems] == ["Maria", "Sarah"]  # answers "2" and "1"
    assert problems[0].question == rows[0]["sentence"] and "_" in problems[0].question
    assert problems[0].unique_id != problems[1].unique_id  # twin sentences differ in one word
    assert problems[0].unique_id.startswith("winogrande/validation/")


def test_hellaswag_context_and_endings() -> None:
    problems = mapped("hellaswag", HELLASWAG_ROWS)
    assert [p.unique_id for p in problems] == ["hellaswag/validation/7", "hellaswag/validation/12"]
    assert problems[0].question == "A woman lays two slices of bread on a cutting board. she"
    assert [p.choice_index_correct for p in problems] == [0, 2]  # the label is a string
    assert problems[1].answer_correct == "scrubs the roof with a soapy sponge."
    assert [p.category for p in problems] == ["Making a sandwich", "Washing a car"]


# --- local copies in the Hub schemas ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("gsm8k", real_rows("gsm8k")),
        ("mmlu", real_rows("mmlu")),
        ("arc_challenge", real_rows("arc_challenge")),
        ("aime24", real_rows("aime24")),
        ("aime25", real_rows("aime25")),
        ("winogrande", real_rows("winogrande")),
        ("gpqa_diamond", GPQA_ROWS),
        ("hellaswag", HELLASWAG_ROWS),
    ],
)
def test_local_copies_are_recognised(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> None:
    detected = detect_benchmark(rows[0])
    assert detected is not None and detected.name == name
    path = write_jsonl(tmp_path / f"{name}_copy.jsonl", rows)
    assert load_problems([str(path)]) == mapped_as(name, rows, f"{name}_copy")
    parquet = tmp_path / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    assert load_problems([str(parquet)]) == mapped_as(name, rows, name)


def mapped_as(name: str, rows: list[dict[str, Any]], dataset: str) -> list[Problem]:
    return [dataclasses.replace(problem, dataset=dataset) for problem in mapped(name, rows)]


def test_unified_and_older_schemas_are_not_taken_for_a_new_benchmark() -> None:
    assert detect_benchmark({"unique_id": "q", "question": "x", "answer_correct": "1", "category": "c"}) is None
    math500 = {"problem": "x", "answer": "1", "subject": "Algebra", "unique_id": "test/a/1.json", "level": 1}
    assert (detect_benchmark(math500) or BY_NAME["gsm8k"]).name == "math500"
    aime = real_rows("aime24")[0]
    assert (detect_benchmark(aime) or BY_NAME["gsm8k"]).name == "aime24"  # also has MATH-500's problem/answer


def test_subsets_spread_over_several_benchmarks(tmp_path: Path) -> None:
    names = ("gsm8k", "mmlu", "arc_challenge")
    paths = [str(write_jsonl(tmp_path / f"{name}.jsonl", real_rows(name))) for name in names]
    everything = load_problems(paths)
    subset = load_problems(paths, 6)
    assert collections.Counter(p.dataset for p in subset) == {"gsm8k": 2, "mmlu": 2, "arc_challenge": 2}
    assert len({p.category for p in subset if p.dataset == "mmlu"}) == 2
    assert set(map(id, select_subset(everything, 5))) <= set(map(id, everything))
    assert {p.unique_id for p in load_problems(paths, 5)} < {p.unique_id for p in subset}  # nested


def test_catalogue_names_labels_and_aliases() -> None:
    assert dataset_label(["gsm8k", "MMLU", "arc-challenge"]) == "GSM8K_MMLU_ARC_Challenge"
    assert dataset_label(["gpqa", "AIME-2024", "aime25", "winogrande", "hellaswag"]) == (
        "GPQA_Diamond_AIME_2024_AIME_2025_WinoGrande_HellaSwag"
    )
    assert dataset_label(["hf:someone/trivia:easy@validation"]) == "someone_trivia_easy_validation"


# --- numbers in answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("18", "18"), ("1,450,000", "1450000"), ("033", "33"), ("-10", "-10"), ("2.50", "2.5"), ("$5", "5"),
     ("0", "0"), ("-0", "0"), ("1,5", None), ("x", None), ("12 apples", None)],
)
def test_canonical_number(text: str, number: str | None) -> None:
    assert canonical_number(text) == number


# --- hf: specs and column maps ---------------------------------------------------------------------


def test_hf_spec_parsing() -> None:
    spec = parse_hf_spec("hf:someone/trivia")
    assert (spec.repo, spec.config, spec.split, spec.name) == ("someone/trivia", None, "test", "someone_trivia")
    spec = parse_hf_spec("hf:someone/trivia:hard@validation")
    assert (spec.repo, spec.config, spec.split) == ("someone/trivia", "hard", "validation")
    assert parse_hf_spec("hf:someone/trivia@train").split == "train"
    with pytest.raises(DatasetError, match="not a Hugging Face spec"):
        parse_hf_spec("hf:trivia")


TRIVIA_ROWS: list[dict[str, Any]] = [
    {"qid": 1, "prompt": "What is 6 times 7?", "gold": "42", "topic": "arithmetic"},
    {"qid": 2, "prompt": "Capital of France?", "gold": "Paris", "topic": "geography"},
]
TRIVIA_MAP = 'question = "prompt"\nanswer = "gold"\nid = "qid"\nid_prefix = "trivia/"\ncategory = "topic"\n'


def test_a_column_map_reads_a_local_file_of_any_schema(tmp_path: Path) -> None:
    path = tmp_path / "trivia.parquet"
    pq.write_table(pa.Table.from_pylist(TRIVIA_ROWS), path)
    mapping = tmp_path / "map.toml"
    mapping.write_text(TRIVIA_MAP, encoding="utf-8")
    problems = load_problems([str(path)], dataset_map=mapping)
    assert problems == [
        Problem("trivia/1", "What is 6 times 7?", "42", "arithmetic", "trivia", answer_kind="math"),
        Problem("trivia/2", "Capital of France?", "Paris", "geography", "trivia", answer_kind="math"),
    ]


def test_a_flat_column_map_leaves_data_that_needs_none(tmp_path: Path) -> None:
    trivia = write_jsonl(tmp_path / "trivia.jsonl", TRIVIA_ROWS)
    gsm8k = write_jsonl(tmp_path / "gsm8k.jsonl", real_rows("gsm8k"))
    unified = write_jsonl(tmp_path / "mine.jsonl", [{"unique_id": "m1", "question": "1+1?", "answer_correct": "2",
                                                     "category": "c"}])
    mapping = tmp_path / "map.toml"
    mapping.write_text(TRIVIA_MAP, encoding="utf-8")
    problems = load_problems([str(trivia), str(gsm8k), str(unified)], dataset_map=mapping)
    assert [p.dataset for p in problems] == ["trivia"] * 2 + ["gsm8k"] * 4 + ["mine"]
    assert problems[2] == mapped_as("gsm8k", real_rows("gsm8k"), "gsm8k")[0]


def test_a_column_map_for_mcqs_by_table(tmp_path: Path) -> None:
    rows = [{"q": "Pick the even number.", "a": "7", "b": "8", "c": "9", "key": "B"}]
    path = write_jsonl(tmp_path / "quiz.jsonl", rows)
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '["quiz.jsonl"]\nquestion = "q"\nchoices = ["a", "b", "c"]\nanswer = "key"\nanswer_format = "letter"\n'
        'category_value = "numbers"\n',
        encoding="utf-8",
    )
    [problem] = load_problems([str(path)], dataset_map=mapping)
    assert (problem.choices, problem.choice_index_correct, problem.answer_correct) == (("7", "8", "9"), 1, "8")
    assert problem.category == "numbers" and problem.answer_kind == "mcq"
    assert len(problem.unique_id) == 12  # a hash of the question and options


def test_a_wrong_column_map_names_the_columns_the_data_has(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "trivia.jsonl", TRIVIA_ROWS)
    mapping = tmp_path / "map.toml"
    mapping.write_text('question = "question"\nanswer = "gold"\ncategory = "subject"\n', encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_problems([str(path)], dataset_map=mapping)
    assert info.value.message == (
        f"{path}: the column mapping names 'question', 'subject', which the data does not have; "
        "its columns are: qid, prompt, gold, topic"
    )
    assert info.value.hint is not None and "--dataset-map" in info.value.hint


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('question = "q"\nanswer = "a"\ncolour = "red"\n', "unknown key(s) colour"),
        ('answer = "a"\n', "`question` (the question's column) is required"),
        ('question = "q"\nanswer = "a"\nanswer_format = "roman"\n', "answer_format 'roman' is not one of"),
        ('question = "q"\nanswer = "a"\nanswer_format = "index"\n', "needs `choices`"),
        ('question = "q"\nanswer = "a"\nkind = "essay"\n', "kind 'essay' is not one of mcq, math, number"),
        ('question = "q"\n', "`answer` (the answer's column) is required"),
        ("question = \n", "not valid TOML"),
    ],
)
def test_bad_column_maps(tmp_path: Path, text: str, words: str) -> None:
    path = write_jsonl(tmp_path / "trivia.jsonl", TRIVIA_ROWS)
    mapping = tmp_path / "map.toml"
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match="dataset map") as info:
        load_problems([str(path)], dataset_map=mapping)
    assert words in info.value.message


def test_a_mapped_row_with_a_bad_value_names_its_row_and_field(tmp_path: Path) -> None:
    rows = [*TRIVIA_ROWS, {"qid": 3, "prompt": "Number?", "gold": "many", "topic": "x"}]
    path = write_jsonl(tmp_path / "trivia.jsonl", rows)
    mapping = tmp_path / "map.toml"
    mapping.write_text(TRIVIA_MAP + 'kind = "number"\n', encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_problems([str(path)], dataset_map=mapping)
    assert info.value.message.startswith(f"{path} (mapped), line 2, field 'gold': 'Paris' is not a number")
    assert info.value.message.endswith("(and 1 more invalid row)")


# --- the Hugging Face cache, with the Hub offline --------------------------------------------------

# A cache laid out as `datasets` leaves it after a download (<cache>/<org>___<name>/<config>/0.0.0/<hash>/), built
# with the `datasets` JSON builder from rows: Hub datasets must load from it with HF_HUB_OFFLINE=1.
_MAKE_CACHE = """
import os, shutil
from datasets.packaged_modules.json.json import Json

def cache(repo, config, split, rows_path):
    root = os.environ["HF_DATASETS_CACHE"]
    name = repo.split("/")[1]
    builder = Json(
        cache_dir=root, dataset_name=name, config_name=config, data_files={split: rows_path}, hash="0123abcd"
    )
    builder.download_and_prepare()
    built = os.path.join(root, builder.dataset_name)
    [folder] = os.listdir(built)
    shutil.move(os.path.join(built, folder), os.path.join(root, repo.split("/")[0] + "___" + name, config))
    shutil.rmtree(built)
"""

_LOAD = _MAKE_CACHE + """
import json, sys
from pathlib import Path
from llmrouter_collect.benchmarks import load_problems
from llmrouter_collect.errors import DatasetError
gsm8k, trivia, mapping = sys.argv[1:4]
cache("openai/gsm8k", "main", "test", gsm8k)
cache("someone/trivia", "default", "validation", trivia)
out = {}
out["gsm8k"] = [p.to_record_fields() for p in load_problems(["gsm8k"])]
out["hf_known_schema"] = [p.unique_id for p in load_problems(["hf:openai/gsm8k:main"])]
mapped = load_problems(["hf:someone/trivia@validation"], dataset_map=Path(mapping))
out["hf_mapped"] = [p.to_record_fields() for p in mapped]
try:
    load_problems(["hf:someone/trivia@validation"])
except DatasetError as err:
    out["hf_unmapped"] = str(err)
try:
    load_problems(["gpqa_diamond"])
except DatasetError as err:
    out["gated"] = str(err)
print(json.dumps(out))
"""


def offline_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
    }


def test_catalogue_and_hf_specs_load_from_the_cache_offline(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text('["hf:someone/trivia"]\n' + TRIVIA_MAP, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable, "-c", _LOAD, str(DATA / "gsm8k.jsonl"),
            str(write_jsonl(tmp_path / "trivia.jsonl", TRIVIA_ROWS)), str(mapping),
        ],
        env=offline_env(tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["gsm8k"] == [p.to_record_fields() for p in mapped("gsm8k", real_rows("gsm8k"))]
    assert out["hf_known_schema"] == [p.unique_id for p in mapped("gsm8k", real_rows("gsm8k"))]
    assert [(r["unique_id"], r["answer_correct"], r["dataset"]) for r in out["hf_mapped"]] == [
        ("trivia/1", "42", "someone_trivia_validation"), ("trivia/2", "Paris", "someone_trivia_validation")
    ]
    message, hint = out["hf_unmapped"].split("\n")
    assert message == (
        "hf:someone/trivia@validation: no column mapping for this dataset (its columns are: qid, prompt, gold, topic)"
    )
    assert "--dataset-map" in hint
    message, hint = out["gated"].split("\n")
    assert message.startswith("cannot load gpqa_diamond (Idavidrein/gpqa, gpqa_diamond, split train)")
    assert "gated on the Hugging Face Hub" in hint and "https://huggingface.co/datasets/Idavidrein/gpqa" in hint
    assert "huggingface-cli login" in hint


# --- collect datasets ------------------------------------------------------------------------------


def test_collect_datasets_lists_the_catalogue_with_its_cache_state(tmp_path: Path) -> None:
    env = offline_env(tmp_path)
    (tmp_path / "hf" / "datasets" / "cais___mmlu" / "all" / "0.0.0").mkdir(parents=True)
    command = [sys.executable, "-m", "llmrouter_collect", "datasets"]
    listed = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert list(rows) == [*BY_NAME, "sample"]
    assert rows["mmlu"] == {
        "name": "mmlu", "source": "cais/mmlu (all, test)", "size": 14042, "kind": "mcq",
        "categories": "subject (57)", "gated": False, "cached": True,
    }
    assert [name for name, row in rows.items() if row["cached"]] == ["mmlu", "sample"]
    assert rows["gpqa_diamond"]["gated"] and rows["gsm8k"]["kind"] == "number"
    table = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.split()[:3] == ["gpqa_diamond", "Idavidrein/gpqa", "(gpqa_diamond,"] for line in lines)
    assert any("hellaswag" in line and "Rowan/hellaswag (validation)" in line and "10,042" in line for line in lines)



@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("gsm8k", real_rows("gsm8k")),
        ("mmlu", real_rows("mmlu")),
        ("arc_challenge", real_rows("arc_challenge")),
        ("aime24", real_rows("aime24")),
        ("aime25", real_rows("aime25")),
        ("winogrande", real_rows("winogrande")),
        ("gpqa_diamond", GPQA_ROWS),
        ("hellaswag", HELLASWAG_ROWS),
    ],
)
def test_csv_copies_written_by_pandas_are_recognised(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> None:
    import pandas  # a dev dependency

    path = tmp_path / f"{name}.csv"
    pandas.DataFrame(rows).to_csv(path, index=False)  # lists and dicts become Python literals, ints become text
    assert load_problems([str(path)]) == mapped_as(name, rows, name)


def test_csv_copy_of_mmlu_pro(tmp_path: Path) -> None:
    import pandas  # a dev dependency

    from llmrouter_collect.benchmarks import map_mmlu_pro_row

    row = {
        "question_id": 8026, "question": "Which expression is equal to 720?",
        "options": ["7x20", "9x90", "8x80", "9x80"], "answer": "D", "answer_index": 3, "cot_content": "",
        "category": "math", "src": "ori_mmlu-elementary_mathematics",
    }
    path = tmp_path / "mmlu_pro.csv"
    pandas.DataFrame([row]).to_csv(path, index=False)
    assert load_problems([str(path)]) == [map_mmlu_pro_row(row)]
