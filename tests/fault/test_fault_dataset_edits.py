"""The dataset edited between two runs on one results file: a top-up must refuse, not mix new samples of the
new text with answers to the old one. Exit 1, a message naming the changed problem, the file byte-identical,
nothing asked; with the dataset restored, the same command completes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.fault.harness import (
    Checker,
    TaggedServer,
    Trials,
    infer_args,
    make_rows,
    run_collect,
    uid_of,
    write_rows,
)


def test_dataset_edited_between_runs_is_refused(trials: Trials) -> None:
    def trial(rng: random.Random, directory: Path, index: int) -> None:
        problems = rng.randint(4, 12)
        rows = make_rows(problems)
        dataset = write_rows(directory / "problems.jsonl", rows)
        original = dataset.read_bytes()
        out = directory / "out" / "results.jsonl"
        with TaggedServer() as server:
            checker = Checker(out, server, [uid_of(f"{i:03d}") for i in range(problems)], directory)
            first = run_collect(infer_args(server, dataset, out, 1))
            assert first.returncode == 0, first.brief()
            checker.after_run(first)
            before = out.read_bytes()
            edited = json.loads(json.dumps(rows))
            victim = rng.randrange(problems)
            what = rng.choice(["answer", "question"])
            row = edited[victim]
            if what == "question":
                row["question"] = row["question"] + " Give the answer in words."
            elif row["choices"] is not None:  # another option becomes the correct one
                row["choice_index_correct"] = (row["choice_index_correct"] + 1) % len(row["choices"])
                row["answer_correct"] = row["choices"][row["choice_index_correct"]]
            else:
                row["answer_correct"] = str(int(row["answer_correct"]) + 1)
            write_rows(dataset, edited)
            checker.reset_server("n", 0.0)
            k = rng.randint(2, 4)
            refused = run_collect(infer_args(server, dataset, out, k))
            context = f"edited the {what} of {row['unique_id']}; "
            assert refused.returncode == 1, context + refused.brief()
            assert row["unique_id"] in refused.stderr, context + "the message must name the problem: " + refused.brief()
            refused.assert_clean_output()
            assert out.read_bytes() == before, context + "the results file was changed by the refused run"
            assert server.completion_requests() == [], context + "the refused run sent requests"
            dataset.write_bytes(original)
            checker.final(run_collect(infer_args(server, dataset, out, k)), k)

    trials.run(trial)
