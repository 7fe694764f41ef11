"""Fakes at the process edge for tests: an OpenAI-compatible HTTP server on 127.0.0.1."""
