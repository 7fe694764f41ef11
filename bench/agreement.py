"""Agreement of `collect extract` with published graders and labels on the shared dev outputs.

Usage: .venv/bin/python bench/agreement.py [--data DIR] [--show N]

MMLU-Pro: our letters against the official MMLU-Pro run's `pred` (per model), and our accuracy against theirs.
Structured: the same responses rewritten as {"reasoning": <response>, "answer": <official letter>} in a ```json
fence; the share read as the field's letter.
Math: our verdicts against `math_dev_labels.jsonl`, and plain math-verify (parse the whole response, verify
against the reference) against the same labels. Disagreements are printed for judging by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from llmrouter_collect.extract.runner import grade_file

DEFAULT_DATA = Path("/work/shared/data/outputs")


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def mmlu(data: Path, show: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mmlu.graded.jsonl"
        grade_file(data / "mmlu_pro_dev.jsonl", out)
        graded = load(out)
    rows = load(data / "mmlu_pro_dev_official_pred.jsonl")
    official = {(row["unique_id"], row["response_index"]): row for row in rows}
    per_model: dict[str, Counter[str]] = defaultdict(Counter)
    shown = 0
    print("== MMLU-Pro (210 questions x 5 models)")
    for record in graded:
        for index, response in enumerate(record["responses"]):
            row = official[(record["unique_id"], index)]
            counts = per_model[row["model"]]
            ours, theirs, gold = response["extracted_answer"], row["pred"], row["answer"]
            counts["n"] += 1
            counts["same"] += ours == theirs
            counts["ours_correct"] += ours == gold
            counts["theirs_correct"] += theirs == gold
            counts["ours_none"] += ours is None
            counts["theirs_none"] += theirs is None
            if ours != theirs and shown < show:
                shown += 1
                text = response["full_response"][-300:].replace("\n", "\\n")
                print(f"-- {record['unique_id']}#{index} {row['model']}: ours={ours} "
                      f"({response['extraction_rule']}) official={theirs} gold={gold}\n   ...{text}")
    print(f"{'model':32} {'same letter':>11} {'ours acc':>9} {'official acc':>12} "
          f"{'ours none':>9} {'official none':>13}")
    total: Counter[str] = Counter()
    for model, counts in per_model.items():
        total.update(counts)
        print(f"{model:32} {counts['same'] / counts['n']:11.3f} {counts['ours_correct'] / counts['n']:9.3f} "
              f"{counts['theirs_correct'] / counts['n']:12.3f} {counts['ours_none']:9d} {counts['theirs_none']:13d}")
    print(f"{'all':32} {total['same'] / total['n']:11.3f} {total['ours_correct'] / total['n']:9.3f} "
          f"{total['theirs_correct'] / total['n']:12.3f} {total['ours_none']:9d} {total['theirs_none']:13d}")


def structured(data: Path) -> None:
    """The MMLU-Pro dev responses rewritten in the structured format of JSON-answer prompts: the response becomes
    the `reasoning` string and the official run's letter the `answer` field, in a ```json fence. Every such
    response should be read as its field's letter, whatever letters its reasoning names."""
    rows = {(row["unique_id"], row["response_index"]): row for row in load(data / "mmlu_pro_dev_official_pred.jsonl")}
    records = []
    for record in load(data / "mmlu_pro_dev.jsonl"):
        responses = []
        for index, response in enumerate(record["responses"]):
            pred = rows[(record["unique_id"], index)]["pred"]
            if pred is not None:
                body = json.dumps({"reasoning": response["full_response"].strip(), "answer": pred}, ensure_ascii=False)
                responses.append({"full_response": f"```json\n{body}\n```", "expected": pred})
        records.append({**record, "responses": responses})
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "structured.jsonl", Path(tmp) / "structured.graded.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        grade_file(source, out)
        graded = load(out)
    responses = [response for record in graded for response in record["responses"]]
    read = sum(response["extracted_answer"] == response["expected"] for response in responses)
    unparsed = sum(response["extracted_answer"] is None for response in responses)
    print(f"\n== MMLU-Pro dev as JSON answers ({len(responses)} responses with an official letter): field read "
          f"{read / len(responses):.3f}, unparsed {unparsed}")


def math_dev(data: Path, show: int) -> None:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "math.graded.jsonl"
        started = time.monotonic()
        summary = grade_file(data / "math_dev.jsonl", out)
        elapsed = time.monotonic() - started
        graded = load(out)
    labels = {(row["unique_id"], row["response_index"]): row for row in load(data / "math_dev_labels.jsonl")}
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    shown = 0
    print(f"\n== math (609 responses; graded in {elapsed:.1f}s, {summary.symbolic_checks} symbolic checks, "
          f"{summary.timeouts} timeouts)")
    for record in graded:
        gold_parsed = parse("$" + record["answer_correct"] + "$")
        for index, response in enumerate(record["responses"]):
            label = labels[(record["unique_id"], index)]
            source = label["label_source"].split(" (")[0].split(":")[0]
            counts = per_source[source]
            truth = bool(label["final_answer_correct"])
            ours = response["is_correct"]
            plain = bool(verify(gold_parsed, parse(response["full_response"])))
            counts["n"] += 1
            counts["ours"] += ours == truth
            counts["plain"] += plain == truth
            counts["unparsed"] += response["outcome"] == "unparsed"
            if ours != truth and shown < show:
                shown += 1
                text = response["full_response"][-250:].replace("\n", "\\n")
                print(f"-- {record['unique_id']}#{index} label={truth} ours={ours} plain_mv={plain} "
                      f"extracted={response['extracted_answer']!r} ({response['extraction_rule']}) "
                      f"gold={record['answer_correct']!r}\n   ...{text}")
    print(f"{'label source':45} {'n':>4} {'ours agree':>10} {'math-verify agree':>17} {'ours unparsed':>13}")
    total: Counter[str] = Counter()
    for source, counts in sorted(per_source.items()):
        total.update(counts)
        print(f"{source[:45]:45} {counts['n']:4d} {counts['ours'] / counts['n']:10.3f} "
              f"{counts['plain'] / counts['n']:17.3f} {counts['unparsed']:13d}")
    print(f"{'all':45} {total['n']:4d} {total['ours'] / total['n']:10.3f} {total['plain'] / total['n']:17.3f} "
          f"{total['unparsed']:13d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--show", type=int, default=0, help="print this many disagreements per benchmark")
    parser.add_argument("--only", choices=["mmlu", "structured", "math"], default=None)
    args = parser.parse_args()
    if args.only in (None, "mmlu"):
        mmlu(args.data, args.show)
    if args.only in (None, "structured"):
        structured(args.data)
    if args.only in (None, "math"):
        math_dev(args.data, args.show)


if __name__ == "__main__":
    main()
