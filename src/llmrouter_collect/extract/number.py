"""Number answers (GSM8K, AIME): find the final answer of a response and compare it with the reference as numbers.

The final answer is found as for math (`\\boxed{}`, "final answer is", `#### N`, "Answer: N", ...; the closing
sentence only when there is no such marker), never the last number of the reasoning. It is then read as one
number: thousands separators (`1,450,000`, `1 450 000`), `$`, units (`18 dollars`, `\\text{ km}`), `%`, a
trailing `.0`, zero padding (`033`) and a leading `x =` are dropped; `-` and `−` are minus signs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .math import RELATIVE_TOLERANCE, Found, extract_math_answer, normalize

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_FRACTION = re.compile(r"([-+]?)\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}|([-+]?\d+)\s*/\s*(\d+)")


@dataclass(frozen=True, slots=True)
class NumberAnswer:
    """A final answer: `text` is the number in canonical form (`1450000`, `33`, `2.5`) when it reads as one
    number, else the answer as written; `value` is None when it is not one number."""

    text: str
    value: Fraction | None
    rule: str


def parse_number(answer: str) -> Fraction | None:
    """The single number an answer states, or None (no number, or several).

    `\\$1,450,000.00` → 1450000, `033` → 33, `25\\%` → 25, `18 dollars` → 18, `x = -3` → -3, `\\frac{3}{4}` → 3/4.
    """
    text = normalize(answer).text
    text = _THOUSANDS.sub(lambda match: match.group(1).replace(",", ""), text)
    text = text.replace("$", "").strip().rstrip(".").strip()
    compact = text.replace(" ", "")
    if _NUMBER.fullmatch(compact):
        return Fraction(compact)
    fraction = _FRACTION.fullmatch(compact.replace("\\dfrac", "\\frac"))
    if fraction:
        if fraction.group(2) is not None:
            sign, numerator, denominator = fraction.group(1), int(fraction.group(2)), int(fraction.group(3))
        else:
            sign, numerator, denominator = "", int(fraction.group(4)), int(fraction.group(5))
        if denominator == 0:
            return None
        return (-1 if sign == "-" else 1) * Fraction(numerator, denominator)
    # A few words around one number ("18 per day", "about 18"): the number, if it is the only one.
    numbers = _NUMBER.findall(text)
    if len(numbers) == 1 and not re.search(r"[=<>^_{}]", text):
        return Fraction(numbers[0])
    return None


def canonical(value: Fraction) -> str:
    """`18`, `-3`, `2.5`, `3/4` (a fraction without a short decimal form)."""
    if value.denominator == 1:
        return str(value.numerator)
    decimal = f"{float(value):.10g}"
    return decimal if Fraction(decimal) == value else f"{value.numerator}/{value.denominator}"


def extract_number(text: str, *, allow_last_sentence: bool = True) -> NumberAnswer | None:
    """The final answer of a response, read as a number when it is one; None when there is no final answer.

    Args:
        text: the final text of the response (reasoning already removed).
        allow_last_sentence: use the closing-sentence fallback (off for responses cut at the token limit).
    """
    found: Found | None = extract_math_answer(text, allow_last_sentence=allow_last_sentence)
    if found is None:
        return None
    value = parse_number(found.answer)
    return NumberAnswer(canonical(value) if value is not None else found.answer.strip(), value, found.rule)


def numbers_equal(value: Fraction | None, gold: str) -> bool:
    """Whether an extracted number equals the reference (exactly, or within one part in a million)."""
    gold_value = parse_number(gold)
    if value is None or gold_value is None:
        return False
    return value == gold_value or abs(value - gold_value) <= abs(gold_value) * RELATIVE_TOLERANCE
