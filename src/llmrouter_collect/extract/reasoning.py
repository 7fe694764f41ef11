"""Separate a response's reasoning (`<think>…</think>` and similar) from the final answer text that is graded."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Pairs of (open, close) markers used by reasoning models: DeepSeek-R1/Qwen3 (<think>), others (<thinking>,
# <reasoning>), Magistral ([THINK]), and the special-token style some chat templates leave in the text.
_MARKERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("<thought>", "</thought>"),
    ("[THINK]", "[/THINK]"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("<|channel|>analysis", "<|channel|>final"),
)
_OPEN = re.compile("|".join(re.escape(open_) for open_, _ in _MARKERS), re.IGNORECASE)
_CLOSE = re.compile("|".join(re.escape(close) for _, close in _MARKERS), re.IGNORECASE)
# Wrappers some models put around the answer after their reasoning.
_SOLUTION_TAGS = re.compile(
    r"<\|begin_of_solution\|>|<\|end_of_solution\|>|<answer>|</answer>|<\|message\|>|<\|end\|>|<\|return\|>",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FinalText:
    """The part of a response that is graded.

    Attributes:
        text: the text after the reasoning (the whole response when it has no reasoning markers), or None
            when the response stops inside its reasoning.
        had_reasoning: True when reasoning markers were found.
    """

    text: str | None
    had_reasoning: bool


def final_text(response: str) -> FinalText:
    """Return the text after the last closing reasoning marker.

    A response whose last reasoning block is opened but never closed ended while thinking: it has no final
    text (None), so nothing in its thinking can be graded. A closing marker without an opening one (chat
    templates that put `<think>` in the prompt) still ends the reasoning.

    Args:
        response: the model's full text (`full_response`). A separate `reasoning_content` is never passed here.

    Returns:
        The final text and whether reasoning markers were present.
    """
    last_close = None
    for match in _CLOSE.finditer(response):
        last_close = match
    last_open = None
    for match in _OPEN.finditer(response):
        last_open = match
    if last_close is None and last_open is None:
        return FinalText(_strip_tags(response), had_reasoning=False)
    if last_open is not None and (last_close is None or last_open.start() > last_close.start()):
        # The last reasoning block never closed: the response stopped while thinking.
        return FinalText(None, had_reasoning=True)
    assert last_close is not None
    return FinalText(_strip_tags(response[last_close.end() :]), had_reasoning=True)


def _strip_tags(text: str) -> str:
    return _SOLUTION_TAGS.sub("\n", text) if "<" in text else text
