"""Token prices per model (USD per million input and output tokens) from flags or a TOML/JSON/CSV file."""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million prompt (input) and completion (output) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The USD cost of a request with these token counts."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


def parse_price_flag(text: str) -> tuple[str, Price]:
    """Parse `--price MODEL=IN,OUT` (the model name may itself contain `=`; the last one separates).

    Raises:
        ConfigError: naming the flag value and the expected form.
    """
    model, sep, numbers = text.rpartition("=")
    parts = numbers.split(",")
    if not sep or not model.strip() or len(parts) != 2:
        raise ConfigError(
            f"invalid --price {text!r}: expected MODEL=IN,OUT",
            hint="USD per million input and output tokens, e.g. --price gpt-4o-mini=0.15,0.6",
        )
    return model.strip(), Price(
        _number(parts[0], f"--price {text!r}", "input"), _number(parts[1], f"--price {text!r}", "output")
    )


def load_prices_file(path: Path) -> dict[str, Price]:
    """Read prices from a TOML, JSON or CSV file (by extension).

    Accepted shapes: TOML/JSON `{model: {input = .., output = ..}}` or `{model: [in, out]}`, optionally
    under a top-level `prices` table; CSV with a header `model,input,output`; a fleet file (TOML with
    `[[models]]`, see `..fleet`), whose models' `price` entries are read.

    Raises:
        ConfigError: naming the file, the model or row, and the field.
    """
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark, as spreadsheets save CSV
    except OSError as err:
        raise ConfigError(f"cannot read --prices {path}: {err.strerror}") from None
    if suffix == ".csv":
        return _from_csv(path, text)
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"--prices {path}: unknown file type {suffix!r}", hint="use .toml, .json or .csv")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"--prices {path}: not valid {suffix[1:].upper()}: {err}",
            hint=_QUOTE_HINT if suffix == ".toml" else _SHAPES,
        ) from None
    if suffix == ".toml" and isinstance(data, dict) and "models" in data:
        from ..fleet import fleet_prices, is_fleet  # a fleet file (`collect infer --fleet`): each model's `price`

        if is_fleet(data):
            return fleet_prices(data, source=f"--prices {path}")
    if isinstance(data, dict) and isinstance(data.get("prices"), dict):
        data = data["prices"]
    if not isinstance(data, dict):
        raise ConfigError(f"--prices {path}: expected a table of model → prices", hint=_SHAPES)
    return {str(model): _from_value(path, str(model), value) for model, value in data.items()}


_QUOTE_HINT = 'in TOML, quote model names that contain "/" or ".": "org/model-1.5" = [0.15, 0.6]'
_SHAPES = 'e.g. TOML `"gpt-4o-mini" = { input = 0.15, output = 0.6 }` or JSON `{"gpt-4o-mini": [0.15, 0.6]}`'


def parse_price(value: Any, where: str) -> Price | None:
    """A price written as `[input, output]` or `{input = .., output = ..}`; None for any other shape.

    Raises:
        ConfigError: a price that is not a non-negative number, prefixed with `where`.
    """
    if isinstance(value, list | tuple) and len(value) == 2:
        return Price(_number(value[0], where, "input"), _number(value[1], where, "output"))
    if isinstance(value, dict) and "input" in value and "output" in value:
        return Price(_number(value["input"], where, "input"), _number(value["output"], where, "output"))
    return None


def _from_value(path: Path, model: str, value: Any) -> Price:
    where = f"--prices {path}, model {model!r}"
    price = parse_price(value, where)
    if price is not None:
        return price
    if path.suffix.lower() == ".toml" and isinstance(value, dict) and value:
        # `gpt-4o.mini = [..]` is a dotted key: TOML reads a table `gpt-4o` holding `mini`.
        inner = next(iter(value))
        raise ConfigError(
            f"{where}: holds {inner!r} instead of input and output (a model name with '.' read as a table?)",
            hint=_QUOTE_HINT,
        )
    raise ConfigError(f"{where}: expected [input, output] or {{input, output}}", hint=_SHAPES)


def _from_csv(path: Path, text: str) -> dict[str, Price]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    if not {"model", "input", "output"} <= set(header):
        raise ConfigError(
            f"--prices {path}: the CSV header must have model,input,output (it has: {','.join(header) or 'nothing'})",
            hint="e.g. a first line `model,input,output`, then `gpt-4o-mini,0.15,0.6` (USD per million tokens)",
        )
    prices = {}
    for row_no, row in enumerate(reader, start=2):
        where = f"--prices {path}, row {row_no}"
        model = (row.get("model") or "").strip()
        if not model:
            raise ConfigError(f"{where}: empty model")
        prices[model] = Price(_number(row.get("input"), where, "input"), _number(row.get("output"), where, "output"))
    return prices


def _number(value: Any, where: str, name: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{where}: {name} price is missing", hint="prices are USD per million tokens, e.g. 0.15")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ConfigError(
            f"{where}: {name} price {value!r} is not a non-negative number",
            hint="prices are USD per million tokens, e.g. 0.15",
        )
    return number


def resolve_prices(flags: Iterable[str] = (), file: Path | None = None) -> dict[str, Price]:
    """Prices from a file, then `--price` flags on top (a flag wins for its model)."""
    prices = load_prices_file(file) if file is not None else {}
    for text in flags:
        model, price = parse_price_flag(text)
        prices[model] = price
    return prices


def unpriced(models: Iterable[str], prices: Mapping[str, Price]) -> list[str]:
    """The models without a price."""
    return [model for model in models if model not in prices]
