"""Settings precedence (defaults < .env < environment < flags) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.settings import DEFAULT_STOP, LOCAL_API_BASE, REMOTE_API_BASE, load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert settings.k_responses == 5
    assert settings.max_attempts == 3
    assert settings.max_concurrent == 10
    assert settings.num_problems == "all"
    assert settings.dataset_names == ["math500", "mmlu_pro"]
    assert settings.resolved_api_base == LOCAL_API_BASE


def test_precedence_dotenv_env_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("COLLECT_K_RESPONSES=2\nCOLLECT_TEMPERATURE=0.1\nCOLLECT_MAX_TOKENS=77\n")
    assert load_settings().k_responses == 2
    monkeypatch.setenv("COLLECT_K_RESPONSES", "3")
    monkeypatch.setenv("COLLECT_TEMPERATURE", "0.2")
    settings = load_settings(temperature=0.9)
    assert settings.k_responses == 3  # env beats .env
    assert settings.temperature == 0.9  # flag beats env
    assert settings.max_tokens == 77  # .env beats default


def test_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_MODEL", "from-env")
    assert load_settings(model=None).model == "from-env"


def test_num_problems_parsing() -> None:
    assert load_settings(num_problems="25").num_problems == 25
    assert load_settings(num_problems="ALL").num_problems == "all"
    with pytest.raises(ConfigError, match="--num-problems"):
        load_settings(num_problems="ten")
    with pytest.raises(ConfigError, match="COLLECT_NUM_PROBLEMS"):
        load_settings(num_problems="0")


def test_stop_sequences_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_STOP", "###,<|im_end|>")
    settings = load_settings()
    assert settings.stop == ["###", "<|im_end|>"]
    assert settings.stop_sequences == [*DEFAULT_STOP, "###"]
    assert load_settings(default_stop=False).stop_sequences == ["###", "<|im_end|>"]
    # Remote APIs get only the user's stops (OpenAI allows four and never emits these tokens).
    assert load_settings(api_mode="remote").stop_sequences == ["###", "<|im_end|>"]


def test_remote_mode_base() -> None:
    assert load_settings(api_mode="remote").resolved_api_base == REMOTE_API_BASE
    assert load_settings(api_base="http://h:1/v1/").resolved_api_base == "http://h:1/v1"


def test_bad_value_names_flag_and_env() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(k_responses=0)
    assert "--k-responses" in info.value.message and "COLLECT_K_RESPONSES" in info.value.message
    with pytest.raises(ConfigError, match="api-mode"):
        load_settings(api_mode="cloud")


def test_api_key_is_secret_and_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_API_KEY", "sk-very-secret")
    settings = load_settings()
    assert settings.api_key_value == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump(mode="json"))
