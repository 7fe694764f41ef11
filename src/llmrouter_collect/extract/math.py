"""Open-ended math answers: find the final answer in a response and decide if it equals the reference."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_SCAN_CHARS = 50_000
"""Only the last part of a very long response is searched for its final answer."""
MAX_ANSWER_CHARS = 400
"""Longer extracted answers (or references) are compared as strings only: the length guard before symbolic work."""


RELATIVE_TOLERANCE = Fraction(1, 10**6)
"""How close a written decimal must be to a reference number to count as equal."""


@dataclass(frozen=True, slots=True)
class Found:
    """A final answer found in a response: its text and the rule that found it."""

    answer: str
    rule: str


# --- extraction ---------------------------------------------------------------------------------------------

_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?=[{\s])")
_FINAL_IS = re.compile(
    r"final\s+answer\**\s*(?:is\b|:|=)\s*(?:is\b\s*)?:?\**[ \t]*(?P<value>[^\n]+)", re.IGNORECASE
)
_HASHES = re.compile(r"^\s*#{4}\s*(?P<value>[^\n#][^\n]*)$", re.MULTILINE)
_HASH_ANSWER = re.compile(r"^\s*#\s*Answer\s*\n+\s*(?P<value>[^\n]+)", re.MULTILINE | re.IGNORECASE)
_ANSWER_IS = re.compile(
    r"(?:\bthe\s+(?:final\s+|correct\s+)?answer\s+is\s*:?|^\s*\**(?:final\s+)?answer\s*\**\s*:\**)[ \t]*"
    r"(?P<value>[^\n]+)",
    re.IGNORECASE | re.MULTILINE,
)
_JSON_ANSWER = re.compile(r'"(?:final_)?answer"\s*:\s*(?P<value>"(?:[^"\\]|\\.)*"|-?[\d.]+(?:e-?\d+)?)')
_LATEX_IN_JSON = re.compile(r"\\\\|\\(?=[a-zA-Z]{2,})")
_DICT_ANSWER = re.compile(r"'(?:final_)?answer'\s*:\s*'(?P<value>[^'\n]*)'")
_OUTPUT_BLOCK = re.compile(r"```output\n.*?```", re.DOTALL)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?%?|-?\.\d+")
_LONE_NUMBER = re.compile(r"(?<![A-Za-z_\d])(?:-?\$?\d[\d,]*(?:\.\d+)?%?|-?\.\d+)")
"""A number that does not continue a word ("eering3" is not an answer)."""
_GARBLED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


def extract_math_answer(text: str, *, allow_last_sentence: bool = True) -> Found | None:
    """Find the final answer of an open-ended math response.

    Strong markers — the last `\\boxed{}`/`\\fbox{}` (nested braces; several boxes in the last sentence are
    joined as a list), "final answer is …", `#### N`, and a `# Answer` line — are preferred, the latest one
    winning. Without them: the last "the answer is …"/"Answer: …" line, a JSON `"answer"` field, and (when
    `allow_last_sentence`) the last number of the closing sentence. Numbers in the middle of the reasoning are
    never used.

    Args:
        text: the final text of the response (reasoning already removed).
        allow_last_sentence: use the closing-sentence fallback (off for responses cut at the token limit).
    """
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
    if "&amp;" in text or "&lt;" in text or "&gt;" in text:  # HTML-escaped output (some APIs and dumps)
        text = html.unescape(text)
    field = json_answer_field(text)
    if field is not None:  # a structured answer field is the commitment: prose around it (or in it) never wins
        value = _clean_value(field)
        if value:
            return Found(value, "json_answer")
    strong: list[tuple[int, Found]] = []
    boxed = _last_boxed(text)
    if boxed:
        strong.append(boxed)
    for pattern, rule in ((_FINAL_IS, "final_answer_is"), (_HASHES, "hashes"), (_HASH_ANSWER, "answer_line")):
        match = _last(pattern, text)
        if match:
            value = _clean_value(match.group("value"))
            if value:
                strong.append((match.start(), Found(value, rule)))
    match = _last(_ANSWER_IS, text)
    if match:
        value = _clean_value(match.group("value"))
        if value and _looks_like_answer(value):
            strong.append((match.start(), Found(value, "answer_is")))
    if strong:
        return max(strong, key=lambda item: item[0])[1]
    if allow_last_sentence and not _unclosed_box(text):
        return _last_sentence_number(text)
    return None


def json_answer_field(text: str) -> str | None:
    """The value of the last JSON `"answer"` (or `"final_answer"`) field in a response, as text; None without one.

    Shared by the MCQ and math graders: a response that answers in a JSON object commits to that field.
    """
    if 'answer"' not in text and "answer'" not in text and 'answer\\"' not in text:
        return None  # the common case, settled without a regex
    if '\\"answer\\"' in text:  # a JSON object written inside a JSON string: {\"answer\": \"D\"}
        text = text.replace('\\"', '"')
    match = _last(_JSON_ANSWER, text)
    if match is not None:
        # LaTeX written with single backslashes ("\frac{1}{2}") is invalid JSON, or worse, valid with another
        # meaning (`\f` is a form feed): a backslash before a command name stays a backslash.
        raw = _LATEX_IN_JSON.sub(lambda m: m.group() if m.group() == "\\\\" else "\\\\", match.group("value"))
        try:
            value = json.loads(raw)
        except ValueError:
            value = match.group("value").strip('"')
        return str(value).strip() or None
    quoted = _last(_DICT_ANSWER, text)  # a Python dict: {'reasoning': '...', 'answer': 'D'}
    if quoted is None:
        return None
    return quoted.group("value").strip() or None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    match = None
    for match in pattern.finditer(text):  # noqa: B007 — the last one is wanted
        pass
    return match


_BRACE = re.compile(r"[{}]")


def _brace_pairs(text: str, start: int = 0) -> dict[int, int]:
    """Index of each `{` from `start` on → index of its matching `}` (braces after a backslash do not count).

    One pass, not one scan per `\\boxed`: a degenerate response of thousands of nested or unclosed boxes stays
    linear. Braces before `start` cannot change the match of one after it, so the scan starts there.
    """
    pairs: dict[int, int] = {}
    opened: list[int] = []
    for match in _BRACE.finditer(text, start):
        index = match.start()
        if index > 0 and text[index - 1] == "\\":
            continue
        if match.group() == "{":
            opened.append(index)
        elif opened:
            pairs[opened.pop()] = index
    return pairs


def _unclosed_box(text: str) -> bool:
    """True when the text ends inside a `\\boxed{` (cut off while writing its answer)."""
    match = _last(_BOX, text)
    if match is None:
        return False
    start = text.find("{", match.end())
    return start >= 0 and start not in _brace_pairs(text, start)


def _last_boxed(text: str) -> tuple[int, Found] | None:
    boxes: list[tuple[int, int, int, int]] = []  # (box start, box end, content start, content end)
    pairs: dict[int, int] | None = None
    for match in _BOX.finditer(text):
        position = match.end()
        while position < len(text) and text[position] in " \t":
            position += 1
        if position < len(text) and text[position] == "{":
            if pairs is None:
                pairs = _brace_pairs(text, position)  # the first box: no later one needs a brace before it
            close = pairs.get(position)
            if close is None:
                continue  # unclosed: cut off by the token limit
            boxes.append((match.start(), close + 1, position + 1, close))
        else:  # "\boxed 5"
            bare = re.match(r"[^\s$.,]+", text[position : position + MAX_SCAN_CHARS])
            if not bare:
                continue
            boxes.append((match.start(), position + bare.end(), position, position + bare.end()))
    if not boxes:
        return None
    # Several boxes in one closing sentence ("\boxed{2} and \boxed{5}") are one answer: a list. A box inside
    # another one (a degenerate "\boxed{\boxed{…}}") ends the list.
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        if box[1] > group[0][0]:
            break
        between = _SEPARATOR_NOISE.sub(" ", text[box[1] : group[0][0]])
        if re.fullmatch(r"[\s,;]*(?:and|or|,)?[\s,;]*", between):
            group.insert(0, box)
        else:
            break
    # A repeated box counts once.
    contents = list(dict.fromkeys(text[start:end].strip() for _, _, start, end in group if text[start:end].strip()))
    if not contents:
        return None
    return group[0][0], Found(", ".join(contents), "boxed")


_SEPARATOR_NOISE = re.compile(
    r"\\(?:quad|qquad|,|;|\[|\]|\(|\))|\$|\\text\s*\{\s*(?:and|or)?\s*,?\s*\}"
)
_LEADING_FINAL = re.compile(r"^(?:the\s+)?final\s+answer\s*(?:is)?\s*:?\s*", re.IGNORECASE)


def _clean_value(value: str) -> str:
    """Trim an answer written after a marker: math delimiters, a closing remark, trailing punctuation."""
    value = value.strip().strip("*").strip()
    while _LEADING_FINAL.match(value) and _LEADING_FINAL.match(value).end() > 0:  # type: ignore[union-attr]
        value = _LEADING_FINAL.sub("", value, count=1).strip()
    boxed = _last_boxed(value)
    if boxed:
        return boxed[1].answer
    dollar = "\x00"  # an escaped "\\$" (currency) is not a math delimiter
    shielded = value.replace("\\$", dollar)
    math = re.search(r"\$\$?(?P<m>[^$]+)\$\$?|\\\((?P<p>.+?)\\\)|\\\[(?P<b>.+?)\\\]", shielded)
    if math and shielded.lstrip().startswith(("$", "\\(", "\\[")):
        return (math.group("m") or math.group("p") or math.group("b")).strip().replace(dollar, "\\$")
    # Drop a closing remark: "18. I hope it is correct."
    value = re.split(r"\.\s+(?=[A-Z])|\.\s*$", value)[0].strip().rstrip(".").strip()
    # Arithmetic that ends in its result ("1,360 - 142 = 1,218"): the result.
    worked = _WORKED.fullmatch(value) if "=" in value and len(value) <= _MAX_WORKED_CHARS else None
    if worked:
        return worked.group("result")
    # A sentence instead of a bare answer ("Hillary has 7 nickels"): its only number is the answer.
    if len(re.findall(r"[A-Za-z]{2,}", value)) >= 2 and "\\" not in value:
        numbers: list[str] = _NUMBER.findall(value)
        if len(numbers) == 1:
            return numbers[0]
    return value


_MAX_WORKED_CHARS = 200
"""`_WORKED` backtracks quadratically on long runs of digits: it is only tried on short answers with an `=`."""
_WORKED = re.compile(r"[-+*/×÷()\s\d.,$\\]*\d[-+*/×÷()\s\d.,$\\]*=\s*(?P<result>-?\\?\$?\d[\d,]*(?:\.\d+)?)")


def _looks_like_answer(value: str) -> bool:
    return bool(re.search(r"[\d\\^=]", value)) or len(value.split()) <= 3


def _last_sentence_number(text: str) -> Found | None:
    """The last number of the closing sentence ("So, there are 6 ducks."), when the response ends in prose."""
    body = _OUTPUT_BLOCK.sub("", text).rstrip()
    if not body or body.endswith(("```", "=", "+", "-", "*", "/", ",")):
        return None
    paragraph = re.split(r"\n\s*\n", body)[-1]
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph.strip())
    sentence = sentences[-1]
    if _GARBLED.search(sentence):
        return None  # not prose (control characters, undecodable bytes): no answer, rather than a stray digit
    spans = [
        next(part for part in span if part)
        for span in re.findall(r"\\\((.+?)\\\)|\$([^$]+)\$|\\\[(.+?)\\\]", sentence, re.DOTALL)
    ]
    spans = [span for span in spans if re.search(r"[\\^{]", span) or not sentence.count("$")]
    if spans:
        expression = spans[-1].strip()
        if "=" in expression:
            expression = expression.rsplit("=", 1)[1].strip()
        if expression:
            return Found(expression.rstrip(".,").strip(), "last_sentence")
    if "=" in sentence:
        sentence = sentence.rsplit("=", 1)[1]
    sentence = re.sub(r"<<[^>]*>>", "", sentence)
    numbers = _LONE_NUMBER.findall(sentence)
    if not numbers:
        return None
    return Found(numbers[-1].rstrip(".,"), "last_sentence")


# --- normalisation ------------------------------------------------------------------------------------------

_UNICODE = {
    "−": "-", "–": "-", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ", "π": "\\pi ", "∞": "\\infty ",
    "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "°": "^\\circ", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}
_UNIT_WORDS = (
    r"(?:dollars?|cents?|units?|square\s+(?:units|feet|meters|inches|centimeters)|sq\.?\s*\w+|degrees?|"
    r"cm|mm|km|m|meters?|kilometers?|feet|foot|ft|inches|inch|in|miles?|mph|km/h|hours?|hrs?|minutes?|mins?|"
    r"seconds?|secs?|days?|weeks?|months?|years?|kg|g|grams?|pounds?|lbs?|ounces?|oz|liters?|litres?|ml|"
    r"gallons?|people|students?|apples?|pieces?|points?|marbles?|books?|pages?|cookies?|times|ways)"
)


@dataclass(frozen=True, slots=True)
class Normal:
    """An answer in canonical text form, with whether it was a percentage."""

    text: str
    percent: bool


def normalize(answer: str, *, strip_assignment: bool = True) -> Normal:
    """Canonical text of an answer: math delimiters, spacing, `\\dfrac`, `\\text{}` units, degrees, currency,
    thousands separators, a leading `x =` and unicode symbols are removed or rewritten.

    Args:
        answer: the extracted answer or the reference.
        strip_assignment: drop a leading `x =` / `x \\in` (off when the reference is itself an equation).
    """
    text = answer.strip()
    for char, latex in _UNICODE.items():
        if char in text:
            text = text.replace(char, latex)
    text = re.sub(r"√\s*(\d+|[a-zA-Z])", r"\\sqrt{\1}", text)
    text = re.sub(r"√\s*\(", r"\\sqrt(", text)
    text = re.sub(r"(?<![\\a-zA-Z])sqrt\s*\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"(?<![\\a-zA-Z])sqrt\s*(\d+)", r"\\sqrt{\1}", text)
    for wrapper in ("\\$", "$", "\\(", "\\)", "\\[", "\\]"):
        text = text.replace(wrapper, "")
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])", "", text)
    # Spacing commands go; a row break (two backslashes, in matrices) stays.
    # `\!` is a negative thin space: it joins what it stands between (`900,\!000` is 900,000).
    text = re.sub(r"(?<!\\)\\!", "", text)
    text = re.sub(r"(?<!\\)\\(?:,|;|:| |quad|qquad|displaystyle)", " ", text).replace("~", " ")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\boxed\s*\{(.*)\}", r"\1", text)
    text = re.sub(r"(?<!\\)\\(?=\d)", "", text)  # "\15" (a stray backslash from "\$15")
    text = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", text)  # "6th place"
    text = re.sub(r"\\text\s*\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+(?=[-+(\\\d])", ", ", text)
    text = re.sub(r"(\\(?:text|mathrm|mbox)\s*\{[^{}]*\})\s*\^\s*\{?[23]\}?", r"\1", text)
    text = re.sub(r"\{,\}", "", text)
    # Degrees and percent.
    text = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", text)
    text = re.sub(r"\\circ|\\degree", "", text)
    percent = bool(re.search(r"\\?%\s*$", text.strip()))
    text = re.sub(r"\\?%", "", text)
    text = re.sub(r"\s*(?:percent|per\s*cent)\s*$", "", text, flags=re.IGNORECASE)
    text = text.replace("USD", "")
    # \text{...}: a unit after a value goes, a whole-answer word stays (unwrapped).
    wrapped = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|operatorname)\s*\{([^{}]*)\}")
    without = wrapped.sub("", text)
    keep_unit_free = re.search(r"[\d\\]", without) and without.strip()
    text = without if keep_unit_free else wrapped.sub(r"\1", text)
    text = text.strip()
    # Trailing unit words after a number: "45 dollars", "12 cm^2".
    text = re.sub(r"^([-+]?[\d.,/]+)\s*" + _UNIT_WORDS + r"(?:\s*\^?\s*\{?[23]\}?)?\s*$", r"\1", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"^([-+]?[\d.,/]+)\s+[a-zA-Z]{2,}(?:[\s-]+[a-zA-Z]{2,}){0,2}\s*$", r"\1", text)  # "6 place"
    # A leading variable: "x = 3", "x \in [1, 2]".
    if strip_assignment:
        assignment = re.match(r"^\s*[a-zA-Z](?:_\{?\w+\}?)?\s*(?:=|\\in)\s*(?P<rhs>[^=]+)$", text)
        if assignment:
            text = assignment.group("rhs")
    text = text.strip().rstrip(".").strip()
    # Thousands separators in a single number: "1,450,000".
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    text = re.sub(r"(?<=\d) (?=\d{3}(?!\d))", "", text)
    return Normal(re.sub(r"\s+", " ", text).strip(), percent)


# --- comparison ---------------------------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_PLAIN_FRACTION = re.compile(r"(?P<sign>[-+]?)\s*\\frac\s*\{\s*(?P<n>\d+)\s*\}\s*\{\s*(?P<d>\d+)\s*\}|"
                             r"(?P<sign2>[-+]?)(?P<n2>\d+)\s*/\s*(?P<d2>\d+)")


SIGNIFICANT_DIGITS = 40
"""Digits of a written number that are compared; the rest cannot move it by one part in a million (the
tolerance), and a number of thousands of digits (a degenerate response) is never turned into a Python int."""
_MAX_EXPONENT_DIGITS = 12
"""A written exponent longer than this (`1e` followed by a screenful of digits) is not read as a number."""
_MAX_SHIFT = 100
"""Numbers more than this many powers of ten apart (after their leading digits) are never close."""


@dataclass(frozen=True, slots=True)
class _Number:
    """`mantissa × 10**exponent`: a written number without materialising huge integers."""

    mantissa: Fraction
    exponent: int


def _digits(text: str, exponent: int = 0) -> tuple[int, int]:
    """The leading SIGNIFICANT_DIGITS of a digit string as an int, and the power of ten it is scaled by."""
    digits = text.lstrip("0")
    extra = max(0, len(digits) - SIGNIFICANT_DIGITS)
    return int(digits[:SIGNIFICANT_DIGITS] or "0"), exponent + extra


_NUMBER_PARTS = re.compile(r"(?P<sign>[-+]?)(?P<int>\d*)(?:\.(?P<frac>\d*))?(?:[eE](?P<exp>[-+]?\d+))?")


def _as_number(text: str) -> _Number | None:
    """A plain number or fraction of digits, exact up to SIGNIFICANT_DIGITS digits (any length is safe)."""
    compact = text.replace(" ", "")
    if _PLAIN_NUMBER.fullmatch(compact):
        parts = _NUMBER_PARTS.fullmatch(compact)
        assert parts is not None
        written_exponent = parts.group("exp") or "0"
        if len(written_exponent.lstrip("+-").lstrip("0")) > _MAX_EXPONENT_DIGITS:
            return None
        fraction = parts.group("frac") or ""
        value, exponent = _digits(parts.group("int") + fraction, int(written_exponent) - len(fraction))
        sign = -1 if parts.group("sign") == "-" else 1
        return _Number(Fraction(sign * value), exponent)
    match = _PLAIN_FRACTION.fullmatch(compact)
    if match:
        numerator, top = _digits(match.group("n") or match.group("n2"))
        denominator, bottom = _digits(match.group("d") or match.group("d2"))
        if denominator == 0:
            return None
        sign = -1 if (match.group("sign") or match.group("sign2")) == "-" else 1
        return _Number(sign * Fraction(numerator, denominator), top - bottom)
    return None


def _values(number: _Number, percent: bool) -> set[_Number]:
    return {number, _Number(number.mantissa, number.exponent - 2)} if percent else {number}


def _close(pred: _Number, gold: _Number) -> bool:
    """Equal, or a decimal within one part in a million of the reference (0.3333333 for 1/3, not 0.333)."""
    if gold.mantissa == 0 or pred.mantissa == 0:
        return pred.mantissa == gold.mantissa
    shift = pred.exponent - gold.exponent
    if abs(shift) > _MAX_SHIFT:  # mantissas stay within 10**±41, so the two are orders of magnitude apart
        return False
    scale = Fraction(10) ** shift
    p, g = pred.mantissa * scale, gold.mantissa
    return p == g or abs(p - g) <= abs(g) * RELATIVE_TOLERANCE


def _string_key(text: str) -> str:
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", text)
    return re.sub(r"[\s{}]", "", text).lower().strip("().")


_OPEN = frozenset("([{")
_CLOSE = frozenset(")]}")


def _items(text: str) -> set[str]:
    """The distinct comma-separated items of a normalised answer, split at bracket depth 0 only (a tuple or an
    interval is one item; `1,450` is one item only after normalisation has removed its separator)."""
    items: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char == "," and depth == 0 and text[index - 1 : index] != "\\":
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    return {_string_key(item) for item in items if _string_key(item)}


def quick_equal(pred: str, gold: str) -> bool | None:
    """Decide cheaply when possible: equal canonical text, or two plain numbers. None means "needs sympy"."""
    gold_n = normalize(gold, strip_assignment=True)
    pred_n = normalize(pred, strip_assignment="=" not in gold_n.text)
    if not pred_n.text:
        return False
    if _string_key(pred_n.text) == _string_key(gold_n.text):
        return True
    if len(_items(pred_n.text)) > 1 and len(_items(gold_n.text)) == 1:
        return False  # a list of alternatives ("3, 4, 5, or 8") does not answer a question asking for one value
    pred_v, gold_v = _as_number(pred_n.text), _as_number(gold_n.text)
    if pred_v is not None and gold_v is not None:
        return any(_close(p, g) for p in _values(pred_v, pred_n.percent) for g in _values(gold_v, gold_n.percent))
    if len(pred_n.text) > MAX_ANSWER_CHARS or len(gold_n.text) > MAX_ANSWER_CHARS:
        return False  # the length guard: too long for symbolic checking
    return None


def symbolic_equal(pred: str, gold: str) -> bool:
    """Mathematical equality by math-verify (latex2sympy2_extended) on the normalised answers.

    Slow and unbounded in time: call it in a worker process with a hard time limit (see `runner`).
    A parse that reads only a number out of an answer that has more in it (`16√2` read as 16) is not trusted.
    """
    from math_verify import (  # type: ignore[import-untyped]
        ExprExtractionConfig,
        LatexExtractionConfig,
        parse,
        verify,
    )

    gold_n = normalize(gold, strip_assignment=True)
    pred_n = normalize(pred, strip_assignment="=" not in gold_n.text)
    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    gold_parsed = parse("$" + gold_n.text + "$", config, parsing_timeout=None)
    pred_parsed = parse("$" + pred_n.text + "$", config, parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    if _partial(pred_parsed, pred_n.text) or _partial(gold_parsed, gold_n.text):
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _partial(parsed: list[object], text: str) -> bool:
    """True when math-verify turned an answer it cannot read in full into a bare number ("16√2" read as 16)."""
    from sympy import Number  # type: ignore[import-untyped]

    return isinstance(parsed[0], Number) and bool(re.search(r"[√π∞]|(?<![\\a-zA-Z])(?:sqrt|pi)\b", text))


def answers_equal(pred: str, gold: str) -> bool:
    """Quick check, then symbolic check (no time limit: for tests and single calls; the runner adds one)."""
    quick = quick_equal(pred, gold)
    return quick if quick is not None else symbolic_equal(pred, gold)
