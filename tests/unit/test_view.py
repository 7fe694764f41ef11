"""The viewer's pure parts: shortening keeps the end, control characters become visible, filters match."""

from __future__ import annotations

import pytest

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.view import Filters, shorten, visible


def test_shorten_keeps_start_and_three_times_as_much_end() -> None:
    text = "a" * 1000 + "MIDDLE" + "b" * 1000 + "ANSWER"
    short, cut = shorten(text, 400)
    assert short.startswith("a" * 100) and short.endswith("b" * 294 + "ANSWER")
    assert "MIDDLE" not in short
    assert cut == len(text) - 400
    assert f"[… {cut:,} characters cut …]" in short
    assert shorten("short", 400) == ("short", 0)
    assert shorten(text, 0) == (text, 0)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("cr\rover", "cr\\x0dover"),
        ("\u202eevil", "\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("keep\nlines\tand tabs", "keep\nlines\tand tabs"),
        ("unicode √ é 中", "unicode √ é 中"),
    ],
)
def test_visible(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_filters() -> None:
    record = {"unique_id": "test/algebra/1.json", "category": "Algebra", "dataset": "math500"}
    assert Filters().matches_record("m", record)
    assert Filters(models=("org/*",)).matches_record("org/big", record)
    assert not Filters(models=("org/*",)).matches_record("tiny", record)
    assert Filters(categories=("algebra",), datasets=("MATH500",)).matches_record("m", record)
    assert Filters(problems=("test/algebra/*",)).matches_record("m", record)
    assert Filters(problems=("x", "test/algebra/1.json")).matches_record("m", record)
    assert not Filters(problems=("test/algebra/2.json",)).matches_record("m", record)
    assert Filters(outcomes=("wrong",)).matches_outcome("wrong")
    assert not Filters(outcomes=("wrong",)).matches_outcome(None)
    assert Filters(outcomes=("not graded",)).matches_outcome(None)
    assert Filters(models=("a",), outcomes=("wrong",)).describe() == "model a · outcome wrong"
    with pytest.raises(ConfigError, match="unknown outcome"):
        Filters(outcomes=("right",))
