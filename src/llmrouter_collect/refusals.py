"""Which setting to change when a server refuses a request's parameter (pure).

Hosted APIs have moved on from the parameters every server once took: OpenAI's reasoning models refuse
`max_tokens` (they take `max_completion_tokens`) and any temperature but their own, several providers refuse
`n>1` or unknown fields. Such a refusal is an HTTP 400 (or 422) whose error body names the parameter in its
`param` field or quotes it in its message. `refusal_hint` turns it into the setting to change::

    >>> refusal_hint("Unsupported parameter: 'max_tokens' is not supported with this model.", "max_tokens", params)
    'the server refuses `max_tokens`: pass --token-limit-field max_completion_tokens'

Only the parameters the request really sent are considered, so a message that suggests another field
("Use 'max_completion_tokens' instead") is not mistaken for a refusal of that field.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import GenerationParams

REFUSAL_STATUSES = frozenset({400, 422})
"""Statuses with which servers refuse a request's parameters (422: servers that answer validation errors as such)."""

_FIELD_REFUSED_RE = re.compile(
    r"unsupported parameter|not supported|unrecognized|unknown (?:parameter|field|argument)|extra (?:inputs|fields)"
    r"|not permitted|not allowed|does not support|only the default|unexpected (?:keyword|field|argument)"
    r"|extra_forbidden",
    re.IGNORECASE,
)
"""Words of a refusal of the parameter itself."""
_VALUE_REFUSED_RE = re.compile(
    r"unsupported value|invalid value|supported values|must be|too large|too small|cannot be (?:greater|less|more)"
    r"|greater than|less than|out of range|at most|at least",
    re.IGNORECASE,
)
"""Words of a refusal of one value of a parameter (checked first: "Unsupported value: 'x' does not support 2")."""


def refusal_hint(status: int, message: str, param: str | None, params: GenerationParams) -> str | None:
    """The setting to change for a refused request, as one line, or None when the refusal names no parameter.

    Args:
        status: the HTTP status (only 400 and 422 are refusals of parameters).
        message: the server's error message.
        param: the error body's `param` field, if any (OpenAI sets it to the refused parameter).
        params: what the request asked for (decides which parameters were sent, and the values to quote).
    """
    if status not in REFUSAL_STATUSES:
        return None
    name = refused_parameter(message, param, sent_parameters(params))
    if name is None:
        return None
    whole = not _VALUE_REFUSED_RE.search(message) and bool(_FIELD_REFUSED_RE.search(message))
    return _hint_for(name, whole, params)


def sent_parameters(params: GenerationParams) -> list[str]:
    """The request fields a refusal may name, --extra-body keys first (they override the others)."""
    names = list(params.extra_body)
    names.append(params.token_limit_field)
    if params.temperature is not None:
        names.append("temperature")
    if params.reasoning_effort is not None:
        names.append("reasoning_effort")
    if params.top_p is not None:
        names.append("top_p")
    if params.seed is not None:
        names.append("seed")
    if params.stop:
        names.append("stop")
    names.append("n")
    return list(dict.fromkeys(names))


def refused_parameter(message: str, param: str | None, sent: list[str]) -> str | None:
    """Which of the `sent` fields a refusal names: its `param` field if that was sent, else the first sent field
    that the message quotes ('x', "x", `x`) or names as a word (`n` only as "n>1", "n=2", "n must", ...)."""
    if param:
        for name in sent:
            if param == name or param.endswith(f".{name}") or param.endswith(f"'{name}'"):
                return name
    for name in sent:
        escaped = re.escape(name)
        if re.search(rf"['\"`]{escaped}['\"`]", message):
            return name
        if name == "n":
            if re.search(r"(?<![\w.])n\s*(?:>|>=|=|must|should|can|is)\s*", message):
                return name
        elif re.search(rf"(?<![\w.]){escaped}(?!\w)", message):
            return name
    return None


def _hint_for(name: str, whole: bool, params: GenerationParams) -> str:
    """The one-line hint for a refusal of `name` (`whole`: the parameter itself, not its value)."""
    if name in params.extra_body:
        return f"the server refuses `{name}` from --extra-body: remove it from --extra-body"
    if name == params.token_limit_field:
        if whole:
            other = "max_completion_tokens" if name == "max_tokens" else "max_tokens"
            return f"the server refuses `{name}`: pass --token-limit-field {other}"
        return f"the server refuses {name}={params.max_tokens}: pass a lower --max-tokens"
    if name == "temperature":
        return (
            f"the server refuses temperature={params.temperature:g}: pass --temperature default "
            "(sends none: the model's own) or a value it takes"
        )
    if name == "reasoning_effort":
        if whole:
            return "the server refuses `reasoning_effort`: leave --reasoning-effort unset (not sent) for this model"
        return f"the server refuses reasoning_effort={params.reasoning_effort!r}: pass another --reasoning-effort"
    if name == "top_p":
        return "the server refuses `top_p`: leave --top-p unset (not sent) or pass a value it takes"
    if name == "seed":
        return "the server refuses `seed`: leave --seed unset (not sent)"
    if name == "stop":
        return "the server refuses `stop`: pass --no-default-stop and no --stop"
    return (
        "the server refuses `n` (samples per request) even at n=1, after collect fell back to it by itself: "
        "this server cannot be asked as is"
    )
