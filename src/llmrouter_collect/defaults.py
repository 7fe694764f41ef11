"""Default values of the settings, as plain constants: `Settings` (pydantic) uses them, and `collect infer --help`
shows them without importing pydantic-settings (the CLI must start fast)."""

from __future__ import annotations

from typing import Final

DATASET: Final = "math500,mmlu_pro"
NUM_PROBLEMS: Final = "all"
K_RESPONSES: Final = 5
TEMPERATURE: Final = 0.7
MAX_TOKENS: Final = 4096
TOKEN_LIMIT_FIELD: Final = "max_tokens"
ENDPOINT: Final = "chat"
API_MODE: Final = "local"
LOCAL_API_BASE: Final = "http://localhost:8000/v1"
REMOTE_API_BASE: Final = "https://api.openai.com/v1"
DEFAULT_STOP: Final = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>")
MAX_CONCURRENT: Final = 10
BATCH_SIZE: Final = 10
MAX_ATTEMPTS: Final = 3
DEFAULT_MAX_RETRIES: Final = 8
INITIAL_RETRY_DELAY: Final = 1.0
MAX_RETRY_DELAY: Final = 60.0
MAX_RETRY_AFTER: Final = 120.0
DEFAULT_REQUEST_TIMEOUT: Final = 600.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
OUTPUT_DIR: Final = "inference_results"
