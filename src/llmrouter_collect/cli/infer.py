"""`collect infer`: parse flags → Settings → run_infer with a live status line → summary and exit code.

The engine (`..infer`, which loads httpx, aiohttp and datasets) and the settings (pydantic-settings) are
imported inside the command, so that `collect --help` and the other commands start fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..console import LiveStatus, err_console, info, warn
from ..errors import EndpointError
from . import app
from ._common import run_or_exit

if TYPE_CHECKING:
    from ..infer import InferStats, InferSummary


@app.command(no_args_is_help=False)
def infer(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name as the server knows it.")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="A `collect datasets` name, sample, hf:OWNER/NAME or a file; comma-separated."
        ),
    ] = None,
    dataset_map: Annotated[
        Path | None, typer.Option("--dataset-map", help="TOML column mapping for hf:OWNER/NAME datasets.")
    ] = None,
    num_problems: Annotated[
        str | None,
        typer.Option("--num-problems", "--num_problems", "-n", help="N (a fixed subset) or 'all'."),
    ] = None,
    k_responses: Annotated[
        int | None, typer.Option("--k-responses", "--k_responses", "--k", "-k", help="Responses per problem.")
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Sampling temperature.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", "--top_p", help="Nucleus sampling.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", "--max_tokens", help="Max tokens per response.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed sent to the server.")] = None,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="Extra stop sequence (repeatable).")] = None,
    no_default_stop: Annotated[
        bool, typer.Option("--no-default-stop", help="Do not add chat special tokens as stop sequences.")
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="chat (/v1/chat/completions) or completions (/v1/completions)."),
    ] = None,
    prompt_template: Annotated[
        Path | None,
        typer.Option("--prompt-template", "--prompt_template", help="TOML file with mcq/open_ended templates."),
    ] = None,
    api_mode: Annotated[str | None, typer.Option("--api-mode", "--api_mode", help="local or remote.")] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", "--api_base", help="Base URL of the API, ending in /v1.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", "--api_key", help="API key (prefer COLLECT_API_KEY).")
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option("--max-concurrent", "--max_concurrent", "-c", help="Requests in flight.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", "--batch_size", help="Results between two syncs to disk.")
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option("--max-attempts", "--max_attempts", help="Runs that may try one problem.")
    ] = None,
    max_retries: Annotated[
        int | None, typer.Option("--max-retries", "--max_retries", help="Retries of one request in a run.")
    ] = None,
    initial_retry_delay: Annotated[
        float | None, typer.Option("--initial-retry-delay", help="First backoff delay, seconds.")
    ] = None,
    max_retry_delay: Annotated[
        float | None,
        typer.Option("--max-retry-delay", help="Cap on one backoff delay and on Retry-After, s."),
    ] = None,
    request_timeout: Annotated[
        float | None,
        typer.Option("--request-timeout", "--request_timeout", help="Seconds one request may take."),
    ] = None,
    connect_timeout: Annotated[
        float | None, typer.Option("--connect-timeout", help="Seconds to open a connection.")
    ] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "--output_dir", help="Directory for results files.")
    ] = None,
    output_file: Annotated[
        str | None, typer.Option("--output-file", "--output_file", "-o", help="Results file name or path.")
    ] = None,
) -> None:
    """Ask a model K times per problem and store every response as JSONL (resumable: rerun the same command).

    Example: collect infer --dataset sample --k 5 --api-base http://127.0.0.1:8000/v1

    Ctrl-C, SIGTERM and SIGHUP stop it keeping every finished response (exit 130, 143, 129).
    """
    import asyncio

    from ..benchmarks import is_hub_spec
    from ..infer import InferStats, run_infer
    from ..settings import load_settings

    settings = run_or_exit(
        lambda: load_settings(
            model=model,
            dataset=dataset,
            dataset_map=dataset_map,
            num_problems=num_problems,
            k_responses=k_responses,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
            default_stop=False if no_default_stop else None,
            endpoint=endpoint,
            prompt_template=prompt_template,
            api_mode=api_mode,
            api_base=api_base,
            api_key=api_key,
            max_concurrent=max_concurrent,
            batch_size=batch_size,
            max_attempts=max_attempts,
            max_retries=max_retries,
            initial_retry_delay=initial_retry_delay,
            max_retry_delay=max_retry_delay,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            output_dir=output_dir,
            output_file=output_file,
        )
    )
    stats = InferStats()
    hub = [name for name in settings.dataset_names if is_hub_spec(name)]
    if hub:
        info(f"loading {', '.join(hub)} (Hugging Face Hub or its local cache) …")
    with LiveStatus(lambda: status_line(stats)):
        summary = run_or_exit(
            lambda: asyncio.run(run_infer(settings, stats=stats, warn=warn, on_output=lambda p: info(f"writing {p}"))),
            interrupted="interrupted; every finished response is saved — rerun the same command to resume",
            stop_signals=True,
        )
    print_summary(summary)
    if summary.stopped:
        stopped = summary.stopped
        run_or_exit(lambda: _raise(EndpointError(stopped.message, hint=stopped.hint)))
    if summary.left_failed:
        raise typer.Exit(1)


def _raise(error: EndpointError) -> None:
    raise error


def status_line(stats: InferStats) -> str:
    """One line: problems done/total, responses/s, tokens/s, retries, errors, ETA."""
    elapsed = max(1e-9, time.monotonic() - stats.started)
    finished = stats.finished
    rate = finished / elapsed
    eta = (stats.to_do - finished) / rate if rate > 0 else float("nan")
    return (
        f"{finished}/{stats.to_do} problems · {stats.responses / elapsed:.1f} resp/s"
        f" · {stats.completion_tokens / elapsed:.0f} tok/s · {stats.retries} retries"
        f" · {stats.failed_requests} errors · ETA {_duration(eta)}"
    )


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN: nothing finished yet
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def print_summary(summary: InferSummary) -> None:
    """The closing summary on stderr."""
    stats = summary.stats
    err_console.print(
        f"[bold]done[/] {stats.problems_done} · [bold]already done[/] {stats.skipped_done}"
        f" · [bold]failed[/] {stats.problems_failed}"
        + (f" · [bold]not asked[/] {stats.problems_not_asked}" if stats.problems_not_asked else "")
        + (f" · [bold]out of attempts[/] {stats.skipped_exhausted}" if stats.skipped_exhausted else "")
        + f" · responses {stats.responses} · tokens {stats.prompt_tokens} in / {stats.completion_tokens} out"
        f" · retries {stats.retries} · {summary.elapsed_s:.1f} s"
    )
    for message, count in stats.errors_by_message.most_common(3):
        warn(f"{count} failed request(s): {message}")
    if summary.n_fallback:
        warn("the server did not take n>1; samples were asked one by one")
    info(f"results: {summary.output_path}")
    if stats.retryable and summary.stopped is None:
        info(f"{_problems(stats.retryable)} left without k responses: rerun the same command to retry them")
    if stats.out_of_attempts:
        used = summary.max_attempts
        info(
            f"{_problems(stats.out_of_attempts, verb=True)} out of attempts (--max-attempts {used}, all used):"
            f" rerun with a higher --max-attempts (e.g. --max-attempts {used + 1}) to try them again"
        )


def _problems(count: int, *, verb: bool = False) -> str:
    if count == 1:
        return "1 problem is" if verb else "1 problem"
    return f"{count} problems are" if verb else f"{count} problems"
