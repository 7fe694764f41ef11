"""The `collect` command line: one Typer app; each command lives in its own module and stays thin.

Importing this package must stay cheap (`collect --help` in well under 0.3 s): the command modules import
only typer and the option types at module level, and what a command needs (settings, HTTP, datasets) when it runs.
"""

from __future__ import annotations

import typer

from .. import __version__

app = typer.Typer(
    name="collect",
    help="Collect LLM responses on benchmarks, grade them, and turn them into router training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"collect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Collect LLM responses on benchmarks, grade them, and turn them into router training data.

    Workflow: `collect serve` (local vLLM) → `collect infer` → `collect extract` → `collect report`.
    """
    from ..console import show_library_notices

    show_library_notices()  # e.g. which .env file was read and what it set, one stderr line


# Each module registers its command(s) on `app` when imported.
from . import datasets as _datasets  # noqa: E402,F401
from . import extract as _extract  # noqa: E402,F401
from . import infer as _infer  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import serve as _serve  # noqa: E402,F401
from . import show as _show  # noqa: E402,F401


def main() -> None:
    """Entry point of the `collect` console script."""
    restore_sigint()
    app()


def restore_sigint() -> None:
    """Give Ctrl-C its default meaning back when `collect` inherited SIGINT as ignored.

    A shell starts background jobs (`collect infer … &`, `nohup`) with SIGINT ignored, and so do some CI runners;
    Python then installs no KeyboardInterrupt handler, and a later `kill -INT` (or Ctrl-C after `fg`) would do
    nothing: no clean stop, no exit 130. Restoring Python's handler makes SIGINT stop `collect` as it does in a
    terminal. A handler set on purpose (not SIG_IGN) is left alone.
    """
    import signal

    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread (e.g. `app()` driven by a test runner): leave it alone
        pass
