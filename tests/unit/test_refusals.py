"""The setting to change when a server refuses one of the request's parameters (table of real refusals)."""

from __future__ import annotations

import pytest

from llmrouter_collect.client import GenerationParams, RequestFailed, http_failure
from llmrouter_collect.refusals import refusal_hint, refused_parameter, sent_parameters

DEFAULT = GenerationParams(model="m", max_tokens=4096)
REASONING = GenerationParams(
    model="o4-mini", temperature=None, token_limit_field="max_completion_tokens", reasoning_effort="minimal"
)
QWEN = GenerationParams(model="qwen3", extra_body={"chat_template_kwargs": {"enable_thinking": False}})
SEEDED = GenerationParams(model="m", seed=1, top_p=0.9, stop=("</s>",))


@pytest.mark.parametrize(
    ("params", "message", "param", "expected"),
    [
        # OpenAI reasoning models (o-series, gpt-5)
        (
            DEFAULT,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "the server refuses `max_tokens`: pass --token-limit-field max_completion_tokens",
        ),
        (
            DEFAULT,
            "Unsupported value: 'temperature' does not support 0.7 with this model. "
            "Only the default (1) value is supported.",
            "temperature",
            "the server refuses temperature=0.7: pass --temperature default (sends none: the model's own) "
            "or a value it takes",
        ),
        (
            REASONING,
            "Unsupported value: 'reasoning_effort' does not support 'minimal' with this model. "
            "Supported values are: 'low', 'medium', and 'high'.",
            "reasoning_effort",
            "the server refuses reasoning_effort='minimal': pass another --reasoning-effort",
        ),
        (
            GenerationParams(model="gpt-4o", reasoning_effort="low"),
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "reasoning_effort",
            "the server refuses `reasoning_effort`: leave --reasoning-effort unset (not sent) for this model",
        ),
        # an older server that knows only max_tokens
        (
            REASONING,
            "Unrecognized request argument supplied: max_completion_tokens",
            None,
            "the server refuses `max_completion_tokens`: pass --token-limit-field max_tokens",
        ),
        # vLLM: the value is too large, not the field unknown
        (
            DEFAULT,
            "'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum context length "
            "is 4096 tokens and your request has 30 input tokens (4096 > 4096 - 30).",
            None,
            "the server refuses max_tokens=4096: pass a lower --max-tokens",
        ),
        (
            DEFAULT,
            "max_tokens=4096 cannot be greater than max_model_len=512.",
            None,
            "the server refuses max_tokens=4096: pass a lower --max-tokens",
        ),
        # a provider that refuses unknown fields
        (
            QWEN,
            "Unrecognized request argument supplied: chat_template_kwargs",
            None,
            "the server refuses `chat_template_kwargs` from --extra-body: remove it from --extra-body",
        ),
        (
            QWEN,
            "[{'type': 'extra_forbidden', 'loc': ('body', 'chat_template_kwargs'), 'msg': 'Extra inputs are "
            "not permitted'}]",
            None,
            "the server refuses `chat_template_kwargs` from --extra-body: remove it from --extra-body",
        ),
        # providers without n>1 (reached only when n=1 is refused too)
        (DEFAULT, "'n' : number must be at most 1", "n", "the server refuses `n` (samples per request) even at n=1"),
        (DEFAULT, "n>1 is not supported by this model.", None, "the server refuses `n` (samples per request)"),
        (
            SEEDED,
            "Unsupported parameter: 'stop' is not supported with this model.",
            "stop",
            "the server refuses `stop`: pass --no-default-stop and no --stop",
        ),
        (SEEDED, "seed is not supported", None, "the server refuses `seed`: leave --seed unset (not sent)"),
        (SEEDED, "Unsupported parameter: 'top_p'", "top_p", "the server refuses `top_p`: leave --top-p unset"),
        # refusals that name no parameter of ours
        (
            DEFAULT,
            "This model's maximum context length is 4096 tokens. However, your prompt contains 30000",
            None,
            None,
        ),
        (DEFAULT, "Invalid 'messages[0].content': string too long.", "messages[0].content", None),
        # a field we did not send is not blamed, whatever the message suggests
        (REASONING, "Use 'max_tokens' instead of 'temperature'", None, None),
    ],
)
def test_refusal_hint(params: GenerationParams, message: str, param: str | None, expected: str | None) -> None:
    hint = refusal_hint(400, message, param, params)
    if expected is None:
        assert hint is None
    else:
        assert hint is not None and hint.startswith(expected)


def test_only_refusal_statuses_get_a_hint() -> None:
    message = "Unsupported parameter: 'max_tokens' is not supported with this model."
    assert refusal_hint(422, message, "max_tokens", DEFAULT) is not None
    assert refusal_hint(500, message, "max_tokens", DEFAULT) is None
    assert refusal_hint(413, message, "max_tokens", DEFAULT) is None


def test_sent_parameters_puts_extra_body_first_and_leaves_out_what_is_not_sent() -> None:
    assert sent_parameters(DEFAULT) == ["max_tokens", "temperature", "n"]
    assert sent_parameters(REASONING) == ["max_completion_tokens", "reasoning_effort", "n"]
    assert sent_parameters(QWEN)[0] == "chat_template_kwargs"


def test_refused_parameter_takes_the_param_field_first() -> None:
    assert refused_parameter("Unsupported parameter", "max_tokens", ["max_tokens", "n"]) == "max_tokens"
    assert refused_parameter("Unsupported parameter", "body.top_k", ["top_k", "n"]) == "top_k"
    assert refused_parameter("the n parameter", None, ["max_tokens", "n"]) is None  # "n" as a word is not enough


def test_http_failure_carries_the_hint_in_its_message() -> None:
    raw = (
        b'{"error": {"message": "Unsupported parameter: \'max_tokens\' is not supported with this model. '
        b'Use \'max_completion_tokens\' instead.", "type": "invalid_request_error", "param": "max_tokens"}}'
    )
    failure = http_failure(400, raw, lambda text: text, DEFAULT)
    assert isinstance(failure, RequestFailed) and failure.status == 400 and failure.kind == "http"
    assert failure.hint == "the server refuses `max_tokens`: pass --token-limit-field max_completion_tokens"
    assert failure.message.endswith(f" — {failure.hint}")
    assert failure.message.startswith("HTTP 400: Unsupported parameter: 'max_tokens'")
    plain = http_failure(400, b'{"error": {"message": "bad prompt"}}', lambda text: text, DEFAULT)
    assert plain.hint is None and plain.message == "HTTP 400: bad prompt"
