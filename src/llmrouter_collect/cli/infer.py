"""`collect infer`: parse flags → Settings → run_infer with a live status line → summary and exit code.

The engine (`..infer`, which loads httpx, aiohttp and datasets) and the settings (pydantic-settings) are
imported inside the command, so that `collect --help` and the other commands start fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import defaults
from ..console import LiveStatus, err_console, info, out_console, warn
from ..errors import EndpointError
from . import app
from ._common import run_or_exit

if TYPE_CHECKING:
    from ..endpoints import EndpointStats
    from ..infer import InferStats, InferSummary, RunPlan


def _dashes(token: str) -> str:
    """Option names as typed → as declared: the old underscore spellings (`--k_responses`, `--api_base`) still
    work, without listing every option twice in `--help` (which cut the names at 80 columns)."""
    return token.replace("_", "-")  # click hands over the name without its dashes, and only option names


@app.command(no_args_is_help=False, context_settings={"token_normalize_func": _dashes})
def infer(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model name as the server knows it (default: a local server's only one); repeat it to run several "
            "models at once on the same endpoint.",
        ),
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", help="TOML file of models to run at once, each with its endpoints, key and limits."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="A `collect datasets` name, sample, hf:OWNER/NAME or a file; comma-separated "
            f"(default: {defaults.DATASET}).",
        ),
    ] = None,
    dataset_map: Annotated[
        Path | None, typer.Option("--dataset-map", help="TOML column mapping for hf:OWNER/NAME datasets.")
    ] = None,
    num_problems: Annotated[
        str | None,
        typer.Option("--num-problems", "-n", help=f"N (a fixed subset) or 'all' (default: {defaults.NUM_PROBLEMS})."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="I/N: ask only shard I of N of the problems (one of N machines; by a hash of each problem id).",
        ),
    ] = None,
    k_responses: Annotated[
        int | None,
        typer.Option("--k-responses", "--k", "-k", help=f"Responses per problem (default: {defaults.K_RESPONSES})."),
    ] = None,
    temperature: Annotated[
        str | None,
        typer.Option(
            "--temperature",
            help=f"Sampling temperature, or 'default' to send none (default: {defaults.TEMPERATURE}).",
        ),
    ] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling (default: not sent).")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help=f"Max tokens per response (default: {defaults.MAX_TOKENS}).")
    ] = None,
    token_limit_field: Annotated[
        str | None,
        typer.Option(
            "--token-limit-field",
            help="Send --max-tokens as max_tokens or max_completion_tokens (OpenAI reasoning models) "
            f"(default: {defaults.TOKEN_LIMIT_FIELD}).",
        ),
    ] = None,
    reasoning_effort: Annotated[
        str | None,
        typer.Option("--reasoning-effort", help="reasoning_effort, e.g. low, medium, high (default: not sent)."),
    ] = None,
    extra_body: Annotated[
        str | None,
        typer.Option(
            "--extra-body",
            help="JSON object merged into every request body, e.g. "
            """'{"chat_template_kwargs": {"enable_thinking": false}}' (default: none).""",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Sampling seed sent to the server (default: not sent).")
    ] = None,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="Extra stop sequence (repeatable).")] = None,
    no_default_stop: Annotated[
        bool,
        typer.Option(
            "--no-default-stop",
            help=f"Do not add the chat special tokens ({' '.join(defaults.DEFAULT_STOP)}) as stop sequences.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help=f"chat (/v1/chat/completions) or completions (/v1/completions) (default: {defaults.ENDPOINT}).",
        ),
    ] = None,
    prompt_template: Annotated[
        Path | None,
        typer.Option("--prompt-template", help="TOML file with mcq/open_ended templates (default: built-in ones)."),
    ] = None,
    api_mode: Annotated[
        str | None, typer.Option("--api-mode", help=f"local or remote (default: {defaults.API_MODE}).")
    ] = None,
    api_base: Annotated[
        list[str] | None,
        typer.Option(
            "--api-base",
            help=f"Base URL of the API, ending in /v1 (default: {defaults.LOCAL_API_BASE}; "
            f"remote: {defaults.REMOTE_API_BASE}). Repeat for several endpoints of one model.",
        ),
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key (prefer COLLECT_API_KEY).")] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(
            "--max-concurrent", "-c", help=f"Requests in flight, all endpoints (default: {defaults.MAX_CONCURRENT})."
        ),
    ] = None,
    endpoint_concurrency: Annotated[
        int | None,
        typer.Option("--endpoint-concurrency", help="Most requests in flight at one endpoint (default: no cap)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help=f"Results between two syncs to disk (default: {defaults.BATCH_SIZE})."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option("--max-attempts", help=f"Runs that may try one problem (default: {defaults.MAX_ATTEMPTS})."),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries", help=f"Retries of one request in a run (default: {defaults.DEFAULT_MAX_RETRIES})."
        ),
    ] = None,
    initial_retry_delay: Annotated[
        float | None,
        typer.Option(
            "--initial-retry-delay", help=f"First backoff delay, seconds (default: {defaults.INITIAL_RETRY_DELAY})."
        ),
    ] = None,
    max_retry_delay: Annotated[
        float | None,
        typer.Option(
            "--max-retry-delay",
            help=f"Cap on one backoff delay and on Retry-After, s (default: {defaults.MAX_RETRY_DELAY}).",
        ),
    ] = None,
    request_timeout: Annotated[
        float | None,
        typer.Option(
            "--request-timeout", help=f"Seconds one request may take (default: {defaults.DEFAULT_REQUEST_TIMEOUT})."
        ),
    ] = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            "--connect-timeout", help=f"Seconds to open a connection (default: {defaults.DEFAULT_CONNECT_TIMEOUT})."
        ),
    ] = None,
    rpm: Annotated[
        int | None, typer.Option("--rpm", help="Requests per minute allowed per endpoint (default: no limit).")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option("--tpm", help="Tokens per minute allowed per endpoint (default: no limit).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help=f"Directory for results files (default: {defaults.OUTPUT_DIR})."),
    ] = None,
    output_file: Annotated[
        str | None,
        typer.Option(
            "--output-file", "-o", help="Results file name (in --output-dir) or path (default: MODEL_DATASETS.jsonl)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show the plan and the first prompt; send nothing, write nothing (works without a server).",
        ),
    ] = False,
) -> None:
    """Ask a model K times per problem and store every response as JSONL (resumable: rerun the same command).

    Example: collect infer --dataset sample --k 5 --api-base http://127.0.0.1:8000/v1

    Several models at once, each into its own file: collect infer --fleet fleet.toml

    Ctrl-C, SIGTERM and SIGHUP stop it keeping every finished response (exit 130, 143, 129).
    """
    import asyncio

    from ..benchmarks import is_hub_spec
    from ..infer import InferStats, plan_infer, run_infer
    from ..settings import load_settings

    settings = run_or_exit(
        lambda: load_settings(
            model=model[0] if model and len(model) == 1 else None,
            fleet=fleet,
            dataset=dataset,
            dataset_map=dataset_map,
            num_problems=num_problems,
            shard=shard,
            k_responses=k_responses,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            token_limit_field=token_limit_field,
            reasoning_effort=reasoning_effort,
            extra_body=extra_body,
            seed=seed,
            stop=stop,
            default_stop=False if no_default_stop else None,
            endpoint=endpoint,
            prompt_template=prompt_template,
            api_mode=api_mode,
            api_base=api_base or None,
            api_key=api_key,
            max_concurrent=max_concurrent,
            endpoint_concurrency=endpoint_concurrency,
            batch_size=batch_size,
            max_attempts=max_attempts,
            max_retries=max_retries,
            initial_retry_delay=initial_retry_delay,
            max_retry_delay=max_retry_delay,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            rpm=rpm,
            tpm=tpm,
            output_dir=output_dir,
            output_file=output_file,
        )
    )
    if settings.fleet is not None or (model and len(model) > 1):
        from ._fleet import infer_fleet

        infer_fleet(settings, model if model and len(model) > 1 else None, dry_run=dry_run)
        return
    hub = [name for name in settings.dataset_names if is_hub_spec(name)]
    if hub:
        info(f"loading {', '.join(hub)} (Hugging Face Hub or its local cache) …")
    if dry_run:
        plan = run_or_exit(lambda: asyncio.run(plan_infer(settings, warn=warn)))
        print_plan(plan)
        print_first_prompt(plan)
        info("dry run: nothing was sent (but GET /models) and nothing was written")
        return
    stats = InferStats()
    with LiveStatus(lambda: status_line(stats)):
        summary = run_or_exit(
            lambda: asyncio.run(run_infer(settings, stats=stats, warn=warn, on_plan=print_plan)),
            interrupted="interrupted; every finished response is saved — rerun the same command to resume",
            stop_signals=True,
        )
    print_summary(summary)
    if summary.stopped:
        stopped = summary.stopped
        run_or_exit(lambda: _raise(EndpointError(stopped.message, hint=stopped.hint)))
    if summary.left_failed:
        raise typer.Exit(1)


def print_plan(plan: RunPlan) -> None:
    """The start of a run, on stderr: model, endpoint, problems × k and what is already done, the output file."""
    model = plan.model if plan.model is not None else "(none given)"
    source = "" if plan.model_source == "given" else f" ({plan.model_source})"
    info(f"model     {model}{source}")
    info(f"endpoint  {plan.api_base} ({plan.endpoint})")
    if plan.shard is not None:
        info(f"shard     {plan.shard}: {plan.problems} of {plan.selected} problems")
    work = f"{plan.problems} problems × k={plan.k} = {plan.responses_total} responses"
    done = f"already done: {plan.problems_done} problems ({plan.responses_held} responses)"
    left = f"to ask: {plan.responses_to_ask} responses for {plan.problems_to_ask} problems"
    skipped = f" · out of attempts: {plan.problems_exhausted}" if plan.problems_exhausted else ""
    info(f"plan      {work} · {done} · {left}{skipped}")
    if plan.output_path is None:
        info("output    (named after the model, which is not known yet: pass --model or --output-file)")
    else:
        info(f"output    {plan.output_path} ({'resumes it' if plan.file_exists else 'a new file'})")


def print_first_prompt(plan: RunPlan) -> None:
    """The first prompt a run would send, on stdout (`collect infer --dry-run > prompt.txt`)."""
    if plan.first_prompt is None:
        info("nothing to ask: no prompt would be sent")
        return
    info("first prompt (stdout):")
    if isinstance(plan.first_prompt, str):
        out_console.print(plan.first_prompt, markup=False, highlight=False)
        return
    for message in plan.first_prompt:
        out_console.print(f"--- {message['role']} ---", markup=False, highlight=False)
        out_console.print(message["content"], markup=False, highlight=False)


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
        + endpoints_line(stats.endpoints)
    )


def endpoints_line(endpoints: list[EndpointStats]) -> str:
    """With several endpoints: each one's address, state and requests in flight (empty with one)."""
    if len(endpoints) < 2:
        return ""
    return " · " + " ".join(
        f"{_short_url(e.url)} {e.state}" + (f" {e.in_flight}" if e.state != "out" else "") for e in endpoints
    )


def _short_url(url: str) -> str:
    """host:port of an endpoint URL (the path is the same /v1 everywhere)."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


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
    print_endpoints(stats.endpoints)
    info(f"results: {summary.output_path}")
    if stats.retryable and summary.stopped is None:
        info(f"{_problems(stats.retryable)} left without k responses: rerun the same command to retry them")
    if stats.out_of_attempts:
        used = summary.max_attempts
        info(
            f"{_problems(stats.out_of_attempts, verb=True)} out of attempts (--max-attempts {used}, all used):"
            f" rerun with a higher --max-attempts (e.g. --max-attempts {used + 1}) to try them again"
        )


def print_endpoints(endpoints: list[EndpointStats], prefix: str = "") -> None:
    """With several endpoints: what each one did (tries, replies, errors, times taken out, state)."""
    if len(endpoints) < 2:
        return
    for e in endpoints:
        line = (
            f"{prefix}endpoint {e.url}: {e.requests} tries · {e.replies} replies · {e.errors} errors"
            + (f" · taken out {e.times_out}×" if e.times_out else "")
            + f" · {e.state}"
        )
        if e.last_error and (e.errors or e.state != "up"):
            line += f" (last failure: {e.last_error[:100]})"
        info(line)


def _problems(count: int, *, verb: bool = False) -> str:
    if count == 1:
        return "1 problem is" if verb else "1 problem"
    return f"{count} problems are" if verb else f"{count} problems"
