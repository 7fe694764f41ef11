"""The fleet file: [defaults] under [[models]] under flags, fleet-only keys, and one-line errors naming the file,
the model and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from llmrouter_collect.errors import ConfigError
from llmrouter_collect.fleet import build_fleet, fleet_prices, is_fleet, load_fleet, models_fleet
from llmrouter_collect.report.prices import Price, load_prices_file
from llmrouter_collect.settings import load_settings

FLEET = """
[defaults]
k_responses = 3
max_tokens = 512
endpoints = ["http://127.0.0.1:9000/v1"]

[[models]]
name = "small"
max_concurrent = 4
temperature = 0.0
price = { input = 0.15, output = 0.6 }

[[models]]
name = "big"
endpoints = ["http://127.0.0.1:9001/v1"]
api_key_env = "BIG_KEY"
max_tokens = 2048
extra = 1
"""


def fleet(text: str, environ: dict[str, str] | None = None, **flags: Any) -> list[Any]:
    return build_fleet(tomllib.loads(text), load_settings(**flags), environ or {}, source="fleet.toml")


def error_of(text: str, environ: dict[str, str] | None = None, **flags: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        fleet(text, environ, **flags)
    message = caught.value.message
    assert "\n" not in message
    return message


def test_defaults_apply_to_every_model_and_entries_override_them() -> None:
    small, big = fleet(FLEET.replace("extra = 1\n", ""), {"BIG_KEY": "sk-big"})
    assert (small.name, small.settings.model, big.settings.model) == ("small", "small", "big")
    assert small.settings.k_responses == big.settings.k_responses == 3
    assert (small.settings.max_tokens, big.settings.max_tokens) == (512, 2048)
    assert (small.settings.max_concurrent, big.settings.max_concurrent) == (4, 10)
    assert small.settings.api_base == ["http://127.0.0.1:9000/v1"] and small.endpoints == ("http://127.0.0.1:9000/v1",)
    assert big.settings.api_base == ["http://127.0.0.1:9001/v1"]
    assert small.price == Price(0.15, 0.6) and big.price is None
    assert small.settings.api_key is None and big.settings.api_key_value == "sk-big"
    assert big.api_key_env == "BIG_KEY"


def test_flags_win_over_the_file_and_the_file_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECT_MAX_TOKENS", "99")
    monkeypatch.setenv("COLLECT_SEED", "7")
    small, big = fleet(FLEET.replace("extra = 1\n", ""), {"BIG_KEY": "k"}, max_concurrent=2)
    assert small.settings.max_concurrent == big.settings.max_concurrent == 2  # the flag
    assert (small.settings.max_tokens, big.settings.max_tokens) == (512, 2048)  # the file, not the environment
    assert small.settings.seed == 7  # the environment, where the file says nothing
    assert small.settings.source_of("max_tokens") == "flag" and small.settings.source_of("seed") == "env"


def test_unknown_key_names_file_model_key_and_the_close_match() -> None:
    message = error_of(FLEET.replace("extra = 1", "max_concurent = 3"), {"BIG_KEY": "k"})
    assert message == "fleet.toml, model 'big': unknown key 'max_concurent' (did you mean 'max_concurrent'?)"
    assert "[defaults]: unknown key 'k'" in error_of("[defaults]\nk = 3\n[[models]]\nname = 'a'\n")
    assert "unknown table 'model'" in error_of("[[model]]\nname = 'a'\n")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("max_concurrent = 'many'", "fleet.toml, model 'a': max_concurrent = 'many': Input should be a valid integer"),
        ("temperature = -1", "fleet.toml, model 'a': temperature = -1: Input should be greater than or equal to 0"),
        ("endpoint = 'chats'", "fleet.toml, model 'a': endpoint = 'chats': Input should be 'chat' or 'completions'"),
    ],
)
def test_a_bad_value_is_the_pydantic_error_in_one_line(line: str, expected: str) -> None:
    assert error_of(f"[[models]]\nname = 'a'\n{line}\n").startswith(expected)


def test_a_bad_value_from_defaults_says_so() -> None:
    message = error_of("[defaults]\nk_responses = 0\n[[models]]\nname = 'a'\n")
    assert message.startswith("fleet.toml, model 'a': k_responses = 0 (from [defaults]): Input should be greater")


def test_api_key_env_missing_names_model_and_variable_and_never_a_key() -> None:
    message = error_of(FLEET.replace("extra = 1\n", ""), {"OTHER": "sk-secret"})
    assert message == "fleet.toml, model 'big': api_key_env names BIG_KEY, which is not set"
    assert "not set" in error_of(FLEET.replace("extra = 1\n", ""), {"BIG_KEY": "  "})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("api_key = 'sk-in-the-file'", "key 'api_key' is not allowed here"),
        ("model = 'b'", "key 'model' is not allowed here"),
        ("price = 3", "`price` must be { input = .., output = .. }"),
        ("price = { input = -1, output = 2 }", "input price -1 is not a non-negative number"),
        ("endpoints = []", "`endpoints` must be a list of base URLs"),
        ("api_base = 'http://a/v1'\nendpoints = ['http://b/v1']", "both `endpoints` and `api_base`"),
    ],
)
def test_refused_keys_and_shapes(line: str, expected: str) -> None:
    message = error_of(f"[[models]]\nname = 'a'\n{line}\n")
    assert message.startswith("fleet.toml, model 'a'") and expected in message
    assert "sk-in-the-file" not in message


def test_several_endpoints_of_one_model_become_its_api_base_list() -> None:
    (model,) = fleet("[[models]]\nname = 'a'\nendpoints = ['http://a:1/v1', 'http://b:2/v1/']\n")
    assert model.endpoints == ("http://a:1/v1", "http://b:2/v1/")
    assert model.settings.api_base == ["http://a:1/v1", "http://b:2/v1/"]
    assert model.settings.resolved_api_bases == ["http://a:1/v1", "http://b:2/v1"]


def test_duplicate_names_and_missing_names_are_refused() -> None:
    twice = error_of("[[models]]\nname = 'a'\n[[models]]\nname = 'b'\n[[models]]\nname = 'a'\n")
    assert twice == "fleet.toml: model 'a' is listed twice ([[models]] entries 1 and 3)"
    assert "[[models]] entry 2: no `name`" in error_of("[[models]]\nname = 'a'\n[[models]]\nk_responses = 2\n")
    assert "no models" in error_of("[defaults]\nk_responses = 2\n")
    assert "`name` belongs in a [[models]] entry" in error_of("[defaults]\nname = 'x'\n[[models]]\nname = 'a'\n")


def test_two_models_writing_the_same_file_are_refused() -> None:
    text = "[defaults]\noutput_file = 'same.jsonl'\n[[models]]\nname = 'a'\n[[models]]\nname = 'b'\n"
    message = error_of(text)
    assert message.startswith("fleet.toml: models 'a' and 'b' would both write") and "same.jsonl" in message
    assert "would both write" in error_of("[[models]]\nname = 'a'\n[[models]]\nname = 'b'\n", output_file="x.jsonl")
    # model names that the file name cleans to the same text
    assert "would both write" in error_of("[[models]]\nname = 'org/m'\n[[models]]\nname = 'org m'\n")
    separate = "[[models]]\nname = 'a'\noutput_file = 'a.jsonl'\n[[models]]\nname = 'b'\noutput_file = 'b.jsonl'\n"
    assert [m.settings.output_file for m in fleet(separate)] == ["a.jsonl", "b.jsonl"]


def test_model_flag_beside_a_fleet_file_is_refused() -> None:
    assert "--model and --fleet fleet.toml both name models" in error_of("[[models]]\nname = 'a'\n", model="b")


def test_repeated_model_flags_build_the_same_list() -> None:
    base = load_settings(api_base="http://127.0.0.1:9000/v1", max_concurrent=3)
    a, b = models_fleet(["a", "b"], base)
    assert (a.settings.model, b.settings.model) == ("a", "b")
    assert a.settings.max_concurrent == b.settings.max_concurrent == 3
    assert a.endpoints == b.endpoints == ("http://127.0.0.1:9000/v1",)
    with pytest.raises(ConfigError, match="given twice"):
        models_fleet(["a", "a"], base)
    with pytest.raises(ConfigError, match="would both write"):
        models_fleet(["a", "b"], load_settings(output_file="one.jsonl"))


def test_a_fleet_file_is_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text("[[models]]\nname = 'a'\nk_responses = 2\n")
    assert load_fleet(path, load_settings(), {})[0].settings.k_responses == 2
    path.write_text("[[models]\nname = 'a'\n")
    with pytest.raises(ConfigError, match=r"--fleet .*fleet.toml: not valid TOML"):
        load_fleet(path, load_settings(), {})


def test_prices_come_from_the_fleet_file_without_needing_keys(tmp_path: Path) -> None:
    data = tomllib.loads(FLEET)  # BIG_KEY unset and an unknown key: pricing does not care
    assert is_fleet(data) and not is_fleet({"prices": {}})
    assert fleet_prices(data, source="f") == {"small": Price(0.15, 0.6)}
    shared = "[defaults]\nprice = [1, 2]\n[[models]]\nname = 'a'\n[[models]]\nname = 'b'\nprice = [3, 4]\n"
    path = tmp_path / "fleet.toml"
    path.write_text(shared)
    assert load_prices_file(path) == {"a": Price(1, 2), "b": Price(3, 4)}
    path.write_text("[[models]]\nname = 'a'\nprice = 'cheap'\n")
    with pytest.raises(ConfigError, match=r"--prices .*fleet.toml, model 'a': `price` must be"):
        load_prices_file(path)


def test_the_example_fleet_file_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "fleet.toml"
    models = load_fleet(example, load_settings(), {"OPENAI_API_KEY": "sk-example"})
    assert [m.name for m in models] == ["Qwen/Qwen3-1.7B", "gpt-4o-mini"]
    assert models[0].settings.resolved_api_bases == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]
    assert models[0].settings.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert (models[1].settings.rpm, models[1].settings.tpm) == (500, 200_000)
    assert models[1].settings.api_mode == "remote" and models[1].settings.api_key_value == "sk-example"
    assert all(m.settings.k_responses == 5 and m.price is not None for m in models)
