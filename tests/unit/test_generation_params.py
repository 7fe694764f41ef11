"""Generation parameters of today's remote models: settings, request bodies, and the results file's identity."""

from __future__ import annotations

from typing import Any

import pytest

from llmrouter_collect.client import GenerationParams, build_request
from llmrouter_collect.errors import ConfigError
from llmrouter_collect.infer import identity_mismatch
from llmrouter_collect.settings import Settings, load_settings

MESSAGES = [{"role": "user", "content": "2+2?"}]


def test_defaults_send_what_was_always_sent() -> None:
    settings = load_settings()
    assert (settings.token_limit_field, settings.reasoning_effort, settings.extra_body) == ("max_tokens", None, {})
    assert settings.temperature == 0.7 and settings.rpm is None and settings.tpm is None
    path, body = build_request(MESSAGES, GenerationParams(model="m", max_tokens=50), 3)
    assert path == "chat/completions"
    assert body == {"model": "m", "messages": MESSAGES, "n": 3, "temperature": 0.7, "max_tokens": 50}


def test_reasoning_model_body() -> None:
    params = GenerationParams(
        model="o4-mini",
        temperature=None,
        max_tokens=900,
        token_limit_field="max_completion_tokens",
        reasoning_effort="low",
    )
    _, body = build_request(MESSAGES, params, 1)
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 900 and body["reasoning_effort"] == "low"


def test_extra_body_is_merged_last_but_never_over_the_request_itself() -> None:
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20, "temperature": 0.6, "n": 9}
    params = GenerationParams(model="qwen3", extra_body=extra)
    _, body = build_request("plain prompt", GenerationParams(model="qwen3", endpoint="completions"), 2)
    assert body["prompt"] == "plain prompt"
    _, body = build_request(MESSAGES, params, 2)
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["top_k"] == 20
    assert body["temperature"] == 0.6  # extra_body wins over the dedicated settings: it is merged last
    assert body["n"] == 2 and body["model"] == "qwen3" and body["messages"] == MESSAGES


@pytest.mark.parametrize(
    ("given", "expected"),
    [("default", None), ("DEFAULT", None), (" default ", None), ("0.3", 0.3), (1.0, 1.0), (None, None)],
)
def test_temperature_default_means_not_sent(given: Any, expected: float | None) -> None:
    assert Settings(temperature=given).temperature == expected


def test_settings_from_python_values_as_a_fleet_file_gives_them() -> None:
    settings = Settings(
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        token_limit_field="max_completion_tokens",
        reasoning_effort="high",
        rpm=500,
        tpm=200_000,
    )
    assert settings.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert (settings.token_limit_field, settings.reasoning_effort, settings.rpm, settings.tpm) == (
        "max_completion_tokens",
        "high",
        500,
        200_000,
    )


def test_extra_body_from_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_EXTRA_BODY", '{"top_k": 20}')
    assert load_settings().extra_body == {"top_k": 20}
    assert load_settings(extra_body='{"min_p": 0.1}').extra_body == {"min_p": 0.1}  # the flag wins


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"extra_body": "{bad"}, "invalid --extra-body / COLLECT_EXTRA_BODY ('{bad'): not JSON (unexpected character"),
        ({"extra_body": "[1, 2]"}, "--extra-body / COLLECT_EXTRA_BODY ('[1, 2]'): must be a JSON object"),
        ({"extra_body": '{"n": 4}'}, "may not set 'n': collect sets model, messages, prompt, n, stream itself"),
        ({"extra_body": '{"model": "x", "stream": true}'}, "may not set 'model', 'stream'"),
        (
            {"temperature": "hot"},
            "--temperature / COLLECT_TEMPERATURE ('hot'): must be a number (e.g. 0.7), or 'default'",
        ),
        ({"token_limit_field": "max_output_tokens"}, "--token-limit-field / COLLECT_TOKEN_LIMIT_FIELD"),
        ({"rpm": 0}, "--rpm / COLLECT_RPM (0): Input should be greater than or equal to 1"),
        ({"tpm": "lots"}, "--tpm / COLLECT_TPM ('lots')"),
    ],
)
def test_bad_values_are_one_line_naming_the_flag(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_extra_body_reserved_keys_are_refused_from_python_too() -> None:
    with pytest.raises(ValueError, match="may not set 'messages'"):
        Settings(extra_body={"messages": []})


def test_reasoning_effort_blank_is_unset() -> None:
    assert load_settings(reasoning_effort="  ").reasoning_effort is None
    assert load_settings(reasoning_effort=" low ").reasoning_effort == "low"


OLD_GENERATION = {"temperature": 0.7, "top_p": None, "max_tokens": 100, "seed": None, "stop": []}


def identity(**generation: Any) -> dict[str, Any]:
    params = GenerationParams(model="m", max_tokens=100, **generation)
    return {"model": "m", "endpoint": "chat", "generation": params.as_record(), "prompt_fingerprint": "sha256:a"}


def test_new_fields_are_part_of_the_identity() -> None:
    qwen = identity(extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert identity_mismatch(qwen, qwen) is None
    other = identity(extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    message = identity_mismatch(qwen, other) or ""
    assert (
        message.startswith("generation.extra_body: the file has {'chat_template_kwargs'") and "--extra-body" in message
    )
    assert "--reasoning-effort" in (identity_mismatch(identity(reasoning_effort="low"), identity()) or "")
    assert "--token-limit-field" in (
        identity_mismatch(identity(), identity(token_limit_field="max_completion_tokens")) or ""
    )
    assert "generation.temperature: the file has 0.7, this run None" in (
        identity_mismatch(identity(), identity(temperature=None)) or ""
    )


def test_files_from_before_the_new_fields_resume_at_their_defaults() -> None:
    old_file = {**identity(), "generation": dict(OLD_GENERATION)}
    assert identity_mismatch(old_file, identity()) is None
    refused = identity_mismatch(old_file, identity(extra_body={"top_k": 20}))
    assert refused == "generation.extra_body: the file has {}, this run {'top_k': 20} (--extra-body)"
    assert "--reasoning-effort" in (identity_mismatch(old_file, identity(reasoning_effort="high")) or "")
