"""Settings: every option of every command, from defaults < .env < environment (COLLECT_*) < flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

LOCAL_API_BASE = "http://localhost:8000/v1"
REMOTE_API_BASE = "https://api.openai.com/v1"
DEFAULT_STOP = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 8
INITIAL_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0
MAX_RETRY_AFTER = 120.0


class Settings(BaseSettings):
    """All options of `collect`. Each field is a flag `--name`, an env var `COLLECT_NAME` and a `.env` key."""

    model_config = SettingsConfigDict(
        env_prefix="COLLECT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
        env_ignore_empty=True,
    )

    # --- what to ask -------------------------------------------------------------------------------------
    model: str | None = None
    """Model name as the server knows it. Local mode with no model: the server's only model is used."""
    dataset: str = "math500,mmlu_pro"
    """Comma-separated datasets: `collect datasets` names, `sample`, `hf:OWNER/NAME[:CONFIG][@SPLIT]`, or file paths."""
    dataset_map: Path | None = None
    """TOML file mapping the columns of `hf:` datasets (and of other-schema local files) onto the unified fields."""
    num_problems: int | Literal["all"] = "all"
    """How many problems (a fixed subset spread over categories), or `all`."""
    k_responses: int = Field(default=5, ge=1)
    """Responses (samples) per problem."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Sampling temperature."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling; not sent when unset."""
    max_tokens: int = Field(default=4096, ge=1)
    """Maximum tokens per response."""
    seed: int | None = None
    """Sampling seed sent to the server (if it supports one); not sent when unset."""
    stop: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Extra stop sequences (comma-separated in env/flags), merged with the default chat special tokens."""
    default_stop: bool = True
    """Add the chat special tokens (<end_of_turn>, <|im_end|>, <|eot_id|>) as stop sequences in local mode."""
    endpoint: Literal["chat", "completions"] = "chat"
    """`chat` uses /v1/chat/completions; `completions` uses /v1/completions (base models)."""
    prompt_template: Path | None = None
    """TOML file with `mcq` and/or `open_ended` templates replacing the built-in prompts."""

    # --- where to ask ------------------------------------------------------------------------------------
    api_mode: Literal["local", "remote"] = "local"
    """`local` (a vLLM server, default http://localhost:8000/v1) or `remote` (OpenAI, key required)."""
    api_base: str | None = None
    """Base URL of the OpenAI-compatible API (ends in /v1). Default depends on api_mode."""
    api_key: SecretStr | None = None
    """Bearer key. Required in remote mode; also protects a server started by `collect serve`."""

    # --- how hard to ask ---------------------------------------------------------------------------------
    max_concurrent: int = Field(default=10, ge=1, le=4096)
    """Requests in flight at once."""
    batch_size: int = Field(default=10, ge=1)
    """Results between two flushes to disk (fsync); never a barrier between requests."""
    max_attempts: int = Field(default=3, ge=1)
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

    # --- where to write ----------------------------------------------------------------------------------
    output_dir: Path = Path("inference_results")
    """Directory for results files."""
    output_file: str | None = None
    """Results file name (in output_dir) or path; default derived from model and datasets, so reruns resume."""

    # --- collect serve -----------------------------------------------------------------------------------
    vllm_command: str = "vllm serve"
    """How to start vLLM, e.g. `vllm serve` or `/opt/venv/bin/python -m vllm.entrypoints.openai.api_server`."""
    host: str = "127.0.0.1"
    """Address `collect serve` binds."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port `collect serve` binds."""
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

    @field_validator("stop", mode="before")
    @classmethod
    def _parse_stop(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(",") if part]
        return value

    @field_validator("model", "api_base", "output_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    # --- derived values ----------------------------------------------------------------------------------
    @property
    def resolved_api_base(self) -> str:
        """The API base URL, from api_base or the api_mode default, without a trailing slash."""
        base = self.api_base or (LOCAL_API_BASE if self.api_mode == "local" else REMOTE_API_BASE)
        return base.rstrip("/")

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
    def dataset_names(self) -> list[str]:
        """The dataset specs, in the order given."""
        return [part.strip() for part in self.dataset.split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, with `overrides` (flags; None means "not given") on top of env and .env.

    Raises:
        ConfigError: one line per bad field, naming the flag and the env var.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as err:
        raise ConfigError(
            _render_validation_error(err), hint="see `collect --help` or docs/settings.md"
        ) from None


def _render_validation_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        flag = "--" + field.replace("_", "-")
        env = "COLLECT_" + field.upper()
        message = item["msg"].removeprefix("Value error, ")
        shown = "***" if field == "api_key" else repr(item.get("input"))
        lines.append(f"invalid {flag} / {env} ({shown}): {message}")
    return "\n".join(lines)
