"""Settings: every option of every command, from defaults < .env < environment (COLLECT_*) < flags.

Where each value came from is kept (`Settings.source_of`), because a `.env` file is not always the user's own:
a cloned repository's `.env` could point `api_base` at a server that would then receive the key exported in the
shell, or set the `vllm_command` that `collect serve` runs. `load_settings` logs one line naming the `.env` it
read and what it set (logger `llmrouter_collect.settings`; a warning when it sets `api_base` or `vllm_command`),
and `resolved_api_bases` refuses to pair a key from the environment or a flag with an `api_base` only that file
gave (unless it is this machine). `COLLECT_ENV_FILE` (environment only) chooses the file, or `none` for no file.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import defaults
from .defaults import (  # noqa: F401  (named here too: settings is where readers look for them)
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_STOP,
    INITIAL_RETRY_DELAY,
    LOCAL_API_BASE,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    REMOTE_API_BASE,
)
from .errors import ConfigError
from .shards import ShardSpec, parse_shard

ENV_PREFIX = "COLLECT_"
ENV_FILE_VAR = "COLLECT_ENV_FILE"
"""Environment variable (never a flag or .env key) naming the .env file to read; empty or `none`: read none."""
DEFAULT_ENV_FILE = ".env"
"""Read from the current directory when COLLECT_ENV_FILE is not set (and only if it exists)."""
RISKY_FIELDS = ("api_base", "vllm_command")
"""Settings a .env file could use against its reader: where the key is sent, what `collect serve` runs.
Their values are shown when a .env sets them (never a value of api_key)."""

EXTRA_BODY_RESERVED = ("model", "messages", "prompt", "n", "stream")
"""Request fields --extra-body may not set: collect sets them itself, and reads only whole (not streamed) replies."""

Source = Literal["default", "dotenv", "env", "flag"]
logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    """All options of `collect`. Each field is a flag `--name`, an env var `COLLECT_NAME` and a `.env` key."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=None,  # load_settings names the file (COLLECT_ENV_FILE), so it can say which one it read
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
        env_ignore_empty=True,
    )

    # --- what to ask -------------------------------------------------------------------------------------
    model: str | None = None
    """Model name as the server knows it. Local mode with no model: the server's only model is used."""
    dataset: str = defaults.DATASET
    """Comma-separated datasets: `collect datasets` names, `sample`, `hf:OWNER/NAME[:CONFIG][@SPLIT]`, or file paths."""
    dataset_map: Path | None = None
    """TOML file mapping the columns of `hf:` datasets (and of other-schema local files) onto the unified fields."""
    num_problems: int | Literal["all"] = defaults.NUM_PROBLEMS
    """How many problems (a fixed subset spread over categories), or `all`."""
    shard: str | None = None
    """`I/N`: ask only shard I of N of those problems (by a hash of unique_id), e.g. one of N machines; unset: all."""
    k_responses: int = Field(default=defaults.K_RESPONSES, ge=1)
    """Responses (samples) per problem."""
    temperature: Annotated[float, Field(ge=0.0)] | None = defaults.TEMPERATURE
    """Sampling temperature, or `default` (None in Python): none sent, for models that take only their own."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling; not sent when unset."""
    max_tokens: int = Field(default=defaults.MAX_TOKENS, ge=1)
    """Maximum tokens per response."""
    token_limit_field: Literal["max_tokens", "max_completion_tokens"] = defaults.TOKEN_LIMIT_FIELD
    """Request field of the token limit: `max_tokens`, or `max_completion_tokens` (OpenAI o-series, gpt-5)."""
    reasoning_effort: str | None = None
    """`reasoning_effort` sent to reasoning models (e.g. minimal, low, medium, high); not sent when unset."""
    extra_body: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    """JSON object merged into each request last (not model/messages/prompt/n/stream); part of the file's identity."""
    seed: int | None = None
    """Sampling seed sent to the server (if it supports one); not sent when unset."""
    stop: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra stop sequences (comma-separated in env/flags), merged with the default chat special tokens."""
    default_stop: bool = True
    """Add the chat special tokens (<end_of_turn>, <|im_end|>, <|eot_id|>) as stop sequences in local mode."""
    endpoint: Literal["chat", "completions"] = defaults.ENDPOINT
    """`chat` uses /v1/chat/completions; `completions` uses /v1/completions (base models)."""
    prompt_template: Path | None = None
    """TOML file with `mcq` and/or `open_ended` templates replacing the built-in prompts."""

    fleet: Path | None = None
    """TOML file of several models to run at once (`collect infer`), each with its endpoints, limits and key."""

    # --- where to ask ------------------------------------------------------------------------------------
    api_mode: Literal["local", "remote"] = defaults.API_MODE
    """`local` (a vLLM server, default http://localhost:8000/v1) or `remote` (OpenAI, key required)."""
    api_base: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Base URL of the OpenAI-compatible API (ends in /v1); several (repeat the flag, or comma-separated) are
    endpoints of one model, and requests go to the healthy one with the fewest in flight. Default depends on
    api_mode."""
    api_key: SecretStr | None = None
    """Bearer key. Required in remote mode; also protects a server started by `collect serve`."""

    # --- how hard to ask ---------------------------------------------------------------------------------
    max_concurrent: int = Field(default=defaults.MAX_CONCURRENT, ge=1, le=4096)
    """Requests in flight at once, over all endpoints."""
    endpoint_concurrency: int | None = Field(default=None, ge=1, le=4096)
    """Most requests in flight at one endpoint (with several --api-base); unset: only --max-concurrent applies."""
    batch_size: int = Field(default=defaults.BATCH_SIZE, ge=1)
    """Results between two flushes to disk (fsync); never a barrier between requests."""
    max_attempts: int = Field(default=defaults.MAX_ATTEMPTS, ge=1)
    """Runs that may try one problem before it is left failed."""
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    """Retries of one request on transport errors, 408, 409, 429 and 5xx, within one run."""
    initial_retry_delay: float = Field(default=INITIAL_RETRY_DELAY, ge=0.0)
    """First backoff delay in seconds (doubles each retry, with jitter)."""
    max_retry_delay: float = Field(default=MAX_RETRY_DELAY, ge=0.0)
    """Cap on one backoff delay in seconds, and on a server's Retry-After."""
    request_timeout: float = Field(default=DEFAULT_REQUEST_TIMEOUT, gt=0.0)
    """Seconds one request may take from sending to the last byte of its answer."""
    connect_timeout: float = Field(default=DEFAULT_CONNECT_TIMEOUT, gt=0.0)
    """Seconds to open a connection."""
    rpm: int | None = Field(default=None, ge=1)
    """Requests per minute allowed per endpoint (a hosted API's published limit); unset: no limit."""
    tpm: int | None = Field(default=None, ge=1)
    """Tokens (prompt + max_tokens × n, corrected by the usage) per minute allowed per endpoint; unset: no limit."""

    # --- where to write ----------------------------------------------------------------------------------
    output_dir: Path = Path(defaults.OUTPUT_DIR)
    """Directory for results files."""
    output_file: str | None = None
    """Results file name (in output_dir) or path; default derived from model and datasets, so reruns resume."""

    # --- collect serve -----------------------------------------------------------------------------------
    vllm_command: str = "vllm serve"
    """How to start vLLM, e.g. `vllm serve` or `/opt/venv/bin/python -m vllm.entrypoints.openai.api_server`."""
    host: str = "127.0.0.1"
    """Address `collect serve` binds."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port `collect serve` binds (the first replica's; replica i binds port + i)."""
    replicas: int = Field(default=1, ge=1, le=64)
    """How many vLLM servers `collect serve` starts, on consecutive ports, each with its own GPUs."""
    gpus_per_replica: int | None = Field(default=None, ge=1)
    """GPUs per replica: replica i gets devices i*G..i*G+G-1 (of CUDA_VISIBLE_DEVICES, if set). Default: 1 with
    several replicas; with one, CUDA_VISIBLE_DEVICES is left as it is."""
    max_model_len: int | None = Field(default=None, ge=16)
    """Context length for vLLM (`--max-model-len`); vLLM's default when unset."""
    gpu_util: float = Field(default=0.95, gt=0.0, le=1.0)
    """Fraction of GPU memory vLLM may use (`--gpu-memory-utilization`)."""
    serve_timeout: float = Field(default=900.0, gt=0.0)
    """Seconds `collect serve` waits for the server to answer before giving up."""
    state_dir: Path | None = None
    """Where `collect serve` keeps its state file and logs (default ~/.cache/llmrouter-collect)."""
    enforce_eager: bool = True
    """Start vLLM with `--enforce-eager` (no CUDA graphs: faster start-up, less memory, as the old script did)."""
    model_flags: bool = True
    """Add known model-family vLLM flags (Gemma: `--dtype bfloat16`) unless the same flag comes after `--`."""

    # --- collect extract ---------------------------------------------------------------------------------
    workers: int | None = Field(default=None, ge=1)
    """Processes for grading (default: all cores)."""
    grade_timeout: float = Field(default=5.0, gt=0.0)
    """Seconds one math answer may spend in symbolic checking before it is given up (graded wrong-unverified)."""

    @field_validator("num_problems", mode="before")
    @classmethod
    def _parse_num_problems(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "all":
                return "all"
            if not text.isdigit() or int(text) < 1:
                raise ValueError("must be a positive whole number or 'all'")
            return int(text)
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a positive whole number or 'all'")
        return value

    @field_validator("temperature", mode="before")
    @classmethod
    def _parse_temperature(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "default":
                return None
            try:
                float(text)
            except ValueError:
                raise ValueError("must be a number (e.g. 0.7), or 'default' to send none") from None
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _parse_reasoning_effort(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("extra_body", mode="before")
    @classmethod
    def _parse_extra_body(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as err:
                raise ValueError(f"not JSON ({err}); pass an object, e.g. '{{\"top_k\": 20}}'") from None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object ({{...}}), not {type(value).__name__}")
        reserved = [key for key in value if key in EXTRA_BODY_RESERVED]
        if reserved:
            raise ValueError(
                f"may not set {', '.join(map(repr, reserved))}: collect sets {', '.join(EXTRA_BODY_RESERVED)} itself"
            )
        return value

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return str(parse_shard(value))  # its ValueError names the form expected
        return None if isinstance(value, str) else value

    @field_validator("stop", mode="before")
    @classmethod
    def _parse_stop(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(",") if part]
        return value

    @field_validator("api_base", mode="before")
    @classmethod
    def _parse_api_base(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if isinstance(value, list | tuple):
            unique: list[Any] = []
            for item in value:
                item = item.strip() if isinstance(item, str) else item
                if item and item not in unique:
                    unique.append(item)
            return unique
        return value

    @field_validator("model", "output_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)
    _env_file: Path | None = PrivateAttr(default=None)

    # --- where values came from --------------------------------------------------------------------------
    def source_of(self, name: str) -> Source:
        """Where the value of field `name` came from (`default` when built directly, not by load_settings)."""
        return self._sources.get(name, "default")

    def updated(self, values: dict[str, Any]) -> Settings:
        """A copy with `values` in place of every value not given as a flag (validated again).

        For a file named on the command line (the fleet file): it is above the environment and `.env`, below
        the flags. Its values count as given on the command line (`source_of` says "flag").

        Raises:
            ValidationError: a value of `values` is invalid.
        """
        applied = {name: value for name, value in values.items() if self.source_of(name) != "flag"}
        settings = type(self).model_validate({**self.model_dump(), **applied})
        given: dict[str, Source] = dict.fromkeys(applied, "flag")
        settings._sources = {**self._sources, **given}
        settings._env_file = self._env_file
        return settings

    @property
    def env_file(self) -> Path | None:
        """The .env file load_settings read (absolute), or None."""
        return self._env_file

    # --- derived values ----------------------------------------------------------------------------------
    @property
    def resolved_api_bases(self) -> list[str]:
        """The API base URLs (one per endpoint), from api_base or the api_mode default, without trailing slashes.

        Raises:
            ConfigError: a URL is not an http(s) URL; or it came only from a .env file and is not this machine,
                while the API key came from the environment or a flag: the file's author would receive the key.
        """
        given = self.api_base or [LOCAL_API_BASE if self.api_mode == "local" else REMOTE_API_BASE]
        bases = []
        for url in given:
            base, _ = check_api_base(url)
            if (
                self.api_base
                and self.api_key is not None
                and self.source_of("api_base") == "dotenv"
                and self.source_of("api_key") in ("env", "flag")
                and not is_loopback_url(url)
            ):
                key_from = (
                    "--api-key" if self.source_of("api_key") == "flag" else "COLLECT_API_KEY from the environment"
                )
                shown = _printable(url)
                raise ConfigError(
                    f"COLLECT_API_BASE={shown} comes only from {self._env_file}, and would receive your API key "
                    f"({key_from})",
                    hint=f"if you trust that file, confirm with --api-base {shown} (or export COLLECT_API_BASE); "
                    f"else set {ENV_FILE_VAR}=none to skip it",
                )
            bases.append(base.rstrip("/"))
        return list(dict.fromkeys(bases))

    @property
    def api_base_notices(self) -> list[str]:
        """What was done to each --api-base given (e.g. `http://` added to `host:port/v1`)."""
        return [notice for url in self.api_base if (notice := check_api_base(url)[1])]

    @property
    def api_key_value(self) -> str | None:
        """The API key as plain text (only for the Authorization header)."""
        return self.api_key.get_secret_value() if self.api_key else None

    @property
    def stop_sequences(self) -> list[str]:
        """User stop sequences merged with the default special tokens (local mode only), without repeats."""
        merged = list(DEFAULT_STOP) if (self.default_stop and self.api_mode == "local") else []
        for item in self.stop:
            if item not in merged:
                merged.append(item)
        return merged

    @property
    def shard_spec(self) -> ShardSpec | None:
        """The shard this run asks (`--shard I/N`), or None for every problem."""
        return parse_shard(self.shard) if self.shard else None

    @property
    def dataset_names(self) -> list[str]:
        """The dataset specs, in the order given."""
        return [part.strip() for part in self.dataset.split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, with `overrides` (flags; None means "not given") on top of env and .env.

    The .env file is `./.env` if it exists, or the file COLLECT_ENV_FILE names (`none` or empty: no file). When one
    is read, one line says which and what it set (see `DotenvRead.line`), logged on `llmrouter_collect.settings`:
    INFO, or WARNING when it sets `api_base` or `vllm_command`. Never a value of the API key.

    Raises:
        ConfigError: one line per bad field, naming the flag and the env var; or a .env file that cannot be read.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    env_file = _chosen_env_file()
    file_values = _read_env_file(env_file) if env_file is not None else {}
    environment = {key.lower() for key, value in os.environ.items() if value != ""}  # env_ignore_empty
    sources: dict[str, Source] = {}
    for name in Settings.model_fields:
        key = (ENV_PREFIX + name).lower()
        if name in given:
            sources[name] = "flag"
        elif key in environment:
            sources[name] = "env"
        elif key in file_values:
            sources[name] = "dotenv"
    try:
        settings = Settings(_env_file=env_file, **given)  # type: ignore[call-arg]  # pydantic-settings init arg
    except ValidationError as err:
        raise ConfigError(
            _render_validation_error(err, sources, env_file), hint="see `collect --help` or docs/settings.md"
        ) from None
    settings._sources = sources
    settings._env_file = env_file
    if env_file is not None:
        read = DotenvRead.build(env_file, file_values, sources)
        logger.log(logging.WARNING if read.risky else logging.INFO, read.line())
    return settings


@dataclass(frozen=True)
class DotenvRead:
    """What a .env file set, for the one line load_settings logs about it."""

    path: Path
    applied: dict[str, str]
    """Setting name -> value, in file order, for every setting the file gave (not overridden)."""
    overridden: list[str]
    """Settings the file sets that the environment or a flag overrides."""
    unknown: list[str]
    """COLLECT_* keys of the file that name no setting (typos), as written."""

    @classmethod
    def build(cls, path: Path, file_values: dict[str, str], sources: dict[str, Source]) -> DotenvRead:
        """Sort the file's COLLECT_* keys (lower-cased, with their values) by what became of them."""
        applied: dict[str, str] = {}
        overridden: list[str] = []
        unknown: list[str] = []
        for key, value in file_values.items():
            name = key[len(ENV_PREFIX) :]
            if name not in Settings.model_fields:
                unknown.append(key.upper())
            elif sources.get(name) == "dotenv":
                applied[name] = value
            else:
                overridden.append(name)
        return cls(path, applied, overridden, unknown)

    @property
    def risky(self) -> list[str]:
        """The settings in RISKY_FIELDS this file gave."""
        return [name for name in self.applied if name in RISKY_FIELDS]

    def line(self) -> str:
        """`read /abs/.env: sets COLLECT_MODEL, COLLECT_API_BASE=https://…; ...` (values only of RISKY_FIELDS)."""
        shown = [
            ENV_PREFIX + name.upper() + (f"={_printable(value)}" if name in RISKY_FIELDS else "")
            for name, value in self.applied.items()
        ]
        text = f"read {self.path}: sets " + (", ".join(shown) if shown else "nothing")
        if self.overridden:
            names = ", ".join(ENV_PREFIX + name.upper() for name in self.overridden)
            text += f"; overridden by the environment or flags: {names}"
        if self.unknown:
            text += f"; ignored (no such setting): {', '.join(self.unknown)}"
        return text


def _printable(value: str) -> str:
    """A value as a shell would take it; escaped (repr) when it holds control characters (ANSI codes, newlines)."""
    return shlex.quote(value) if value.isprintable() else repr(value)


def _chosen_env_file() -> Path | None:
    """The .env file to read (absolute): COLLECT_ENV_FILE's, else ./.env if it exists; None for no file.

    Raises:
        ConfigError: COLLECT_ENV_FILE names a file that does not exist.
    """
    chosen = os.environ.get(ENV_FILE_VAR)
    if chosen is None:
        default = Path(DEFAULT_ENV_FILE)
        return default.absolute() if default.is_file() else None
    if chosen.strip().lower() in ("", "none"):
        return None
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{ENV_FILE_VAR}={chosen}: no such file",
            hint=f"point {ENV_FILE_VAR} at a .env file, or set {ENV_FILE_VAR}=none to read none",
        )
    return path.absolute()


def _read_env_file(path: Path) -> dict[str, str]:
    """The file's non-empty COLLECT_* entries, keys lower-cased (as pydantic-settings matches them), in file order.

    Raises:
        ConfigError: the file cannot be read or decoded.
    """
    from dotenv import dotenv_values  # what pydantic-settings reads .env files with

    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(
            f"cannot read {path}: {reason}", hint=f"fix the file, or set {ENV_FILE_VAR}=none to read none"
        ) from None
    return {
        key.lower(): value
        for key, value in values.items()
        if key.upper().startswith(ENV_PREFIX) and value  # env_ignore_empty: an empty value sets nothing
    }


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_PORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d+)(/[^\s]*)?$")


def check_api_base(url: str) -> tuple[str, str | None]:
    """Check an API base URL before anything is sent; returns the URL to use and a notice, or raises.

    `host:port[/path]` (no scheme, e.g. `127.0.0.1:8000/v1`) is taken as `http://host:port[/path]` (a local
    vLLM speaks plain HTTP), and the notice says so. Anything else must be an http:// or https:// URL with a
    host: without this check a URL no request can reach was retried for minutes, then every problem lost an
    attempt (pure).

    Raises:
        ConfigError: another scheme, no scheme (and not host:port), no host, a bad port, or spaces.
    """
    text = url.strip()
    notice = None
    match = _SCHEME_RE.match(text)
    if match is None:
        host_port = _HOST_PORT_RE.match(text)
        if host_port is None:
            raise ConfigError(
                f"--api-base {_printable(url)} is not a URL: it needs http:// or https://",
                hint="e.g. --api-base http://127.0.0.1:8000/v1 (a local server) or https://api.example.com/v1",
            )
        text = "http://" + text
        notice = f"--api-base {_printable(url)} has no scheme: using {text}"
    elif match.group(1).lower() not in ("http", "https"):
        raise ConfigError(
            f"--api-base {_printable(url)}: unsupported scheme {match.group(1)!r}; use http:// or https://",
            hint="e.g. --api-base http://127.0.0.1:8000/v1",
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"--api-base {_printable(url)} is not a valid URL ({err})", hint=None) from None
    if not parts.hostname or any(char.isspace() for char in text) or not text.isprintable():
        raise ConfigError(
            f"--api-base {_printable(url)} is not a valid URL (no host, or spaces in it)",
            hint="e.g. --api-base http://127.0.0.1:8000/v1",
        )
    if port == 0:
        raise ConfigError(f"--api-base {_printable(url)}: port 0 cannot be reached", hint=None)
    return text, notice


def is_loopback_url(url: str) -> bool:
    """True if `url`'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _render_validation_error(err: ValidationError, sources: dict[str, Source], env_file: Path | None) -> str:
    lines = []
    for item in err.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        flag = "--" + field.replace("_", "-")
        env = ENV_PREFIX + field.upper()
        message = item["msg"].removeprefix("Value error, ")
        shown = "***" if field == "api_key" else repr(item.get("input"))
        where = f"{env} in {env_file}" if sources.get(field) == "dotenv" else f"{flag} / {env}"
        lines.append(f"invalid {where} ({shown}): {message}")
    return "\n".join(lines)
