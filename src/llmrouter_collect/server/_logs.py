"""Server logs: tail, follow, the step vLLM is at, and why a start-up failed (the cause and a short tail)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

LOG_TAIL_LINES = 12
"""Log lines shown when a server fails to start (traceback frames and usage text left out; the log has them)."""

# vLLM's prefix on lines of its sub-processes: `(Worker pid=1) ERROR 11-29 10:20:49 [file.py:1] `.
_LOG_PREFIX = re.compile(r"^\(\w+ pid=\d+\)\s+(?:([A-Z]+) [\d-]+ [\d:]+ \[[^\]]*\]\s?)?")
# A line that states an error: `ValueError: ...` or argparse's `prog: error: ...`.
_ERROR_LINE = re.compile(
    r"^(?:[\w.]*(?:Error|Exception)(?::\s.*)?|\S+: error: .*|\S+: Error while finding module specification .*)$"
)
_POINTER_PHRASES = ("root cause", "stack trace", "see above", "traceback above")
"""An error line with one of these only points at another one (vLLM's "See root cause above")."""
# pydantic's `ValidationError: 1 validation error for ModelConfig` names the reason two lines further on.
_VALIDATION_ERRORS = re.compile(r"\d+ validation errors? for \w+$")
# Lines of a Python traceback, an argparse usage text, a warnings.warn echo or the header `collect serve`
# wrote (the command is in the hint): noise in a short tail.
_FRAME_LINE = re.compile(r"^\s+File \".*\", line \d+")
_NOISE_LINE = re.compile(
    r"^(?:Traceback \(most recent call last\):.*|\s*[\^~]+\s*|usage: .*|\s+\[.*|\s+warnings\.warn\(.*"
    r"|# collect serve: .*|# started .*)$"
)

FOLLOW_POLL = 0.5
"""Seconds between two reads of a followed log."""


def read_log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log file (undecodable bytes replaced); empty if it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))  # enough for any sensible tail; logs can be huge
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:] if lines > 0 else []


def last_log_message(path: Path, limit: int = 100) -> str | None:
    """The last line of a log without vLLM's prefix (the step it is at while starting), at most `limit` long."""
    for line in reversed(read_log_tail(path, 5)):
        prefix = _LOG_PREFIX.match(line)
        text = (line[prefix.end() :] if prefix else line).strip()
        if text and not text.startswith("# "):  # not the lines `collect serve` wrote first
            return _shorten(text, limit)
    return None


def follow_log(
    path: Path,
    on_text: Callable[[str], None],
    poll: float = FOLLOW_POLL,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Pass text appended to `path` to `on_text` until interrupted, or until `alive()` turns false.

    Returns:
        False if it ended because `alive()` turned false (the writer is gone), True on Ctrl-C (ended quietly).
    """
    with contextlib.suppress(KeyboardInterrupt), path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        while True:
            chunk = handle.read()
            if chunk:
                on_text(chunk.decode("utf-8", errors="replace"))
            elif alive is not None and not alive():
                rest = handle.read()  # what it wrote before it went
                if rest:
                    on_text(rest.decode("utf-8", errors="replace"))
                return False
            else:
                time.sleep(poll)
    return True


def summarize_log(lines: list[str], keep: int) -> tuple[str | None, list[str]]:
    """Why a server failed, from its log: the line that states the error, and a short tail without noise.

    Args:
        lines: the end of the log.
        keep: how many lines of the tail to return.

    Returns:
        The last error line that is not a mere pointer to another one (`... See root cause above`), else the
        last pointer, else None; and the last `keep` lines without traceback frames, usage text or
        warnings.warn echoes.
    """
    cause: str | None = None
    pointer: str | None = None
    kept: list[str] = []
    after_frame = False
    wants_detail = False
    for line in lines:
        prefix = _LOG_PREFIX.match(line)
        bare = (line[prefix.end() :] if prefix else line).rstrip()
        if _FRAME_LINE.match(bare):
            after_frame = True  # the source line that follows a frame goes too
            continue
        if (after_frame and bare.startswith("    ")) or _NOISE_LINE.match(bare):
            after_frame = False
            continue
        after_frame = False
        kept.append(line)
        level = prefix.group(1) if prefix else None
        if cause is not None and wants_detail and bare.strip():
            cause, wants_detail = f"{cause}: {bare.strip()}", False  # pydantic's reason, on the next line
        elif level in (None, "ERROR", "CRITICAL") and _ERROR_LINE.match(bare):
            if any(phrase in bare.lower() for phrase in _POINTER_PHRASES):
                pointer = bare
            else:
                cause, wants_detail = bare, bool(_VALIDATION_ERRORS.search(bare))
    return cause or pointer, kept[-keep:] if keep > 0 else []


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _indent(lines: list[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines) if lines else "  | (the log is empty)"
