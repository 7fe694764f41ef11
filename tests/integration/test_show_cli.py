"""`collect show`: responses beside their verdicts, filtered, shortened with the end kept, safe against hostile text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.integration.test_report_cli import PROBLEMS, graded_record
from typer.testing import CliRunner

from llmrouter_collect.cli import app

runner = CliRunner()

HOSTILE = (
    "\x1b[31mRED\x1b]0;pwned\x07 [bold]not markup[/bold] <script>alert(1)</script> \u202eevil "
    "</pre><img src=x onerror=alert(2)>"
)


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def records(model: str, position: int) -> list[dict[str, Any]]:
    return [graded_record(model, uid, spec[0], spec[position]) for uid, spec in PROBLEMS.items()]  # type: ignore[arg-type]


def ungraded(record: dict[str, Any]) -> dict[str, Any]:
    record = dict(record)
    record.pop("extractor_version")
    record["responses"] = [
        {key: value for key, value in response.items()
         if key not in ("extracted_answer", "is_correct", "outcome", "extraction_rule")}
        for response in record["responses"]
    ]  # fmt: skip
    return record


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["show", *args, "--no-pager"])


def test_filters_by_outcome_and_model_and_shows_the_verdict(tmp_path: Path) -> None:
    write(tmp_path / "tiny.graded.jsonl", records("tiny", 1))
    write(tmp_path / "big.graded.jsonl", records("org/big", 2))
    result = invoke(str(tmp_path), "--outcome", "unparsed", "--model", "tiny")
    assert result.exit_code == 0, result.output
    out = result.stdout
    # tiny has one unparsed response: geometry/4, sample 2
    assert out.count("sample ") == 1
    assert "test/geometry/4.json" in out and "sample 2" in out and "unparsed" in out
    assert "Compute $\\frac{2}{4}$." in out  # the question
    assert "reference" in out and "\\frac{1}{2}" in out
    assert "org/big" not in out
    assert "1 response(s) shown (model tiny · outcome unparsed)" in result.stderr


def test_extracted_answer_and_rule_are_shown(tmp_path: Path) -> None:
    write(tmp_path / "big.graded.jsonl", records("org/big", 2))
    result = invoke(str(tmp_path / "big.graded.jsonl"), "--problem", "test/algebra/1.json", "--outcome", "correct")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sample ") == 3
    assert "extracted \\frac{1}{2}" in result.stdout
    assert "rule boxed" in result.stdout


def test_problem_pattern_category_and_limit(tmp_path: Path) -> None:
    write(tmp_path / "tiny.graded.jsonl", records("tiny", 1))
    result = invoke(str(tmp_path), "--problem", "test/geometry/*", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sample ") == 2
    assert "algebra" not in result.stdout.replace("Algebra", "")
    assert "more responses match: raise --limit" in result.stderr
    result = invoke(str(tmp_path), "--category", "geometry", "--limit", "0")  # any case; 0 shows all
    assert result.stdout.count("sample ") == 6
    assert "more responses match" not in result.stderr


def test_a_long_response_keeps_its_end(tmp_path: Path) -> None:
    rows = records("tiny", 1)
    rows[0]["responses"][0]["full_response"] = "START " + "step. " * 5_000 + "so the answer is \\boxed{FINAL}."
    write(tmp_path / "tiny.graded.jsonl", rows)
    result = invoke(str(tmp_path), "--problem", "test/algebra/1.json", "--limit", "1", "--max-chars", "400")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "START" in out and "\\boxed{FINAL}" in out
    assert "characters cut" in out
    assert len(out) < 3_000


def test_hostile_text_cannot_drive_the_terminal_or_the_page(tmp_path: Path) -> None:
    rows = records("tiny", 1)
    rows[0]["responses"][0]["full_response"] = HOSTILE + " the answer is \\boxed{7}"
    rows[0]["problem"] = "<b>bold?</b> \x1b[2J"
    rows[0]["model"] = "<i>m</i>"
    write(tmp_path / "tiny.graded.jsonl", rows)
    result = invoke(str(tmp_path), "--problem", "test/algebra/1.json", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[31mRED" in result.stdout  # shown, as a visible escape
    assert "[bold]not markup[/bold]" in result.stdout  # rich markup is not interpreted

    page = tmp_path / "view.html"
    result = invoke(str(tmp_path), "--problem", "test/algebra/1.json", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<script" not in text and "<img" not in text and "<i>m</i>" not in text and "<b>bold?</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    assert "\x1b" not in text and "\u202e" not in text
    assert text.count("<article>") == 3
    assert f"wrote {page}" in result.stderr


def test_raw_results_show_responses_without_verdicts(tmp_path: Path) -> None:
    raw = write(tmp_path / "tiny.jsonl", [ungraded(record) for record in records("tiny", 1)])
    result = invoke(str(raw), "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "not graded" in result.stdout and "so the answer is" in result.stdout
    result = invoke(str(raw), "--outcome", "wrong")
    assert result.exit_code == 0
    assert "no response matches" in result.stderr
    assert "12 responses are not graded, so --outcome does not match them" in result.stderr


def test_a_directory_shows_the_graded_copy_of_a_results_file(tmp_path: Path) -> None:
    write(tmp_path / "tiny.jsonl", [ungraded(record) for record in records("tiny", 1)])
    write(tmp_path / "tiny.graded.jsonl", records("tiny", 1))
    result = invoke(str(tmp_path), "--limit", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sample ") == 12
    assert "not graded" not in result.stdout
    assert "tiny.jsonl" not in result.stderr  # the normal layout: nothing to warn about


def test_bad_arguments_are_clear(tmp_path: Path) -> None:
    write(tmp_path / "tiny.graded.jsonl", records("tiny", 1))
    result = invoke(str(tmp_path), "--outcome", "wrnog")
    assert result.exit_code == 1
    assert "unknown outcome 'wrnog'" in result.stderr
    result = invoke(str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr
    dataset = write(tmp_path / "data.jsonl", [{"unique_id": "1", "question": "q?", "answer_correct": "1"}])
    result = invoke(str(dataset))
    assert result.exit_code == 1
    assert "is not a results file" in result.stderr
    result = invoke(str(tmp_path), "--limit", "0")  # found in a directory: skipped with a warning
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sample ") == 12
    assert f"skipped {dataset}: not a results file" in result.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_in_a_terminal_the_output_goes_through_the_pager(tmp_path: Path) -> None:
    rows = records("tiny", 1)
    rows[0]["responses"][0]["full_response"] = HOSTILE + " the answer is \\boxed{7}"
    graded = write(tmp_path / "tiny.graded.jsonl", rows)
    master, terminal = os.openpty()
    try:
        env = {
            **os.environ,
            "PAGER": f"printenv LESS > {tmp_path / 'less.txt'}; cat > {tmp_path / 'paged.txt'}",
            "TERM": "xterm",
            "COLUMNS": "100",
        }
        env.pop("LESS", None)
        result = subprocess.run(
            [sys.executable, "-m", "llmrouter_collect", "show", str(graded), "-n", "2"],
            stdin=terminal, stdout=terminal, stderr=subprocess.PIPE, env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(terminal)
        os.close(master)
    assert result.returncode == 0, result.stderr
    paged = (tmp_path / "paged.txt").read_text(encoding="utf-8")
    assert "test/algebra/1.json" in paged and "\\x1b[31mRED" in paged
    assert (tmp_path / "less.txt").read_text().strip() == "FRX"  # colours through, no pager for one screen


def test_piped_into_head_it_stops_without_a_traceback(tmp_path: Path) -> None:
    write(tmp_path / "tiny.graded.jsonl", records("tiny", 1) * 50)  # the same problems again and again
    show = subprocess.Popen(
        [sys.executable, "-m", "llmrouter_collect", "show", str(tmp_path), "-n", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert show.stdout is not None
    show.stdout.readline()
    show.stdout.close()  # what `head -1` does
    _, stderr = show.communicate(timeout=120)
    # rich's console turns the broken pipe into a quiet exit 1 (no traceback), as `git log | head` exits non-zero
    assert show.returncode in (0, 1), stderr.decode()
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr
