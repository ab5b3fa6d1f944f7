"""Scores a set of logged turns and summaries: retrieval, answers (judged and judge-free),
summaries and operations, each per item and aggregated, checked against thresholds."""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.actions.executor import ActionInteraction
from supportbot.evaluation import heuristic
from supportbot.evaluation.records import GoldenItem
from supportbot.evaluation.retrieval import score_ranking, unique_documents
from supportbot.interactions import SummaryInteraction, TurnInteraction

if TYPE_CHECKING:
    from supportbot.evaluation.judged import JudgedMetric

CURVE_KS = tuple(range(1, 11))
RETRIEVAL_METRICS = ("hit_rate", "mrr", "precision", "recall", "ndcg")
LATENCY_STAGES = ("session", "rewrite", "retrieval", "first_token", "total")

# Aggregates under these fail the run (exit status 1). DeepEval's own default is 0.5 for every
# answer metric; retrieval has higher bars because the golden set names the right article.
DEFAULT_THRESHOLDS = {
    "hit_rate@k": 0.8,
    "mrr@k": 0.6,
    "recall@k": 0.8,
    "ndcg@k": 0.6,
    "faithfulness": 0.5,
    "answer_relevancy": 0.5,
    "contextual_precision": 0.5,
    "contextual_recall": 0.5,
    "contextual_relevancy": 0.5,
    "geval:*": 0.5,
    "summarization": 0.5,
    "faithfulness_embedding": 0.5,
    "answer_relevancy_embedding": 0.5,
    "contextual_precision_ids": 0.5,
    "contextual_recall_embedding": 0.5,
    "abstention_accuracy": 0.7,
}


class EvalSettings(BaseSettings):
    """`supportbot eval` settings (SUPPORTBOT_EVAL_*); the command's flags override them."""

    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_EVAL_", extra="ignore")

    # generator: the supportbot generator service; openai: any OpenAI-compatible endpoint;
    # none: judge-free metrics only.
    judge: Literal["generator", "openai", "none"] = "generator"
    judge_address: str = ""
    judge_url: str = ""
    judge_model: str = ""
    judge_api_key: SecretStr = SecretStr("")
    judge_max_tokens: int = Field(default=384, ge=32, le=8192)
    judge_concurrency: int = Field(default=8, ge=1, le=256)
    judge_timeout_s: float = Field(default=300, gt=0)
    embedding_model: str = ""
    # Cosine similarity at which one sentence supports another (judge-free metrics).
    support_similarity: float = Field(default=0.6, ge=0, le=1)
    # Cosine similarity at which a sentence is about the question (judge-free metrics).
    relevance_similarity: float = Field(default=0.35, ge=0, le=1)
    k: int = Field(default=5, ge=1, le=50)
    summary_questions: int = Field(default=5, ge=1, le=20)
    thresholds: dict[str, float] = Field(default_factory=dict)


def threshold_for(name: str, thresholds: dict[str, float | None]) -> float | None:
    for key in (name, f"{name.split(':', 1)[0]}:*" if ":" in name else "", _generic_k(name)):
        if key and key in thresholds:
            return thresholds[key]
    return None


def _generic_k(name: str) -> str:
    base, at, _ = name.partition("@")
    return f"{base}@k" if at else ""


@dataclass
class ItemScores:
    kind: Literal["turn", "summary"]
    id: str
    session_id: str
    question: str
    answer: str
    golden_id: str = ""
    retrieved_document_ids: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Aggregate:
    mean: float | None
    count: int
    errors: int
    threshold: float | None
    passed: bool | None

    @classmethod
    def of(cls, values: list[float], errors: int, threshold: float | None) -> Aggregate:
        mean = sum(values) / len(values) if values else None
        if threshold is None or (mean is None and not errors):
            passed = None  # not gated, or nothing it applied to
        else:
            passed = mean is not None and mean >= threshold
        return cls(mean, len(values), errors, threshold, passed)


@dataclass
class Evaluation:
    items: list[ItemScores]
    aggregates: dict[str, Aggregate]
    retrieval_curve: dict[str, list[float | None]]
    operational: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(a.passed is not False for a in self.aggregates.values())

    @property
    def failures(self) -> list[str]:
        return [name for name, a in self.aggregates.items() if a.passed is False]


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q * 100)) if values else None


def operational_metrics(turns: list[TurnInteraction]) -> dict[str, Any]:
    """Rates, latency percentiles per stage, tokens and finish reasons, straight from the log."""
    count = len(turns)
    rated = [t for t in turns if t.rating]
    tokens = [t.completion_tokens for t in turns]
    return {
        "turns": count,
        "sessions": len({t.session_id for t in turns}),
        "grounded_answer_rate": sum(t.grounded for t in turns) / count if count else None,
        "handoff_rate": sum(t.handoff for t in turns) / count if count else None,
        "rated_turns": len(rated),
        "thumbs_up_rate": sum(t.rating > 0 for t in rated) / len(rated) if rated else None,
        "latency_ms": {
            stage: {
                f"p{int(q * 100)}": _percentile([t.latencies_ms[stage] for t in turns if stage in t.latencies_ms], q)
                for q in (0.5, 0.9, 0.99)
            }
            for stage in LATENCY_STAGES
        },
        "completion_tokens": {
            "mean": statistics.fmean(tokens) if tokens else None,
            "p50": _percentile(tokens, 0.5),
            "p95": _percentile(tokens, 0.95),
        },
        "finish_reasons": dict(Counter(t.finish_reason for t in turns).most_common()),
        "answer_paths": dict(Counter(t.answer_path or "unknown" for t in turns).most_common()),
        "generated_sentences_dropped": sum(t.sentences_dropped for t in turns),
    }


def action_metrics(runs: Sequence[ActionInteraction]) -> dict[str, dict[str, Any]]:
    """Per account action: its runs, the share that succeeded (the company's API answered and the
    customer was told the result), each outcome counted (not_found, refused, unavailable, ...),
    the changes made and the API call's latency."""
    grouped: dict[str, list[ActionInteraction]] = {}
    for run in runs:
        grouped.setdefault(run.action, []).append(run)
    report = {}
    for action, group in sorted(grouped.items()):
        latencies = [run.latency_ms for run in group]
        report[action] = {
            "runs": len(group),
            "success_rate": sum(run.outcome == "ok" for run in group) / len(group),
            "outcomes": dict(Counter(run.outcome for run in group).most_common()),
            "changes": sum(run.changes and run.outcome == "ok" for run in group),
            "latency_ms": {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95))},
        }
    return report


BASE_MODEL = "base model"


def answer_path_of(turn: TurnInteraction) -> str:
    return turn.answer_path or "unknown"


def adapter_of(turn: TurnInteraction) -> str:
    """The LoRA adapter that wrote the answer ("helpcenter@v2"), or the base model: what
    `supportbot tune` registered for the collection, compared on the traffic it answered."""
    return turn.adapter or BASE_MODEL


def scores_by(items: list[ItemScores], turns: list[TurnInteraction], group_of: Callable[[TurnInteraction], str]) -> dict[str, dict[str, Any]]:
    """Each group's share of the turns and its mean scores, so a group that fails (the extractive
    fallback among answer paths, a worse adapter among adapters) shows up on its own instead of
    inside the average."""
    group_by_turn = {t.turn_id: group_of(t) for t in turns}
    grouped: dict[str, list[ItemScores]] = {}
    for item in items:
        if item.kind == "turn":
            grouped.setdefault(group_by_turn.get(item.id, "unknown"), []).append(item)
    total = sum(len(group) for group in grouped.values())
    report = {}
    for path, group in sorted(grouped.items()):
        names = sorted({name for item in group for name in item.scores})
        report[path] = {
            "turns": len(group),
            "share": len(group) / total if total else None,
            "scores": {
                name: statistics.fmean(values)
                for name in names
                if (values := [item.scores[name] for item in group if name in item.scores])
            },
        }
    return report


def judge_free_scores(
    turn: TurnInteraction, golden: GoldenItem | None, embed: heuristic.Embed, settings: EvalSettings
) -> dict[str, float]:
    support, relevance = settings.support_similarity, settings.relevance_similarity
    scores = {
        "answer_relevancy_embedding": heuristic.answer_relevancy(turn.question, turn.answer, embed, relevance),
    }
    if turn.contexts:
        scores["faithfulness_embedding"] = heuristic.faithfulness(turn.answer, turn.contexts, embed, support)
        scores["contextual_relevancy_embedding"] = heuristic.contextual_relevancy(turn.question, turn.contexts, embed, relevance)
    if golden is None:
        return scores
    # A question the help center cannot answer should get no grounded answer, and vice versa.
    scores["abstention_accuracy"] = 1.0 if turn.grounded == golden.answerable else 0.0
    if golden.answerable and golden.relevant_document_ids:
        scores["contextual_precision_ids"] = heuristic.contextual_precision(
            [d in golden.relevant_document_ids for d in turn.retrieved_document_ids]
        )
        for name, value in vars(score_ranking(turn.retrieved_document_ids, golden.relevant_document_ids, settings.k)).items():
            scores[f"{name}@{settings.k}"] = value
    if golden.answerable and golden.reference_answer:
        scores["answer_similarity"] = heuristic.answer_similarity(turn.answer, golden.reference_answer, embed)
        scores["answer_token_f1"] = heuristic.token_f1(turn.answer, golden.reference_answer)
        if turn.contexts:
            scores["contextual_recall_embedding"] = heuristic.contextual_recall(golden.reference_answer, turn.contexts, embed, support)
    if golden.answerable and golden.key_facts:
        scores["key_fact_recall"] = heuristic.key_fact_recall(turn.answer, golden.key_facts)
    return scores


def retrieval_curve(turns: list[TurnInteraction], golden: dict[str, GoldenItem]) -> dict[str, list[float | None]]:
    """Each retrieval metric averaged over the golden-matched turns at k = 1..10."""
    judged = [(t, golden[t.turn_id]) for t in turns if t.turn_id in golden and golden[t.turn_id].relevant_document_ids]
    curve: dict[str, list[float | None]] = {name: [] for name in RETRIEVAL_METRICS}
    for k in CURVE_KS:
        rows = [vars(score_ranking(t.retrieved_document_ids, g.relevant_document_ids, k)) for t, g in judged]
        for name in RETRIEVAL_METRICS:
            curve[name].append(sum(r[name] for r in rows) / len(rows) if rows else None)
    return curve


def _judged_cases(
    turns: list[TurnInteraction], summaries: list[SummaryInteraction], golden: dict[str, GoldenItem], rubrics: list[Any]
) -> list[tuple[int, JudgedMetric | None, Any]]:
    """(index into the items, judged metric or None for the summary metric, test case) for every
    judge call a run makes: turns first, then summaries, as `evaluate` lays out its items."""
    from supportbot.evaluation import judged

    metrics = judged.turn_metrics(rubrics)
    cases: list[tuple[int, judged.JudgedMetric | None, Any]] = [
        (index, metric, judged.turn_test_case(turn, golden.get(turn.turn_id)))
        for index, turn in enumerate(turns)
        for metric in metrics
        if metric.applies(turn, golden.get(turn.turn_id))
    ]
    cases += [(len(turns) + index, None, judged.summary_test_case(s)) for index, s in enumerate(summaries)]
    return cases


async def judged_scores(
    items: list[ItemScores],
    turns: list[TurnInteraction],
    summaries: list[SummaryInteraction],
    golden: dict[str, GoldenItem],
    judge: Any,
    rubrics: list[Any],
    settings: EvalSettings,
    thresholds: dict[str, float | None],
    advance: Callable[[], None],
) -> None:
    """Fills in the DeepEval metrics, `settings.judge_concurrency` judge calls at a time."""
    from supportbot.evaluation import judged

    limit = asyncio.Semaphore(settings.judge_concurrency)

    async def run(index: int, metric: Any, case: Any) -> None:
        item = items[index]
        if metric is None:
            name = "summarization"
            built = judged.summary_metric(judge, threshold_for(name, thresholds) or 0.5, settings.summary_questions)
        else:
            name, built = metric.name, metric.build(judge, threshold_for(metric.name, thresholds) or 0.5)
        async with limit:
            verdict = await judged.measure(built, case)
        if verdict.score is None:  # the judge failed: an error, never a score
            item.errors[name] = verdict.error
        else:
            item.scores[name] = verdict.score
            item.reasons[name] = verdict.reason
            for part, value in (verdict.breakdown or {}).items():
                item.scores[f"{name}_{part.lower()}"] = value
        advance()

    await asyncio.gather(*(run(*case) for case in _judged_cases(turns, summaries, golden, rubrics)))


def count_judge_jobs(turns: list[TurnInteraction], summaries: list[SummaryInteraction], golden: dict[str, GoldenItem], rubrics: list[Any]) -> int:
    return len(_judged_cases(turns, summaries, golden, rubrics))


def aggregate(items: list[ItemScores], thresholds: dict[str, float | None]) -> dict[str, Aggregate]:
    names = sorted({n for item in items for n in (*item.scores, *item.errors)})
    return {
        name: Aggregate.of(
            [item.scores[name] for item in items if name in item.scores],
            sum(name in item.errors for item in items),
            threshold_for(name, thresholds),
        )
        for name in names
    }


async def evaluate(
    turns: list[TurnInteraction],
    summaries: list[SummaryInteraction],
    golden: dict[str, GoldenItem],
    *,
    settings: EvalSettings,
    embed: heuristic.Embed,
    judge: Any = None,
    rubrics: Sequence[Any] = (),
    thresholds: dict[str, float | None] | None = None,
    advance: Callable[[], None] = lambda: None,
    actions: Sequence[ActionInteraction] = (),
) -> Evaluation:
    thresholds = {**DEFAULT_THRESHOLDS, **settings.thresholds, **(thresholds or {})}
    items = []
    for turn in turns:
        item = golden.get(turn.turn_id)
        items.append(ItemScores(
            "turn", turn.turn_id, turn.session_id, turn.question, turn.answer,
            golden_id=item.id if item else "", retrieved_document_ids=unique_documents(turn.retrieved_document_ids),
            latency_ms=turn.latencies_ms,
            scores=judge_free_scores(turn, item, embed, settings),
        ))
        advance()
    for summary in summaries:
        alignment, coverage = heuristic.summary_scores(summary.transcript, summary.summary, embed, settings.support_similarity)
        items.append(ItemScores(
            "summary", summary.session_id, summary.session_id, summary.transcript, summary.summary,
            scores={
                "summary_alignment_embedding": alignment, "summary_coverage_embedding": coverage,
                "summary_embedding": min(alignment, coverage),
            },
        ))
        advance()
    if judge is not None:
        await judged_scores(items, turns, summaries, golden, judge, list(rubrics), settings, thresholds, advance)
    operational = operational_metrics(turns)
    operational["by_answer_path"] = scores_by(items, turns, answer_path_of)
    operational["by_adapter"] = scores_by(items, turns, adapter_of)
    operational["actions"] = action_metrics(actions)
    return Evaluation(items, aggregate(items, thresholds), retrieval_curve(turns, golden), operational)
