"""`python -m llmrouter_collect` runs the `collect` CLI."""

from .cli import main

main()
