"""Per-model, per-group summaries: accuracy with interval, pass@k, maj@k, outcomes, tokens, latency, cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .loader import OUTCOMES, Collection, GroupStats, ModelData
from .metrics import clustered_interval, mean_pass_at_k, percentile
from .prices import Price
from .router import RouterView, build_router_view

OVERALL = "ALL"
"""The group name of a model's overall row."""


@dataclass(slots=True)
class GroupSummary:
    """The numbers of one model over one group of problems (or over all of them: group `ALL`)."""

    model: str
    group: str
    problems: int
    responses: int
    k: int
    """Largest number of samples of a problem in the group."""
    accuracy: float | None
    """Correct responses over all responses (failed, unparsed and truncated ones count as not correct)."""
    ci_low: float | None
    ci_high: float | None
    accuracy_answered: float | None
    """Correct over correct + wrong: only responses with a final answer (no failed, unparsed or truncated)."""
    pass_at: dict[int, float | None]
    """pass@k' for k' = 1..k, each averaged over the problems with at least k' samples."""
    majority: float | None
    """maj@k: majority vote over extracted answers, ties scored fractionally."""
    counts: dict[str, int]
    rates: dict[str, float | None]
    prompt_tokens_mean: float | None
    """Mean over the responses that report token counts (failed requests have none, and are not counted)."""
    completion_tokens_mean: float | None
    reasoning_tokens_mean: float | None
    prompt_tokens_total: int
    completion_tokens_total: int
    latency_p50: float | None
    latency_p95: float | None
    cost_total: float | None
    cost_per_problem: float | None
    cost_per_correct: float | None

    @property
    def pass_at_k(self) -> float | None:
        """pass@k at the group's full k."""
        return self.pass_at.get(self.k)


@dataclass(slots=True)
class ModelSummary:
    """One model: its overall row, its per-group rows, and where its data came from."""

    model: str
    overall: GroupSummary
    groups: list[GroupSummary]
    files: list[str]
    extractor_versions: list[str]
    generation: dict[str, Any] | None
    price: Price | None
    common_accuracy: float | None = None
    """Accuracy (correct / responses) over the problems every model answered; set when the models' problem sets
    differ, so that the models can be compared on the same problems."""


@dataclass(slots=True)
class Report:
    """Everything `collect report` shows, as plain data."""

    group_by: str
    confidence: float
    models: list[ModelSummary]
    router: RouterView
    unpriced: list[str]
    warnings: list[str] = field(default_factory=list)
    problem_sets_differ: bool = False
    """The models answered different problems: their overall rows do not compare like for like."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (pass@k keys become strings)."""
        data = asdict(self)
        for model in data["models"]:
            for row in [model["overall"], *model["groups"]]:
                row["pass_at"] = {str(k): v for k, v in row["pass_at"].items()}
        return data


def summarize_group(
    model: str, group: str, stats: GroupStats, price: Price | None, confidence: float = 0.95
) -> GroupSummary:
    """Turn one group's counts into its summary row."""
    k = max((n for n, _ in stats.clusters), default=0)
    interval = clustered_interval(stats.clusters, confidence)
    correct = stats.outcomes["correct"]
    answered = correct + stats.outcomes["wrong"]
    responses = stats.responses
    cost_total = price.cost(stats.prompt_tokens, stats.completion_tokens) if price is not None else None
    return GroupSummary(
        model=model,
        group=group,
        problems=stats.problems,
        responses=responses,
        k=k,
        accuracy=interval[0] if interval else None,
        ci_low=interval[1] if interval else None,
        ci_high=interval[2] if interval else None,
        accuracy_answered=correct / answered if answered else None,
        pass_at={kk: mean_pass_at_k(stats.clusters, kk)[0] for kk in range(1, k + 1)},
        majority=stats.majority / stats.problems if stats.problems else None,
        counts={outcome: stats.outcomes[outcome] for outcome in OUTCOMES},
        rates={outcome: (stats.outcomes[outcome] / responses if responses else None) for outcome in OUTCOMES},
        prompt_tokens_mean=stats.prompt_tokens / stats.with_usage if stats.with_usage else None,
        completion_tokens_mean=stats.completion_tokens / stats.with_usage if stats.with_usage else None,
        reasoning_tokens_mean=stats.reasoning_tokens / stats.with_usage if stats.with_usage else None,
        prompt_tokens_total=stats.prompt_tokens,
        completion_tokens_total=stats.completion_tokens,
        latency_p50=percentile(stats.latencies, 50),
        latency_p95=percentile(stats.latencies, 95),
        cost_total=cost_total,
        cost_per_problem=cost_total / stats.problems if cost_total is not None and stats.problems else None,
        cost_per_correct=cost_total / correct if cost_total is not None and correct else None,
    )


def summarize_model(data: ModelData, price: Price | None, confidence: float = 0.95) -> ModelSummary:
    """One model's overall row and its rows per group (sorted by group name)."""
    groups = [summarize_group(data.name, name, stats, price, confidence) for name, stats in sorted(data.groups.items())]
    return ModelSummary(
        model=data.name,
        overall=summarize_group(data.name, OVERALL, data.overall(), price, confidence),
        groups=groups,
        files=[str(path) for path in data.files],
        extractor_versions=sorted(data.extractor_versions),
        generation=data.generation,
        price=price,
    )


def build_report(
    collection: Collection,
    prices: Mapping[str, Price] | None = None,
    *,
    confidence: float = 0.95,
    test_fraction: float = 0.2,
) -> Report:
    """Summarize every model (sorted by name) and build the router view across them."""
    prices = prices or {}
    names = sorted(collection.models)
    models = [summarize_model(collection.models[name], prices.get(name), confidence) for name in names]
    router = build_router_view(collection, prices, test_fraction=test_fraction)
    sets = [set(collection.models[name].problems) for name in names]
    differ = len(sets) > 1 and any(problems != sets[0] for problems in sets[1:])
    if differ:
        common = set.intersection(*sets)
        for model in models:
            results = collection.models[model.model].problems
            samples = sum(results[uid].samples for uid in common)
            model.common_accuracy = sum(results[uid].correct for uid in common) / samples if samples else None
    return Report(
        group_by=collection.group_by,
        confidence=confidence,
        models=models,
        router=router,
        unpriced=[name for name in names if name not in prices],
        warnings=list(collection.warnings),
        problem_sets_differ=differ,
    )
