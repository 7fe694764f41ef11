"""llmrouter-collect: collect, grade and report LLM responses on benchmarks, for training LLM routers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmrouter-collect")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
