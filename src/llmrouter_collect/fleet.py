"""The fleet: several models run by one `collect infer`, from a fleet file (TOML) or from `--model a --model b`.

A fleet file has an optional `[defaults]` table that applies to every model and one `[[models]]` entry per
model, which overrides it. Their keys are the names of the `Settings` fields (`max_concurrent`, `max_tokens`,
`temperature`, `k_responses`, `output_file`, ...: validated by `Settings`, so a new setting works here with no
change), plus a few of the fleet's own:

    name          the model's name as its server knows it (the `model` setting)
    endpoints     list of base URLs of its OpenAI-compatible API (the `api_base` setting)
    api_key_env   the NAME of the environment variable holding its API key (never the key itself)
    price         USD per million tokens, `{ input = 0.15, output = 0.6 }` (read by `collect report --prices`)

Layers, lowest first: defaults < `.env` < environment < `[defaults]` < `[[models]]` < flags. A flag given on the
command line applies to every model; `--model` names one model and is refused beside `--fleet`.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError
from .fileio import real_path
from .report.prices import Price, parse_price
from .settings import Settings

NAME, ENDPOINTS, API_KEY_ENV, PRICE = "name", "endpoints", "api_key_env", "price"
FLEET_KEYS = (NAME, ENDPOINTS, API_KEY_ENV, PRICE)
"""Keys of a fleet file that are not Settings field names."""
REFUSED_KEYS = {
    "model": "name the model with `name`",
    "api_key": "never write a key into a file: put it in an environment variable and name that with `api_key_env`",
    "fleet": "a fleet file cannot name another fleet file",
}
"""Settings field names a fleet file may not use, and what to write instead."""
TABLES = ("defaults", "models")
"""The top-level tables of a fleet file."""
FLEET_HINT = "see examples/fleet.toml and docs/usage.md (Several models at once)"


@dataclass(frozen=True, slots=True)
class FleetModel:
    """One model of a fleet: its name, its effective settings, and what the fleet file says of it."""

    name: str
    settings: Settings
    price: Price | None = None
    api_key_env: str | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints given (the file's `endpoints`, or `api_base` from any layer); empty: the api_mode
        default."""
        return tuple(self.settings.api_base)


def is_fleet(data: Mapping[str, Any]) -> bool:
    """True if parsed TOML is a fleet file (it has a `[[models]]` array of tables)."""
    models = data.get("models")
    return isinstance(models, list) and all(isinstance(entry, dict) for entry in models)


def read_fleet_file(path: Path) -> dict[str, Any]:
    """Parse a fleet file.

    Raises:
        ConfigError: it cannot be read, or is not valid TOML (naming the file).
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read --fleet {path}: {err.strerror}", hint=FLEET_HINT) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"--fleet {path}: not valid TOML: {err}", hint=FLEET_HINT) from None


def load_fleet(path: Path, base: Settings, environ: Mapping[str, str]) -> list[FleetModel]:
    """Read a fleet file and build each model's settings on top of `base` (see `build_fleet`)."""
    return build_fleet(read_fleet_file(path), base, environ, source=str(path))


def build_fleet(
    data: Mapping[str, Any], base: Settings, environ: Mapping[str, str], *, source: str
) -> list[FleetModel]:
    """Each model's settings: `base` (defaults, .env, environment, flags) with `[defaults]` and its entry on top.

    Args:
        data: the parsed fleet file.
        base: the settings from flags, environment and .env; its flags win over the file.
        environ: where `api_key_env` names are looked up (the process environment).
        source: the file's name, for messages.

    Raises:
        ConfigError: one line naming the file, the model and the key: an unknown or refused key, a bad value, a
            missing name, a duplicate model, an `api_key_env` variable that is not set, two models writing the
            same results file, or `--model` given beside the file.
    """
    if base.source_of("model") == "flag":
        raise ConfigError(
            f"--model and --fleet {source} both name models", hint="list every model in the fleet file (`name`)"
        )
    for key in data:
        if key not in TABLES:
            raise ConfigError(f"{source}: unknown table {key!r}{_did_you_mean(key, TABLES)}", hint=FLEET_HINT)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: `defaults` must be a table ([defaults])", hint=FLEET_HINT)
    entries = data.get("models")
    if not is_fleet(data) or not entries:
        raise ConfigError(f"{source}: no models: add one [[models]] table per model", hint=FLEET_HINT)
    _check_keys(defaults, f"{source}, [defaults]", allow_name=False)
    models: list[FleetModel] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        name = entry.get(NAME)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"{source}, [[models]] entry {number}: no `name` (the model's name as its server knows it)",
                hint='e.g. name = "Qwen/Qwen2.5-1.5B-Instruct"',
            )
        name = name.strip()
        where = f"{source}, model {name!r}"
        if name in seen:
            raise ConfigError(
                f"{source}: model {name!r} is listed twice ([[models]] entries {seen[name]} and {number})",
                hint="list each model once",
            )
        seen[name] = number
        _check_keys(entry, where, allow_name=True)
        models.append(_fleet_model(name, {**defaults, **entry}, set(entry), base, environ, where))
    check_outputs(models, source=source)
    return models


def models_fleet(names: Sequence[str], base: Settings) -> list[FleetModel]:
    """The fleet of `--model a --model b`: the same settings (endpoints, key, limits) for each named model.

    Raises:
        ConfigError: a model named twice, or two models writing the same results file (`--output-file`).
    """
    models: list[FleetModel] = []
    for name in names:
        name = name.strip()
        if any(model.name == name for model in models):
            raise ConfigError(f"--model {name!r} is given twice", hint="name each model once")
        settings = _settings(base, {"model": name}, set(), f"--model {name!r}")
        models.append(FleetModel(name=name, settings=settings))
    check_outputs(models, source="--model")
    return models


def check_outputs(models: Sequence[FleetModel], *, source: str) -> None:
    """Refuse two models that would write the same results file (each model resumes its own file).

    Raises:
        ConfigError: naming both models and the file.
    """
    from .infer import output_path  # the engine (httpx, datasets) loads only when a fleet is built, not for prices

    writers: dict[Path, str] = {}
    for model in models:
        path = output_path(model.settings, model.name)
        key = real_path(path).absolute()
        if key in writers:
            raise ConfigError(
                f"{source}: models {writers[key]!r} and {model.name!r} would both write {path}",
                hint="give each model its own `output_file` in the fleet file (and no --output-file flag)",
            )
        writers[key] = model.name


def fleet_prices(data: Mapping[str, Any], *, source: str) -> dict[str, Price]:
    """Model name -> price, from the `price` of each `[[models]]` entry (or of `[defaults]`); unpriced models are
    left out. Reads nothing else of the file: no key or setting is needed to price a report.

    Raises:
        ConfigError: a price that is not `{ input = .., output = .. }` or `[input, output]`, naming file and model.
    """
    defaults = data.get("defaults", {})
    shared = defaults.get(PRICE) if isinstance(defaults, dict) else None
    prices: dict[str, Price] = {}
    for number, entry in enumerate(data.get("models", []), start=1):
        name = entry.get(NAME) if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{source}, [[models]] entry {number}: no `name`", hint=FLEET_HINT)
        value = entry.get(PRICE, shared)
        if value is not None:
            prices[name.strip()] = _price(value, f"{source}, model {name.strip()!r}")
    return prices


def endpoint_update(endpoints: Sequence[str], where: str) -> dict[str, Any]:
    """The settings update that points a model at its endpoints.

    Raises:
        ConfigError: no endpoint, or an endpoint that is not a string.
    """
    if not endpoints or not all(isinstance(url, str) and url.strip() for url in endpoints):
        raise ConfigError(
            f"{where}: `endpoints` must be a list of base URLs", hint='e.g. endpoints = ["http://127.0.0.1:8000/v1"]'
        )
    return {"api_base": [url.strip() for url in endpoints]}


def _check_keys(table: Mapping[str, Any], where: str, *, allow_name: bool) -> None:
    """Refuse a key that is neither a fleet key nor a Settings field (naming the close match), or a refused one."""
    known = [*Settings.model_fields, *FLEET_KEYS]
    for key in table:
        if key == NAME and not allow_name:
            raise ConfigError(f"{where}: `name` belongs in a [[models]] entry", hint=FLEET_HINT)
        if key in REFUSED_KEYS:
            raise ConfigError(f"{where}: key {key!r} is not allowed here", hint=REFUSED_KEYS[key])
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{_did_you_mean(key, known)}", hint=FLEET_HINT)


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fleet_model(
    name: str,
    table: dict[str, Any],
    own: set[str],
    base: Settings,
    environ: Mapping[str, str],
    where: str,
) -> FleetModel:
    """One model from its merged table (`own`: the keys its entry gave, the others came from [defaults])."""
    update = {key: value for key, value in table.items() if key not in FLEET_KEYS}
    update["model"] = name
    if ENDPOINTS in table:
        if "api_base" in table:
            raise ConfigError(f"{where}: both `endpoints` and `api_base`", hint="keep `endpoints` (a list of URLs)")
        given = table[ENDPOINTS]
        listed = [given] if isinstance(given, str) else given if isinstance(given, list) else []
        update.update(endpoint_update(listed, where))
    variable = table.get(API_KEY_ENV)
    if variable is not None:
        if not isinstance(variable, str) or not variable.strip():
            raise ConfigError(f"{where}: `api_key_env` must name an environment variable", hint='e.g. "OPENAI_API_KEY"')
        variable = variable.strip()
        key = environ.get(variable, "")
        if not key.strip():
            raise ConfigError(
                f"{where}: api_key_env names {variable}, which is not set",
                hint=f"export {variable} with the model's API key before running (the key never goes in the file)",
            )
        update["api_key"] = key.strip()
    price = _price(table[PRICE], where) if PRICE in table else None
    settings = _settings(base, update, set(table) - own, where)
    return FleetModel(name=name, settings=settings, price=price, api_key_env=variable)


def _settings(base: Settings, update: dict[str, Any], from_defaults: set[str], where: str) -> Settings:
    """`base` with `update` applied; a bad value becomes one line per field naming where it came from."""
    try:
        return base.updated(update)
    except ValidationError as err:
        lines = []
        for item in err.errors():
            field = str(item["loc"][0]) if item["loc"] else "?"
            origin = " (from [defaults])" if field in from_defaults else ""
            shown = "***" if field == "api_key" else repr(item.get("input"))
            lines.append(f"{where}: {field} = {shown}{origin}: {item['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines), hint=FLEET_HINT) from None


def _price(value: Any, where: str) -> Price:
    price = parse_price(value, f"{where}, price")
    if price is None:
        raise ConfigError(
            f"{where}: `price` must be {{ input = .., output = .. }} (USD per million tokens)",
            hint="e.g. price = { input = 0.15, output = 0.6 }",
        )
    return price
