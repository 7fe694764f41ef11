"""Errors a user can act on; the CLI prints them as one or two lines, without a traceback.

Tree:

    CollectError            message + optional hint (how to fix it)
    ├── ConfigError         a bad flag, env var or .env value
    ├── DatasetError        a dataset that cannot be loaded or fails validation (names file, row, field)
    ├── EndpointError       the OpenAI-compatible server refused the run (401/403/404, unreachable)
    ├── StoreError          a results file that cannot be read, written or resumed
    ├── ServerError         a vLLM server that cannot be started, found or stopped
    └── GradeError          a file that is not an inference or graded results file
"""

from __future__ import annotations


class CollectError(Exception):
    """Base class: `message` says what is wrong, `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(CollectError):
    """A setting (flag, environment variable, .env key) has a bad value."""


class DatasetError(CollectError):
    """A dataset cannot be loaded, or one of its rows is invalid."""


class EndpointError(CollectError):
    """The server refused the whole run (bad key, unknown model, unreachable)."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class StoreError(CollectError):
    """A results file cannot be read, written, locked or resumed."""


class ServerError(CollectError):
    """A local vLLM server cannot be started, found or stopped."""


class GradeError(CollectError):
    """A file given to `extract` or `report` is not of the expected kind."""
