"""The LLM-judged metrics, computed by DeepEval itself with our judge model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deepeval.metrics import (  # noqa: E402
    AnswerRelevancyMetric,
    ContextualPrecisionMetric,
    ContextualRecallMetric,
    ContextualRelevancyMetric,
    FaithfulnessMetric,
    GEval,
    SummarizationMetric,
)
from deepeval.metrics.base_metric import BaseMetric  # noqa: E402
from deepeval.models import DeepEvalBaseLLM  # noqa: E402
from deepeval.test_case import LLMTestCase, SingleTurnParams  # noqa: E402

from supportbot.evaluation import judge as _judge  # noqa: F401 - sets DeepEval's offline switches first
from supportbot.evaluation.records import GoldenItem  # noqa: E402
from supportbot.interactions import SummaryInteraction, TurnInteraction  # noqa: E402

DEFAULT_RUBRIC = (
    "Judge the actual output as a reply from a customer-support assistant to the input. It should "
    "answer the customer's question directly, politely and briefly, and not invent policies, prices "
    "or steps. When it cannot answer, saying so and offering a person from the support team is "
    "the right reply."
)


@dataclass(frozen=True)
class Rubric:
    """A G-Eval metric with user-written criteria."""

    name: str
    criteria: str

    @property
    def metric_name(self) -> str:
        return f"geval:{self.name}"


def parse_rubric(text: str) -> Rubric:
    """NAME=CRITERIA, as the command line takes it."""
    name, separator, criteria = text.partition("=")
    if not separator or not name.strip() or len(criteria.strip()) < 10:
        raise ValueError(f"a rubric is NAME=CRITERIA with a sentence of criteria, got {text!r}")
    return Rubric(name.strip(), criteria.strip())


@dataclass
class JudgedMetric:
    """How to build one DeepEval metric for a turn, and when it applies."""

    name: str
    build: Callable[[DeepEvalBaseLLM, float], BaseMetric]
    applies: Callable[[TurnInteraction, GoldenItem | None], bool]


def _has_context(turn: TurnInteraction, golden: GoldenItem | None) -> bool:
    return bool(turn.contexts)


def _has_reference(turn: TurnInteraction, golden: GoldenItem | None) -> bool:
    return bool(turn.contexts) and golden is not None and golden.answerable and bool(golden.reference_answer)


def _geval(rubric: Rubric) -> Callable[[DeepEvalBaseLLM, float], BaseMetric]:
    def build(model: DeepEvalBaseLLM, threshold: float) -> BaseMetric:
        return GEval(
            name=rubric.name, criteria=rubric.criteria, model=model, threshold=threshold, async_mode=True,
            evaluation_params=[SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT],
        )

    return build


def turn_metrics(rubrics: list[Rubric]) -> list[JudgedMetric]:
    common = {"include_reason": True, "async_mode": True}
    metrics = [
        JudgedMetric("faithfulness", lambda m, t: FaithfulnessMetric(threshold=t, model=m, **common), _has_context),
        JudgedMetric("answer_relevancy", lambda m, t: AnswerRelevancyMetric(threshold=t, model=m, **common), lambda turn, g: True),
        JudgedMetric("contextual_precision", lambda m, t: ContextualPrecisionMetric(threshold=t, model=m, **common), _has_reference),
        JudgedMetric("contextual_recall", lambda m, t: ContextualRecallMetric(threshold=t, model=m, **common), _has_reference),
        JudgedMetric("contextual_relevancy", lambda m, t: ContextualRelevancyMetric(threshold=t, model=m, **common), _has_context),
    ]
    for rubric in rubrics:
        metrics.append(JudgedMetric(
            rubric.metric_name,
            _geval(rubric),
            lambda turn, g: True,
        ))
    return metrics


def turn_test_case(turn: TurnInteraction, golden: GoldenItem | None) -> LLMTestCase:
    return LLMTestCase(
        input=turn.question,
        actual_output=turn.answer,
        expected_output=golden.reference_answer if golden and golden.reference_answer else None,
        retrieval_context=turn.contexts or None,
    )


def summary_metric(model: DeepEvalBaseLLM, threshold: float, questions: int) -> SummarizationMetric:
    return SummarizationMetric(threshold=threshold, n=questions, model=model, include_reason=True, async_mode=True)


def summary_test_case(summary: SummaryInteraction) -> LLMTestCase:
    return LLMTestCase(input=summary.transcript, actual_output=summary.summary)


@dataclass
class Verdict:
    score: float | None
    reason: str = ""
    error: str = ""
    breakdown: dict[str, float] | None = None


async def measure(metric: BaseMetric, test_case: LLMTestCase) -> Verdict:
    """One metric on one case; a judge that fails is an error on that item, not on the run."""
    try:
        score = await metric.a_measure(test_case, _show_indicator=False)
    except Exception as exc:  # noqa: BLE001 - DeepEval raises whatever the judge or parsing raised
        return Verdict(None, error=f"{type(exc).__name__}: {exc}"[:300])
    breakdown = getattr(metric, "score_breakdown", None)
    return Verdict(
        float(score), reason=(getattr(metric, "reason", "") or "")[:500],
        breakdown={k: float(v) for k, v in breakdown.items()} if isinstance(breakdown, dict) else None,
    )
