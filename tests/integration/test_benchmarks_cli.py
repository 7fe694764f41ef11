"""Catalogue benchmarks end to end: `collect infer` on local copies of GSM8K and WinoGrande (real rows) against the
test server, then `collect extract`: the benchmarks' prompts are sent, records carry `answer_kind`, and number
answers are graded as numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import OpenAIServer

DATA = Path(__file__).parents[1] / "unit" / "data" / "benchmarks"

ANSWERS = {
    "Janet": "She sells 16 - 3 - 4 = 9 eggs at $2 each.\n\nThe final answer is $\\boxed{\\$18.00}$.",
    "robe": "2 + 1 = 3 bolts.\n#### 3",
    "research": "5 * 200,000 + 450,000 = 1,450,000.\n\nSo the research cost \\boxed{1{,}450{,}000} dollars.",
    "temperature": "Checking: 3 countries, -48 + 21 - 3 = -30 and -30 / 3 = -10, but the answer is \\boxed{-30}.",
}


def answer(body: dict[str, Any], index: int) -> str:
    prompt = body["messages"][-1]["content"]
    if prompt.startswith("Fill in the blank"):
        return "Maria is the worse surgeon here. The answer is (B)."
    return next(text for key, text in ANSWERS.items() if key in prompt)


def test_gsm8k_and_winogrande_copies_through_infer_and_extract(tmp_path: Path) -> None:
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_bytes((DATA / "gsm8k.jsonl").read_bytes())
    winogrande = tmp_path / "winogrande.jsonl"
    winogrande.write_bytes((DATA / "winogrande.jsonl").read_bytes())
    results = tmp_path / "run.jsonl"
    env = {**os.environ, "COLUMNS": "200"}
    with OpenAIServer(answer_fn=answer) as server:
        infer = subprocess.run(
            [sys.executable, "-m", "llmrouter_collect", "infer", "--dataset", f"{gsm8k},{winogrande}", "--k", "2",
             "--api-base", server.url, "--output-file", str(results)],
            capture_output=True, text=True, env=env, timeout=120,
        )
        assert infer.returncode == 0, infer.stderr
        prompts = {request.prompt for request in server.completion_requests()}
    assert len(prompts) == 6
    assert sum(p.startswith("Solve the following math word problem.") for p in prompts) == 4
    assert sum(p.startswith("Fill in the blank (_) in the sentence below") for p in prompts) == 2
    extract = subprocess.run(
        [sys.executable, "-m", "llmrouter_collect", "extract", "-i", str(results)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert extract.returncode == 0, extract.stderr
    graded = {
        record["answer_correct"]: record
        for record in map(json.loads, (tmp_path / "run.graded.jsonl").read_text().splitlines())
    }
    assert {record["answer_kind"] for record in graded.values()} == {"number", "mcq"}
    verdicts = {
        gold: {(response["extracted_answer"], response["outcome"]) for response in record["responses"]}
        for gold, record in graded.items()
    }
    assert verdicts == {
        "18": {("18", "correct")},
        "3": {("3", "correct")},
        "1450000": {("1450000", "correct")},
        "-10": {("-30", "wrong")},  # the boxed final answer, not the -10 of the reasoning
        "Maria": {("B", "correct")},
        "Sarah": {("B", "wrong")},
    }
