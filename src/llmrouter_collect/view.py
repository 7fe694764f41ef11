"""Read responses beside their extracted answers and verdicts: pick files, filter, shorten, render.

`collect show` is built on this module. Files are streamed (`store.iter_records`: offsets in memory, one
record's text at a time), so a file of millions of responses is never loaded at once. Response texts are
hostile input: the terminal renderer turns control characters into visible escapes (no escape sequence reaches
the terminal) and never interprets markup in them; the HTML renderer escapes every text and forbids scripts.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .errors import ConfigError, GradeError
from .report.loader import OUTCOMES
from .store import iter_records

GRADED_SUFFIX = ".graded.jsonl"
UNGRADED = "not graded"
"""What a response of a raw results file shows in place of an outcome."""

DEFAULT_MAX_CHARS = 2000
"""Characters of a response shown before its middle is cut (the end, where the answer is, is kept)."""

_OUTCOME_STYLE = {
    "correct": "bold green",
    "wrong": "bold red",
    "unparsed": "bold yellow",
    "truncated": "bold magenta",
    "error": "bold white on red",
}


@dataclass(frozen=True, slots=True)
class Filters:
    """Which responses to show. Empty means any; several values of one filter mean any of them.

    Models and problem ids match exactly or as shell patterns (`*`, `?`, `[…]`); categories and datasets match
    case-insensitively, exactly or as patterns.
    """

    models: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check the outcomes (a typo would silently match nothing)."""
        allowed = (*OUTCOMES, UNGRADED)
        for outcome in self.outcomes:
            if outcome not in allowed:
                raise ConfigError(
                    f"unknown outcome {outcome!r}", hint=f"use one of: {', '.join(OUTCOMES)} (or '{UNGRADED}')"
                )

    def matches_record(self, model: str, record: dict[str, Any]) -> bool:
        """True when the problem record passes the model, problem, category and dataset filters."""
        return (
            _any(self.models, model)
            and _any(self.problems, str(record.get("unique_id")))
            and _any(self.categories, str(record.get("category") or ""), fold=True)
            and _any(self.datasets, str(record.get("dataset") or ""), fold=True)
        )

    def matches_outcome(self, outcome: str | None) -> bool:
        """True when a response's outcome (None: not graded) passes the outcome filter."""
        return not self.outcomes or (outcome or UNGRADED) in self.outcomes

    def describe(self) -> str:
        """`model tiny · outcome unparsed`, or `all responses`."""
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in [
                ("model", self.models),
                ("outcome", self.outcomes),
                ("category", self.categories),
                ("dataset", self.datasets),
                ("problem", self.problems),
            ]
            if values
        ]
        return " · ".join(parts) or "all responses"


def _any(patterns: Sequence[str], value: str, *, fold: bool = False) -> bool:
    if not patterns:
        return True
    if fold:
        value = value.casefold()
    for pattern in patterns:
        pattern = pattern.casefold() if fold else pattern
        if value == pattern or fnmatchcase(value, pattern):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Problem:
    """The problem a shown response answers."""

    path: Path
    model: str
    unique_id: str
    dataset: str
    category: str
    question: str
    choices: list[str] | None
    reference: str


@dataclass(frozen=True, slots=True)
class Shown:
    """One response with its verdict (outcome None: the file is not graded)."""

    problem: Problem
    index: int
    text: str | None
    reasoning: str | None
    extracted: str | None
    outcome: str | None
    rule: str | None
    finish_reason: str | None
    error: str | None
    check_timed_out: bool = False


@dataclass(slots=True)
class Tally:
    """What a walk over the files saw, for the closing lines."""

    files: list[Path] = field(default_factory=list)
    ungraded: dict[Path, int] = field(default_factory=dict)
    """Responses without an outcome, per file (an --outcome filter never matches them)."""
    skipped: list[str] = field(default_factory=list)
    """Files found in a directory that are not results files (export tables, datasets), and why."""


def pick_files(paths: Sequence[Path]) -> list[tuple[Path, bool]]:
    """Expand files and directories into the files to read, each with whether it was named (not found).

    A directory contributes its `*.jsonl` files, sorted by name; a results file `X.jsonl` whose graded copy
    `X.graded.jsonl` sits beside it is left out in favour of that copy (the layout `collect extract` writes).

    Raises:
        GradeError: a path that does not exist, or a directory without .jsonl files.
    """
    picked: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
            if not files:
                raise GradeError(
                    f"{path}: no .jsonl files in this directory", hint="pass results files or graded files"
                )
            names = {p.name for p in files}
            for file in files:
                graded = file.name[: -len(".jsonl")] + GRADED_SUFFIX
                if not file.name.endswith(GRADED_SUFFIX) and graded in names:
                    continue
                picked.append((file, False))
        elif path.is_file():
            picked.append((path, True))
        else:
            raise GradeError(f"{path}: no such file or directory")
    unique: dict[Path, tuple[Path, bool]] = {}
    for file, named in picked:
        unique.setdefault(file.resolve(), (file, named))
    return list(unique.values())


def iter_shown(
    files: Sequence[tuple[Path, bool]], filters: Filters, tally: Tally | None = None
) -> Iterator[Shown]:
    """Yield the responses that pass `filters`, file by file, in file order (streaming).

    Args:
        files: (path, named) pairs from `pick_files`; a file found in a directory that is not a results file
            is skipped (and listed in `tally.skipped`), a named one is an error.

    Raises:
        GradeError: a named file that is not a results file (a dataset, an export table).
        StoreError: a line that is not JSON in the middle of a file.
    """
    tally = tally if tally is not None else Tally()
    for path, named in files:
        tally.files.append(path)
        for record in iter_records(path):
            responses = record.get("responses")
            if not isinstance(responses, list) or "unique_id" not in record:
                if not named:
                    tally.skipped.append(f"skipped {path}: not a results file (no `unique_id` and `responses`)")
                    break
                raise GradeError(
                    f"{path} is not a results file (no `unique_id` and `responses`)",
                    hint="`collect show` reads the files of `collect infer` and `collect extract`",
                )
            model = record.get("model")
            model = model if isinstance(model, str) and model else "(no model)"
            if not filters.matches_record(model, record):
                continue
            problem: Problem | None = None
            for response in responses:
                if not isinstance(response, dict):
                    continue
                outcome = response.get("outcome")
                outcome = outcome if isinstance(outcome, str) else None
                if outcome is None:
                    tally.ungraded[path] = tally.ungraded.get(path, 0) + 1
                if not filters.matches_outcome(outcome):
                    continue
                if problem is None:
                    problem = _problem(path, model, record)
                yield _shown(problem, response, outcome)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _problem(path: Path, model: str, record: dict[str, Any]) -> Problem:
    choices = record.get("choices")
    choices = [str(choice) for choice in choices] if isinstance(choices, list) and choices else None
    reference = str(record.get("answer_correct") if record.get("answer_correct") is not None else "")
    index = record.get("choice_index_correct")
    if choices and isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(choices):
        reference = f"{_letter(index)}) {choices[index]}"
    return Problem(
        path=path,
        model=model,
        unique_id=str(record["unique_id"]),
        dataset=str(record.get("dataset") or ""),
        category=str(record.get("category") or ""),
        question=str(record.get("problem") or record.get("question") or ""),
        choices=choices,
        reference=reference,
    )


def _shown(problem: Problem, response: dict[str, Any], outcome: str | None) -> Shown:
    error = response.get("error")
    if isinstance(error, dict):
        status = error.get("status")
        error_text: str | None = " ".join(
            str(part) for part in (error.get("type"), status if status is not None else None, error.get("message"))
            if part not in (None, "")
        )
    else:
        error_text = _text(error)
    index = response.get("index")
    return Shown(
        problem=problem,
        index=index if isinstance(index, int) and not isinstance(index, bool) else -1,
        text=_text(response.get("full_response")),
        reasoning=_text(response.get("reasoning_content")),
        extracted=_text(response.get("extracted_answer")),
        outcome=outcome,
        rule=_text(response.get("extraction_rule")),
        finish_reason=_text(response.get("finish_reason")),
        error=error_text or None,
        check_timed_out=response.get("check_timed_out") is True,
    )


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def shorten(text: str, max_chars: int) -> tuple[str, int]:
    """Cut the middle of a long text, keeping its start and, at three times the length, its end (the final
    answer is at the end). Returns the text and how many characters were cut (0: none; `max_chars` 0: no cut).
    """
    if max_chars <= 0 or len(text) <= max_chars:
        return text, 0
    head = max_chars // 4
    tail = max_chars - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut:,} characters cut …]\n{text[len(text) - tail :]}", cut


def visible(text: str) -> str:
    """Turn control and format characters (ESC, CR, bidi overrides, …) into visible `\\x1b`-style escapes, so a
    response can neither drive the terminal nor hide or reorder what is shown. Newlines and tabs stay."""
    out = []
    for char in text:
        if char in "\n\t":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _line(text: str | None, max_chars: int) -> str:
    if text is None:
        return "—"
    shown, _ = shorten(text, max_chars)
    return visible(shown)


# --- the terminal ---------------------------------------------------------------------------------------------


def render_problem(problem: Problem, *, max_chars: int = DEFAULT_MAX_CHARS) -> RenderableType:
    """A problem's header: model, id, dataset and category, file, question, choices and reference."""
    title = Text.assemble(
        (visible(problem.model), "bold cyan"), " · ", (visible(problem.unique_id), "bold"),
        " · ", visible(" / ".join(part for part in (problem.dataset, problem.category) if part) or "—"),
    )  # fmt: skip
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("file", Text(visible(str(problem.path))))
    grid.add_row("question", Text(_line(problem.question, max(400, max_chars // 2))))
    if problem.choices:
        grid.add_row(
            "choices",
            Text("\n".join(f"{_letter(i)}) {_line(choice, 200)}" for i, choice in enumerate(problem.choices))),
        )
    grid.add_row("reference", Text(visible(problem.reference) or "—", style="bold"))
    return Group(Rule(title, align="left", style="cyan"), grid)


def render_response(item: Shown, *, max_chars: int = DEFAULT_MAX_CHARS) -> RenderableType:
    """One response: its verdict line, then its text with the middle cut when long."""
    outcome = item.outcome or UNGRADED
    verdict = Text.assemble(
        (f"sample {item.index}", "bold"), "  ", (f" {outcome} ", _OUTCOME_STYLE.get(outcome, "reverse")),
    )  # fmt: skip
    if item.outcome is not None or item.extracted is not None:
        verdict.append("  extracted ")
        verdict.append(visible(item.extracted) if item.extracted is not None else "—", style="bold")
        verdict.append(f"  rule {visible(item.rule) if item.rule else '—'}")
    verdict.append(f"  finish {visible(item.finish_reason) if item.finish_reason else '—'}")
    if item.check_timed_out:
        verdict.append("  (equivalence check timed out)", style="yellow")
    if item.error:
        verdict.append(f"\nerror: {visible(item.error)}", style="red")
    if item.text is None:
        return Group(verdict, Text("(no response text)", style="dim"), Text(""))
    body, cut = shorten(item.text, max_chars)
    subtitle = f"{len(item.text):,} characters" + (f", {cut:,} cut from the middle" if cut else "")
    if item.reasoning:
        subtitle += f"; reasoning_content: {len(item.reasoning):,} characters (not shown)"
    panel = Panel(
        Text(visible(body)), subtitle=subtitle, subtitle_align="right", border_style="dim", padding=(0, 1)
    )
    return Group(verdict, panel)


# --- HTML -----------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin:.2em 0;word-break:break-all}
section{border-top:2px solid #58a;margin-top:1.5em;padding-top:.5em}
dl{display:grid;grid-template-columns:7em 1fr;gap:.2em 1em;margin:.4em 0}dt{color:#777}dd{margin:0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.6em;margin:.3em 0;max-height:40em;
overflow:auto}
article{margin:.8em 0 .8em 1em}.verdict span{margin-right:1em}
.o{font-weight:bold;padding:0 .4em;border-radius:3px;color:#fff;background:#888}
.o-correct{background:#2a2}.o-wrong{background:#c33}.o-unparsed{background:#b80}.o-truncated{background:#a3a}
.o-error{background:#700}.meta{color:#777}.err{color:#c33}
"""


class HtmlPage:
    """Writes a self-contained HTML page of shown responses to a binary handle, one response at a time.

    Every text is escaped; the page's Content-Security-Policy allows no script, frame, image or request, so
    even a response that escaped escaping could not run or fetch anything.
    """

    def __init__(self, handle: IO[bytes], *, title: str, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self._handle = handle
        self._max_chars = max_chars
        self._problem: Problem | None = None
        self._write(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"<title>{_esc(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n<h1>{_esc(title)}</h1>\n"
        )

    def _write(self, text: str) -> None:
        self._handle.write(text.encode("utf-8", "replace"))

    def add(self, item: Shown) -> None:
        """Append one response (and its problem's header when the problem changes)."""
        problem = item.problem
        if problem is not self._problem:
            if self._problem is not None:
                self._write("</section>\n")
            self._problem = problem
            where = " / ".join(part for part in (problem.dataset, problem.category) if part) or "—"
            rows = [("file", _esc(str(problem.path))), ("question", f"<pre>{_esc(problem.question)}</pre>")]
            if problem.choices:
                listed = "\n".join(f"{_letter(i)}) {choice}" for i, choice in enumerate(problem.choices))
                rows.append(("choices", f"<pre>{_esc(listed)}</pre>"))
            rows.append(("reference", f"<b>{_esc(problem.reference) or '—'}</b>"))
            self._write(
                f"<section>\n<h2>{_esc(problem.model)} · {_esc(problem.unique_id)} "
                f"<span class=\"meta\">· {_esc(where)}</span></h2>\n<dl>"
                + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
                + "</dl>\n"
            )
        outcome = item.outcome or UNGRADED
        css = f"o o-{outcome}" if outcome in OUTCOMES else "o"
        parts = [f"<span><b>sample {item.index}</b></span>", f"<span class=\"{css}\">{_esc(outcome)}</span>"]
        if item.outcome is not None or item.extracted is not None:
            parts.append(f"<span>extracted <b>{_esc(item.extracted) if item.extracted is not None else '—'}</b></span>")
            parts.append(f"<span class=\"meta\">rule {_esc(item.rule or '—')}</span>")
        parts.append(f"<span class=\"meta\">finish {_esc(item.finish_reason or '—')}</span>")
        if item.check_timed_out:
            parts.append("<span class=\"err\">equivalence check timed out</span>")
        self._write(f"<article>\n<div class=\"verdict\">{''.join(parts)}</div>\n")
        if item.error:
            self._write(f"<div class=\"err\">error: {_esc(item.error)}</div>\n")
        if item.text is None:
            self._write("<p class=\"meta\">(no response text)</p>\n")
        else:
            body, cut = shorten(item.text, self._max_chars)
            self._write(f"<pre>{_esc(body)}</pre>\n")
            if cut:
                self._write(
                    f"<details><summary>the whole response ({len(item.text):,} characters)</summary>"
                    f"<pre>{_esc(item.text)}</pre></details>\n"
                )
        if item.reasoning:
            self._write(
                f"<details><summary>reasoning_content ({len(item.reasoning):,} characters)</summary>"
                f"<pre>{_esc(item.reasoning)}</pre></details>\n"
            )
        self._write("</article>\n")

    def close(self, footer: Iterable[str] = ()) -> None:
        """End the page, with closing lines (what was shown, what more matched)."""
        if self._problem is not None:
            self._write("</section>\n")
        for line in footer:
            self._write(f"<p class=\"meta\">{_esc(line)}</p>\n")
        self._write("</body></html>\n")


def _esc(text: str) -> str:
    """Escape for HTML text and attribute values, and make control characters visible."""
    return html.escape(visible(text), quote=True)
