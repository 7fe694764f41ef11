"""Multiple-choice answers: find the letter a response finally commits to, never guessing."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..records import choice_letter
from .math import json_answer_field

MAX_SCAN_CHARS = 20_000
"""Only the last part of a very long response is searched (repetition loops run to the token limit)."""

# A new question the model invented after answering (few-shot prompts invite "Question: ..." continuations);
# everything from there on is not an answer to this question.
_FOLLOW_UP = re.compile(
    r"\n[ \t>*#]*(?:Question|Q)\s*(?:\d+\s*)?[:.]|\n[ \t*#]*Problem\s*\d*\s*:|\n\s*Human:|\n\s*User:",
)

_LETTER = (
    r"(?P<open>\(|\[|\\boxed\{|\\text\{|\*\*|\$)?\s*(?P<letter>[A-Z]{1,2})(?![A-Za-z0-9])"
    r"(?P<close>\)|\]|\}|\*\*)?"
)

# "The answer is (C)", "the correct answer is: **C**", "Answer: C", "the correct option is C", "answer (F)".
_ANSWER_IS = re.compile(
    r"(?:\b(?P<qual>final|correct|right|best|closest|nearest|most\s+(?:likely|appropriate|accurate)|only)\s+)?"
    r"\b(?P<noun>answer|option|choice|selection)s?\b"
    r"(?:\s+(?:to\s+(?:the|this)\s+question\s+)?(?P<verb>is|would\s+be|should\s+be|must\s+be|will\s+be|=)"
    r"(?:\s+(?:therefore|thus|then|clearly|likely|probably))?)?"
    r"(?:\s*(?P<colon>:|：|=))?"
    r"[\s*_]*(?:(?:option|choice|letter)\s+)?" + _LETTER,
    re.IGNORECASE,
)
_REJECTED = re.compile(r"\s*(?:is|are|was|seems)\s+(?:not|incorrect|wrong|false|eliminated|ruled)\b", re.IGNORECASE)
# "\boxed{C}" anywhere (a committed answer in LaTeX style).
_BOXED = re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*\(?(?P<letter>[A-Z]{1,2})\)?\s*\}?\s*\}")
# "(C) is correct", "Option C is the correct answer".
_IS_CORRECT = re.compile(
    r"(?:\b(?:option|choice)\s+\(?(?P<a>[A-Z]{1,2})\)?|\((?P<b>[A-Z]{1,2})\))"
    r"\s+(?:is|would\s+be)\s+(?:the\s+)?(?:correct|right|best|most\s+appropriate)\b",
    re.IGNORECASE,
)
# "The correct sequence is (C)." — any "correct/best <noun> is (X)" with the letter in parentheses.
_CORRECT_NOUN = re.compile(
    r"\b(?:correct|right|best)\s+\w+(?:\s+\w+)?\s+is\s*:?\s*\((?P<letter>[A-Z]{1,2})\)",
    re.IGNORECASE,
)
# "C is the correct answer." at the start of a sentence; "I'd go with C", "I choose (C)".
_LEADING_IS = re.compile(
    r"(?:^|(?<=[\n.!:*])\s*)\(?(?P<letter>[A-Z]{1,2})\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\s+"
    r"(?:answer|option|choice)\b",
)
_CHOOSE = re.compile(
    r"\b(?:go\s+with|choose|select|pick|opt\s+for)\s+(?:option\s+|choice\s+)?"
    r"(?:\((?P<a>[A-Z]{1,2})\)|(?P<b>[A-Z]{1,2})(?=\s*(?:[.!,;)]|$)))",
)
# Bold letter on the last line: "**C**", "**(C)**", "**C. option text**".
_BOLD = re.compile(r"\*\*\s*\(?(?P<letter>[A-Z]{1,2})\)?\s*(?:\*\*|[.:)]\s*(?P<text>[^*\n]{0,300})\*\*)")
# A last line that is only a letter: "(G)", "G.", "Answer (G)".
_LONE = re.compile(r"^[\s*>#]*\(?(?P<letter>[A-Z]{1,2})\)?[.)]?[\s*]*$")
# A last line "(C) option text" or "C. option text".
_LEAD = re.compile(r"^[\s*>#-]*(?:\((?P<a>[A-Z]{1,2})\)|(?P<b>[A-Z]{1,2})[.)])\s+(?P<text>.+)$")
# Further letters listed after the first: "(A), (D), and (I)", "B or C", "G, H, I".
_MORE = re.compile(
    r"\s*(?:,|;|/|&|\+|\band\b|\bor\b)\s*(?:and\s+|or\s+)?(?:option\s+|choice\s+)?[(*$]*\s*(?P<letter>[A-Z]{1,2})(?![A-Za-z0-9])[)*]*",
)
# A bare "A" that is the article ("the answer is A bit more", "Answer: A $500 fine") — not "A because ...".
_ARTICLE = re.compile(r"[ \t]+(?!(?:because|since|as|which|is|was|and|or)\b)[a-z$\d]")
# A bare "I" after "answer is" that is the pronoun ("the answer is I think (B)").
_PRONOUN_I = re.compile(r"\s+(?:think|believe|would|will|guess|am|have|can|cannot|can't|don't|do|need|must|'m)\b")
# Phrases that take back an answer ("the answer is not (C)"); those matches are skipped.
_NEGATED = re.compile(r"\b(?:not|isn't|n't|cannot\s+be|can't\s+be)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Choice:
    """A letter found in a response.

    Attributes:
        letter: the letter (A, B, ...), or None when the response names several different answers.
        rule: the rule that found it.
        position: offset of the match in the searched text (later wins).
    """

    letter: str | None
    rule: str
    position: int


def extract_choice(text: str, choices: Sequence[str] | None) -> Choice | None:
    """Find the letter the response finally commits to.

    The last committed answer wins over letters mentioned while reasoning. Letters outside the choices,
    stray capitals, answers to a follow-up question the model invented, and several different letters at
    once are not answers. Returns None when there is no answer, or a Choice with `letter=None` when the
    final answer names several different letters.

    Args:
        text: the final text of the response (reasoning already removed).
        choices: the options' texts (their count bounds the valid letters); None allows A–Z.
    """
    if len(text) > MAX_SCAN_CHARS:
        text = text[-MAX_SCAN_CHARS:]
    if "&" in text:
        text = html.unescape(text)
    valid = {choice_letter(i) for i in range(len(choices))} if choices else {choice_letter(i) for i in range(26)}
    text = _cut_follow_up(text)
    field = json_answer_field(text)
    if field is not None:  # {"reasoning": ..., "answer": "D"}: the field is the commitment, read before any prose
        return _field_choice(field, valid, choices)
    return _prose_choice(text, valid, choices)


def _prose_choice(text: str, valid: set[str], choices: Sequence[str] | None) -> Choice | None:
    candidates: list[Choice] = []
    candidates += _answer_is(text, valid, choices)
    for match in _BOXED.finditer(text):
        if match.group("letter") in valid:
            candidates.append(Choice(match.group("letter"), "boxed", match.start()))
    for match in _IS_CORRECT.finditer(text):
        letter = (match.group("a") or match.group("b")).upper()
        if letter in valid and (match.group("b") or match.group("a").isupper()):
            candidates.append(Choice(letter, "is_correct", match.start()))
    for pattern, rule in ((_LEADING_IS, "is_correct"), (_CHOOSE, "choose")):
        for match in pattern.finditer(text):
            letter = (match.group("a") or match.group("b")) if rule == "choose" else match.group("letter")
            if letter in valid:
                candidates.append(Choice(letter, rule, match.start()))
    for match in _CORRECT_NOUN.finditer(text):
        if match.group("letter") in valid and not _NEGATED.search(text[: match.start("letter") - 1]):
            candidates.append(Choice(match.group("letter"), "correct_is", match.start()))
    for match in _WHICH_IS.finditer(text):
        if match.group("letter") in valid:
            candidates.append(Choice(match.group("letter"), "which_is", match.start()))
    if choices:
        candidates += _explained_option_line(text, valid, choices)
    last_line_start = len(text.rstrip()) - len(text.rstrip().rsplit("\n", 1)[-1])
    if not any(choice.position >= last_line_start for choice in candidates):
        candidates += _last_line(text, valid, choices)
    if not candidates:
        return None
    # An explicit answer statement outranks weaker signals ("(A) is correct only if rates fall") after it.
    strong = [choice for choice in candidates if choice.rule in _STRONG]
    candidates = sorted(strong or candidates, key=lambda choice: choice.position)
    cut = _continuation(text, candidates)
    if cut is not None:
        return _prose_choice(text[:cut], valid, choices)
    return _skip_answer_dump(text, candidates)


# After a committed answer, a model may keep going: it summarises answers to several questions ("Now, let's
# combine all the answers: The answer is (B)."), names several letters for other questions ("Final Answer: The
# answer is (B), (D), (F)."), or answers a question of its own in the few-shot format ("\n\nAnswer: The answer is
# (J)."). What follows such a turn is not an answer to this question.
_SUMMARY = re.compile(
    r"\b(?:combin\w*|summar\w*|all|list)\s+(?:of\s+)?(?:the\s+|my\s+|these\s+)?(?:final\s+)?answers\b[^\n.]{0,30}:",
    re.IGNORECASE,
)
_ANSWER_AGAIN = re.compile(r"\n[ \t]*\n[ \t*>-]*(?:answer|A)\s*:[\s*]*(?:the\s+)?answer\s+is\b", re.IGNORECASE)


def _continuation(text: str, candidates: list[Choice]) -> int | None:
    """Where a continuation after the first committed single answer starts, when an answer follows it (else None).

    A continuation is a summary of "all the answers:", a later statement naming several letters, or — after an
    answer that closes its paragraph — a new paragraph in the few-shot answer format ("Answer: The answer is").
    """
    first = next((c for c in candidates if c.rule in ("answer_is", "boxed") and c.letter is not None), None)
    if first is None:
        return None
    # The rest of the committing sentence belongs to it: "The answer is (G). ..." starts after its stop.
    stop = re.compile(r"[.!\n]").search(text, first.position + 10)
    after = stop.end() if stop else len(text)
    starts = [c.position for c in candidates if c.letter is None and c.position >= after]
    summary = _SUMMARY.search(text, after)
    if summary:
        starts.append(summary.start())
    line_start = text.rfind("\n", 0, first.position) + 1
    concluded = len(text[line_start : first.position].strip()) > _SHORT_PREFIX  # it ends reasoning, not a list
    closes_paragraph = re.match(r"[ \t]*\n[ \t]*\n", text[after:]) or re.match(r"[ \t]*\n[ \t]*\n", text[after - 1 :])
    if concluded and closes_paragraph:
        again = _ANSWER_AGAIN.search(text, after - 1)
        if again:
            starts.append(again.start())
    if not starts:
        return None
    cut = min(starts)
    return cut if any(c.position >= cut for c in candidates) else None


_STRONG = frozenset({"answer_is", "boxed", "several_answers"})

# "... = 4.5 m/s, which is option (J)."
_WHICH_IS = re.compile(
    r"\bwhich\s+(?:is|corresponds\s+to|matches)\s+(?:option|choice|answer)\s+\(?(?P<letter>[A-Z]{1,2})\)?"
    r"(?![A-Za-z0-9])"
)


def _explained_option_line(text: str, valid: set[str], choices: Sequence[str]) -> list[Choice]:
    """An option line ("G. [H2SO3] > [HSO3-] ...") that opens one of the last two paragraphs and is explained by
    the sentences after it, rather than listed among other option lines."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text.rstrip()) if part.strip()][-2:]
    found: list[Choice] = []
    for number, paragraph in enumerate(paragraphs):
        lines = paragraph.strip("\n").split("\n")
        if len(lines) == 1 and number == len(paragraphs) - 1:
            continue  # nothing explains it: the last-line rules read a closing option line
        lead = _LEAD.match(lines[0])
        if lead is None or (len(lines) > 1 and _LEAD.match(lines[1])):
            continue
        letter = lead.group("a") or lead.group("b")
        if letter in valid and _norm_option(lead.group("text")) == _norm_option(choices[_index(letter)]):
            found.append(Choice(letter, "option_line", text.rfind(paragraph)))
    return found


# The value of an answer field: "D", "(B)", "B (with correction)", "(B) text of B", "B. text of B", "**C**".
_FIELD_LETTER = re.compile(
    r"[\s*(\[]*(?:option\s+|choice\s+)?(?P<letter>[A-Z]{1,2})(?![A-Za-z0-9])[\s*)\]]*(?P<rest>.*)",
    re.DOTALL | re.IGNORECASE,
)


def _field_choice(value: str, valid: set[str], choices: Sequence[str] | None) -> Choice | None:
    """The letter an answer field names, or several_answers; None when it names no option of this question (the
    response is then unparsed: the field is the commitment, so the prose around it is not read)."""
    bare = re.fullmatch(r"[\s*(\[]*(?P<letter>[A-Z]{1,2})[\s*)\].]*", value)
    if bare:  # a letter alone is a letter, even when some option's text is that letter
        return Choice(bare.group("letter"), "json_answer", 0) if bare.group("letter") in valid else None
    if choices:
        hits = [i for i, option in enumerate(choices) if _norm_option(option) == _norm_option(value)]
        if len(hits) == 1:
            return Choice(choice_letter(hits[0]), "json_answer", 0)
    match = _FIELD_LETTER.fullmatch(value)
    if match and (match.group("letter").isupper() or not match.group("rest").strip()):
        letter, rest = match.group("letter").upper(), match.group("rest").strip()
        more = _MORE.match(value, match.start("rest"))
        if more and more.group("letter") in valid and more.group("letter") != letter:
            return Choice(None, "several_answers", 0)  # "B, D", "B or C"
        # The letter stands alone, or is followed by its option's text or a remark: "B. text", "B (with correction)".
        alone = not rest or rest[0] in ".:)-–(,;" or "(" in value[: match.start("letter")]
        if letter in valid and (alone or not (letter == "A" and rest[0].islower())):
            return Choice(letter, "json_answer", 0)
    inner = _prose_choice(value, valid, choices)  # "The answer is (B)." written into the field
    if inner is not None:
        return Choice(inner.letter, "json_answer" if inner.letter else inner.rule, 0)
    named = set(re.findall(r"(?<![A-Za-z0-9])[A-Z](?![A-Za-z0-9])", value))
    if len(value) <= 40 and len(named) > 1 and named <= valid:
        return Choice(None, "several_answers", 0)  # "Both B and D"
    return None


_SHORT_PREFIX = 30


def _skip_answer_dump(text: str, candidates: list[Choice]) -> Choice:
    """The final answer, unless the response ends in a run of bare answer lines to other questions.

    Some models answer, then write "Answer: The answer is (G)." lines for questions of their own (or re-answer
    the few-shot examples). After a run of such lines with different letters, the answer that concluded the
    reasoning before the run is taken; a response made only of such lines (answers to each question of a
    few-shot prompt, in order) is answered by its last line.
    """
    def opens_line(position: int) -> bool:
        start = text.rfind("\n", 0, position) + 1
        return len(text[start:position].strip()) <= _SHORT_PREFIX

    run: list[Choice] = []
    for choice in reversed(candidates):
        if not opens_line(choice.position):
            break
        run.append(choice)
    letters = {choice.letter for choice in run}
    if len(run) < 2 or len(letters) < 2:
        return candidates[-1]
    before = candidates[: len(candidates) - len(run)]
    if before and before[-1].letter is not None:
        return before[-1]
    return candidates[-1]


def _cut_follow_up(text: str) -> str:
    match = _FOLLOW_UP.search(text, 1)
    if match and text[: match.start()].strip():
        return text[: match.start()]
    return text


def _answer_is(text: str, valid: set[str], choices: Sequence[str] | None) -> list[Choice]:
    found: list[Choice] = []
    for match in _ANSWER_IS.finditer(text):
        letter = match.group("letter")
        wrapped = bool(match.group("open") and match.group("close"))
        if not letter.isupper():
            if not (wrapped and len(letter) == 1 and match.group("open") in "([*"):
                continue
            letter = letter.upper()  # "answer: (c)"
        noun = match.group("noun").lower()
        committed = match.group("verb") or match.group("colon")
        if noun != "answer" and not (match.group("qual") and committed):
            continue  # "option C" while going through the options is not a commitment
        if not committed and not wrapped:
            continue
        if _REJECTED.match(text, match.end()):
            continue
        if _NEGATED.search(text[max(0, match.start("letter") - 12) : match.start("letter")]):
            continue
        if not wrapped and letter == "I" and _PRONOUN_I.match(text, match.end()):
            continue
        if not wrapped and letter == "A" and _ARTICLE.match(text, match.end()):
            continue  # the article: "the answer is A bit ...", "Answer: A lot"
        if "\n" in text[match.end("noun") : match.start("letter")] and _in_option_list(text, match):
            continue  # "the correct answers:\nA. ...\nD. ...": a list of option lines, not a letter after a colon
        if letter not in valid:
            continue
        letters = {letter}
        end = match.end()
        while more := _MORE.match(text, end):
            extra = more.group("letter")
            if extra not in valid or (extra in {"A", "I"} and not re.search(r"[(*$]", more.group(0))
                                      and re.match(r"\s+[a-z]", text[more.end() : more.end() + 3])):
                break
            letters.add(extra)
            end = more.end()
        if len(letters) > 1:
            found.append(Choice(None, "several_answers", match.start()))
        else:
            found.append(Choice(letter, "answer_is", match.start()))
    # An answer phrase followed by an option's text instead of its letter: "The answer is $218.40."
    if choices:
        options = [_norm_option(option) for option in choices]
        for match in _ANSWER_TEXT.finditer(text):
            rest = match.group("text")
            # The option's text may itself contain ". " ("Mr. Fields should sell..."): try the whole line,
            # then its first sentence.
            for phrase in dict.fromkeys((_norm_option(rest), _norm_option(re.split(r"\.\s", rest)[0]))):
                hits = [i for i, option in enumerate(options) if phrase and option == phrase]
                if len(hits) == 1:
                    found.append(Choice(choice_letter(hits[0]), "option_text", match.start()))
                    break
    return found


def _in_option_list(text: str, match: re.Match[str]) -> bool:
    """True when the letter of an answer match opens an option line ("D. text") that is one of several, or that
    follows a plural ("answers:")."""
    start = text.rfind("\n", 0, match.start("letter")) + 1
    lines = text[start:].split("\n", 2)
    if not _LEAD.match(lines[0]):
        return False
    plural = text[match.end("noun") : match.end("noun") + 1].lower() == "s"
    return plural or (len(lines) > 1 and bool(_LEAD.match(lines[1])))


_ANSWER_TEXT = re.compile(
    r"\b(?:answer|option|choice)(?:\s+(?:is|would\s+be|should\s+be)\s*:?|\s*:)[ \t*]*(?P<text>[^\n]{1,400})",
    re.IGNORECASE,
)


def _last_line(text: str, valid: set[str], choices: Sequence[str] | None) -> list[Choice]:
    """Answers given by the response's last line alone: a lone letter, "(C) option text", or a bold letter."""
    stripped = text.rstrip()
    if not stripped:
        return []
    paragraph = re.split(r"\n\s*\n", stripped)[-1]
    lines = [line for line in paragraph.splitlines() if line.strip()]
    last = lines[-1]
    position = len(stripped) - len(last)
    found: list[Choice] = []
    lone = _LONE.match(last)
    if lone and lone.group("letter") in valid and (len(last.strip()) <= 4 or "(" in last):
        found.append(Choice(lone.group("letter"), "last_line", position))
    tail = re.search(r"\((?P<letter>[A-Z]{1,2})\)\s*\.?\s*$", last)
    listed = tail and re.search(r"(?:\(?\b[A-Z]{1,2}\)?\s*(?:,|\band|\bor|/|&)|\bnot|n't)\s*$", last[: tail.start()])
    if tail and tail.group("letter") in valid and not lone and not listed:
        found.append(Choice(tail.group("letter"), "last_line", position + tail.start()))
    lead = _LEAD.match(last)
    if lead and len(lines) == 1 and choices:
        letter = lead.group("a") or lead.group("b")
        if letter in valid and _option_text_matches(lead.group("text"), choices[_index(letter)]):
            found.append(Choice(letter, "option_line", position))
    if len(lines) <= 2:
        bold_letters = set()
        first = None
        for line in lines[-2:]:
            for match in _BOLD.finditer(line):
                letter = match.group("letter")
                if letter in valid and (match.group("text") is None or not choices or
                                        _option_text_matches(match.group("text"), choices[_index(letter)])):
                    bold_letters.add(letter)
                    first = first if first is not None else match
        if len(bold_letters) == 1 and first is not None:
            found.append(Choice(bold_letters.pop(), "bold", position))
        elif len(bold_letters) > 1:
            found.append(Choice(None, "several_answers", position))
    return found


def _index(letter: str) -> int:
    index = 0
    for char in letter:
        index = index * 26 + (ord(char) - 64)
    return index - 1


@functools.lru_cache(maxsize=8192)
def _norm_option(text: str) -> str:
    text = text.strip().strip("*").strip()
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    text = text.replace("\\$", "$").replace("$", "")
    text = re.sub(r"\s+", " ", text).strip(" .;:,\"'`").lower()
    return text


def _option_text_matches(said: str, option: str) -> bool:
    said_n, option_n = _norm_option(said), _norm_option(option)
    if not option_n:
        return False
    return said_n == option_n or (said_n.startswith(option_n) and len(option_n) >= 3)


def gold_letter(record: dict[str, object]) -> str | None:
    """The correct letter of an MCQ record.

    From `choice_index_correct`; else `answer_correct` as a letter, or as the text of exactly one option.
    """
    index = record.get("choice_index_correct")
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return choice_letter(index)
    choices = record.get("choices")
    answer = record.get("answer_correct")
    if isinstance(answer, str):
        if isinstance(choices, list):
            letters = [choice_letter(i) for i in range(len(choices))]
            if answer.strip().upper() in letters and len(answer.strip()) <= 2:
                return answer.strip().upper()
            hits = [i for i, option in enumerate(choices) if isinstance(option, str)
                    and _norm_option(option) == _norm_option(answer)]
            if len(hits) == 1:
                return choice_letter(hits[0])
        elif re.fullmatch(r"\(?[A-Z]\)?", answer.strip()):
            return answer.strip("() ")
    return None
