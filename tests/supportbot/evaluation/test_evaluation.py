"""Every evaluation metric on small cases whose score is known by hand; the log reader, filters,
thresholds and the report folder. The LLM-judged metrics run DeepEval itself with a scripted
judge (its verdicts are the hand-made part), so what is checked is how verdicts become scores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from supportbot.evaluation import heuristic
from supportbot.evaluation.judge import JudgeError, parse_verdict
from supportbot.evaluation.records import (
    LogFilter,
    load_golden,
    match_golden,
    parse_time,
    read_action_runs,
    read_log,
)
from supportbot.evaluation.report import load_baseline, results_document, write_report
from supportbot.evaluation.retrieval import score_ranking
from supportbot.evaluation.scoring import EvalSettings, evaluate, operational_metrics, threshold_for
from supportbot.interactions import TurnInteraction

# -- a hand-checkable embedding: one dimension per word of a tiny vocabulary ------------------
VOCABULARY = ["refund", "days", "paypal", "card", "shipping", "free", "weather", "sunny", "lamp", "reset"]


def bag_of_words(texts):
    rows = []
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower())
        row = np.array([float(w in words) for w in VOCABULARY])
        rows.append(row / (np.linalg.norm(row) or 1.0))
    return np.vstack(rows)


def test_sentences_drop_citations_bullets_and_fragments():
    text = "Refunds take 5 days [1]. You can pay with PayPal [2, 3]!\n- Free shipping over $50\nOK."
    assert heuristic.sentences(text) == ["Refunds take 5 days.", "You can pay with PayPal!", "Free shipping over $50"]


def test_faithfulness_counts_supported_claims():
    contexts = ["A refund takes 5 days. We accept PayPal."]
    # 2 of 3 claims share their words with a context sentence; the weather claim has none.
    answer = "Your refund takes 5 days. PayPal is fine. The weather is sunny."
    assert heuristic.faithfulness(answer, contexts, bag_of_words, 0.6) == pytest.approx(2 / 3)
    assert heuristic.faithfulness("", contexts, bag_of_words, 0.6) == 1.0  # no claims, nothing unfaithful
    assert heuristic.faithfulness(answer, [], bag_of_words, 0.6) == 0.0


def test_contextual_precision_is_deepevals_weighted_precision():
    assert heuristic.contextual_precision([True, True, False]) == 1.0
    assert heuristic.contextual_precision([False, True, False, True]) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert heuristic.contextual_precision([False, False]) == 0.0


def test_contextual_recall_and_relevancy():
    contexts = ["Refunds take 5 days. Shipping is free."]
    assert heuristic.contextual_recall("Refund in 5 days. Paid by card.", contexts, bag_of_words, 0.6) == 0.5
    assert heuristic.contextual_relevancy("refund days?", contexts, bag_of_words, 0.5) == 0.5


def test_token_f1_by_hand():
    # answer words: refund takes five days (4); reference: refund in five days (4); common 3.
    assert heuristic.token_f1("Refund takes five days [1].", "Refund in five days") == pytest.approx(0.75)
    assert heuristic.token_f1("Hello", "Refund") == 0.0


def test_summary_scores_without_judge():
    transcript = "Customer: I want a refund.\nAssistant: Refunds take 5 days.\nCustomer: Is shipping free?"
    alignment, coverage = heuristic.summary_scores(transcript, "Customer wants a refund. Weather sunny today.", bag_of_words, 0.6)
    assert alignment == 0.5  # the weather sentence is in no message
    assert coverage == pytest.approx(1 / 3)  # only the refund message is covered


@pytest.mark.integration
def test_real_embeddings_agree_with_the_obvious():
    from services.retriever.embedding import DenseEmbedder

    embed = DenseEmbedder().embed_documents
    context = ["Lumio accepts PayPal, Visa and Mastercard. Refunds are issued within 5 business days."]
    assert heuristic.faithfulness("Refunds are issued within 5 business days.", context, embed, 0.6) == 1.0
    assert heuristic.faithfulness("Our office cat is called Mittens and likes tuna.", context, embed, 0.6) == 0.0
    assert heuristic.answer_similarity("You can pay with PayPal.", "Yes, Lumio accepts PayPal.", embed) > 0.6


def test_retrieval_metrics_by_hand():
    scores = score_ranking(["a", "b", "a", "c"], {"b", "c"}, k=3)
    assert scores.hit_rate == 1.0
    assert scores.mrr == 0.5
    assert scores.precision == pytest.approx(2 / 3)  # unique documents a, b, c: two relevant
    assert scores.recall == 1.0
    assert scores.ndcg == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))


# -- the judge's output ---------------------------------------------------------------------
def test_verdict_cut_short_is_closed_where_it_stopped():
    from deepeval.metrics.faithfulness.schema import Claims, FaithfulnessScoreReason

    assert parse_verdict('{"claims": ["one", "two", "thr', Claims).claims == ["one", "two", "thr"]
    assert parse_verdict('{"claims": ["one", "two",', Claims).claims == ["one", "two"]
    assert parse_verdict('{"reason": "it loops and loops \\', FaithfulnessScoreReason).reason == "it loops and loops"
    with pytest.raises(JudgeError):
        parse_verdict("no json at all", Claims)


def test_judge_schemas_bound_free_text_and_lists():
    from deepeval.metrics.faithfulness.schema import Verdicts

    from supportbot.evaluation.judge import bounded_schema

    schema = bounded_schema(Verdicts.model_json_schema(), max_string=100, max_items=5)
    assert schema["properties"]["verdicts"]["maxItems"] == 5
    verdict = schema["$defs"]["FaithfulnessVerdict"]["properties"]
    assert "maxLength" not in verdict["verdict"]  # an enum is bounded already
    assert any(option.get("maxLength") == 100 for option in verdict["reason"]["anyOf"])


class ScriptedJudge:
    """Answers each DeepEval schema with a fixed verdict (or one chosen from the prompt)."""

    def __new__(cls, answers):
        from deepeval.models import DeepEvalBaseLLM

        class Scripted(DeepEvalBaseLLM):
            def load_model(self):
                return self

            def get_model_name(self):
                return "scripted"

            def generate(self, prompt, schema=None):
                raise NotImplementedError

            async def a_generate(self, prompt, schema=None):
                answer = answers[schema.__name__]
                return parse_verdict(json.dumps(answer(prompt) if callable(answer) else answer), schema)

        return Scripted("scripted")


def _verdicts(*words, **extra):
    return {"verdicts": [{"verdict": w, "reason": "because", **extra} for w in words]}


async def _measure(metric, **case):
    from deepeval.test_case import LLMTestCase

    from supportbot.evaluation.judged import measure

    return await measure(metric, LLMTestCase(**case))


async def test_judged_faithfulness_and_answer_relevancy():
    from deepeval.metrics import AnswerRelevancyMetric, FaithfulnessMetric

    judge = ScriptedJudge({
        "Truths": {"truths": ["Refunds take 5 days."]},
        "Claims": {"claims": ["a", "b", "c"]},
        "Statements": {"statements": ["a", "b", "c", "d"]},
        "Verdicts": _verdicts("yes", "no", "borderline"),
        "FaithfulnessScoreReason": {"reason": "one claim contradicts the context"},
        "AnswerRelevancyScoreReason": {"reason": "r"},
    })
    # Faithfulness: contradicted claims fail, borderline ones pass: 2 of 3.
    verdict = await _measure(FaithfulnessMetric(model=judge), input="q", actual_output="x", retrieval_context=["c"])
    assert verdict.score == pytest.approx(2 / 3) and verdict.reason == "one claim contradicts the context"
    judge = ScriptedJudge({
        "Statements": {"statements": ["a", "b", "c", "d"]},
        "Verdicts": _verdicts("yes", "no", "no", "borderline"),
        "AnswerRelevancyScoreReason": {"reason": "r"},
    })
    verdict = await _measure(AnswerRelevancyMetric(model=judge), input="q", actual_output="x")
    assert verdict.score == 0.5


async def test_judged_contextual_metrics():
    from deepeval.metrics import (
        ContextualPrecisionMetric,
        ContextualRecallMetric,
        ContextualRelevancyMetric,
    )

    reason = {"ContextualPrecisionScoreReason": {"reason": "r"}, "ContextualRecallScoreReason": {"reason": "r"},
              "ContextualRelevancyScoreReason": {"reason": "r"}}
    case = {"input": "q", "actual_output": "a", "expected_output": "e", "retrieval_context": ["c1", "c2", "c3", "c4"]}
    judge = ScriptedJudge({"Verdicts": _verdicts("no", "yes", "no", "yes"), **reason})
    assert (await _measure(ContextualPrecisionMetric(model=judge), **case)).score == pytest.approx(0.5)
    judge = ScriptedJudge({"Verdicts": _verdicts("yes", "no", "no"), **reason})
    assert (await _measure(ContextualRecallMetric(model=judge), **case)).score == pytest.approx(1 / 3)
    # Relevancy: statements of every context pooled; here each of 4 contexts gives yes + no.
    judge = ScriptedJudge({"ContextualRelevancyVerdicts": _verdicts("yes", "no", statement="s"), **reason})
    assert (await _measure(ContextualRelevancyMetric(model=judge), **case)).score == 0.5


async def test_judged_geval_rubric_scales_to_one():
    from deepeval.metrics import GEval
    from deepeval.test_case import SingleTurnParams

    judge = ScriptedJudge({"Steps": {"steps": ["Check politeness."]}, "ReasonScore": {"reason": "polite", "score": 7}})
    metric = GEval(name="polite", criteria="Is the reply polite to the customer?", model=judge,
                   evaluation_params=[SingleTurnParams.INPUT, SingleTurnParams.ACTUAL_OUTPUT])
    assert (await _measure(metric, input="q", actual_output="a")).score == pytest.approx(0.7)


async def test_judged_summarization_is_the_lower_of_alignment_and_coverage():
    from supportbot.evaluation.judged import summary_metric

    def answers(prompt):
        # The same 4 questions, asked of the conversation and then of the summary.
        return {"answers": ["yes", "yes", "yes", "no"]} if "TRANSCRIPT" in prompt else {"answers": ["yes", "no", "yes", "yes"]}

    judge = ScriptedJudge({
        "Truths": {"truths": ["t"]}, "Claims": {"claims": ["a", "b", "c", "d"]},
        "Verdicts": _verdicts("yes", "yes", "yes", "borderline"),
        "Questions": {"questions": ["q1", "q2", "q3", "q4"]}, "Answers": answers,
        "SummarizationScoreReason": {"reason": "r"},
    })
    verdict = await _measure(summary_metric(judge, 0.5, questions=4), input="TRANSCRIPT of a chat", actual_output="summary")
    # Alignment penalizes borderline claims: 3/4; coverage: of the 3 questions the conversation
    # answers yes, the summary answers 2: 2/3.
    assert verdict.breakdown == {"Alignment": 0.75, "Coverage": pytest.approx(2 / 3)}
    assert verdict.score == pytest.approx(2 / 3)


async def test_a_judge_that_fails_is_an_error_on_the_item():
    from deepeval.metrics import AnswerRelevancyMetric

    judge = ScriptedJudge({"Statements": {"wrong": "shape"}})
    verdict = await _measure(AnswerRelevancyMetric(model=judge), input="q", actual_output="a")
    assert verdict.score is None and "Statements" in verdict.error


# -- the log, the run, the report --------------------------------------------------------------
def _turn(turn_id, question, answer, *, documents=("payment-methods",), grounded=True, handoff=False, ts=1_700_000_000.0, **extra):
    return {
        "stream_id": f"{int(ts * 1000)}-0", "kind": "turn", "turn_id": turn_id, "session_id": "s-" + turn_id,
        "timestamp": ts, "collection": "lumio", "channel": "api", "question": question, "rewritten_question": question,
        "retrieved": [{"chunk_id": f"{d}#0", "document_id": d, "score": 0.5, "dense_score": 0.5} for d in documents],
        "contexts": ["Lumio accepts PayPal, Visa and Mastercard."] * len(documents), "answer": answer, "citations": [],
        "finish_reason": "FINISH_REASON_STOP", "completion_tokens": 12,
        "latencies_ms": {"session": 1, "rewrite": 0, "retrieval": 20, "first_token": 300, "total": 900},
        "grounded": grounded, "handoff": handoff, **extra,
    }


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    lines = [
        _turn("t1", "Can I pay with PayPal?", "Yes, Lumio accepts PayPal [1].", ts=1_700_000_000),
        _turn("t2", "do you take bitcoin", "I could not find that; a person can help.", documents=("gift-cards",),
              grounded=False, handoff=True, ts=1_700_000_100),
        {"kind": "feedback", "turn_id": "t1", "session_id": "s-t1", "rating": 1, "comment": "", "timestamp": 1_700_000_050},
        {"kind": "summary", "session_id": "s-t1", "timestamp": 1_700_000_060,
         "transcript": "Customer: Can I pay with PayPal?\nAssistant: Yes, Lumio accepts PayPal.", "summary": "The customer asked about PayPal; Lumio accepts PayPal."},
    ]
    (tmp_path / "interactions-2023-11-14.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    return tmp_path


@pytest.fixture
def golden_file(tmp_path: Path) -> Path:
    path = tmp_path / "golden.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in [
        {"id": "g1", "question": "can i pay with paypal", "relevant_document_ids": ["payment-methods"],
         "reference_answer": "Yes, Lumio accepts PayPal.", "answerable": True},
        {"id": "g2", "question": "Do you take Bitcoin?", "relevant_document_ids": ["payment-methods"],
         "reference_answer": "No, Lumio does not accept cryptocurrency.", "answerable": True},
    ]))
    return path


def test_read_log_joins_feedback_and_reports_bad_lines(log_dir):
    turns, summaries, warnings = read_log([log_dir])
    assert [t.turn_id for t in turns] == ["t1", "t2"]
    assert turns[0].rating == 1 and turns[1].rating == 0
    assert len(summaries) == 1 and len(warnings) == 1 and "not a log record" in warnings[0]
    assert [t.turn_id for t in turns if LogFilter(feedback="up").keeps(t)] == ["t1"]
    assert [t.turn_id for t in turns if LogFilter(since=datetime.fromtimestamp(1_700_000_050, UTC)).keeps(t)] == ["t2"]


def test_parse_time():
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert parse_time("24h", now=now) == datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert parse_time("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither"):
        parse_time("yesterday", now=now)


def test_operational_metrics_by_hand(log_dir):
    turns, _, _ = read_log([log_dir])
    operational = operational_metrics(turns)
    assert operational["grounded_answer_rate"] == 0.5 and operational["handoff_rate"] == 0.5
    assert operational["thumbs_up_rate"] == 1.0 and operational["rated_turns"] == 1
    assert operational["latency_ms"]["total"]["p50"] == 900
    assert operational["finish_reasons"] == {"FINISH_REASON_STOP": 2}


def test_thresholds_match_by_name_family_and_k():
    thresholds = {"hit_rate@k": 0.8, "geval:*": 0.5, "faithfulness": None}
    assert threshold_for("hit_rate@5", thresholds) == 0.8
    assert threshold_for("geval:polite", thresholds) == 0.5
    assert threshold_for("faithfulness", thresholds) is None
    assert threshold_for("answer_token_f1", thresholds) is None


async def test_judge_free_run_scores_and_gates(log_dir, golden_file, tmp_path):
    turns, summaries, _ = read_log([log_dir])
    matched = match_golden(turns, load_golden(golden_file))
    assert {k: v.id for k, v in matched.items()} == {"t1": "g1", "t2": "g2"}
    evaluation = await evaluate(turns, summaries, matched, settings=EvalSettings(judge="none", k=5), embed=bag_of_words)
    aggregates = evaluation.aggregates
    # t1 found payment-methods first; t2 retrieved only gift-cards.
    assert aggregates["hit_rate@5"].mean == 0.5 and aggregates["hit_rate@5"].passed is False
    assert aggregates["mrr@5"].mean == 0.5
    # t2 was answerable but the bot handed off: one of two right.
    assert aggregates["abstention_accuracy"].mean == 0.5
    assert aggregates["summary_embedding"].count == 1
    assert not evaluation.passed and "hit_rate@5" in evaluation.failures
    assert evaluation.retrieval_curve["hit_rate"][0] == 0.5

    run = {"id": "r1", "started": "2026-11-24T00:00:00+00:00", "turns": 2, "summaries": 1, "golden_matched": 2,
           "judge_model": "", "embedding_model": "bag-of-words"}
    first = write_report(tmp_path / "r1", results_document(evaluation, run, None))
    assert {p.name for p in first} >= {"results.json", "report.md", "report.html", "metric_distributions.png",
                                      "latency_by_stage.png", "retrieval_at_k.png"}
    assert all(p.stat().st_size > 0 for p in first)
    baseline = load_baseline(tmp_path / "r1")
    better = await evaluate(turns[:1], [], matched, settings=EvalSettings(judge="none"), embed=bag_of_words)
    document = results_document(better, {**run, "id": "r2"}, baseline)
    assert document["baseline"]["metrics"]["hit_rate@5"] == {"baseline": 0.5, "current": 1.0, "delta": 0.5}
    assert document["failures"] == [], document["failures"]
    write_report(tmp_path / "r2", document)
    assert "| hit_rate@5 | 1.000 |" in (tmp_path / "r2" / "report.md").read_text()
    with pytest.raises(ValueError, match="not the results.json"):
        load_baseline(golden_file)


async def test_turns_are_scored_per_adapter_so_a_tuned_one_is_compared_on_real_traffic(tmp_path, golden_file):
    log = tmp_path / "log"
    log.mkdir()
    lines = [
        _turn("t1", "Can I pay with PayPal?", "Yes, Lumio accepts PayPal [1].", adapter="lumio@v2", ts=1_700_000_000),
        _turn("t2", "do you take bitcoin", "I could not find that; a person can help.", documents=("gift-cards",),
              grounded=False, handoff=True, ts=1_700_000_100),
    ]
    (log / "interactions-2023-11-14.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    turns, summaries, _ = read_log([log])
    matched = match_golden(turns, load_golden(golden_file))
    evaluation = await evaluate(turns, summaries, matched, settings=EvalSettings(judge="none", k=5), embed=bag_of_words)
    by_adapter = evaluation.operational["by_adapter"]
    assert {name: group["turns"] for name, group in by_adapter.items()} == {"lumio@v2": 1, "base model": 1}
    assert by_adapter["lumio@v2"]["scores"]["abstention_accuracy"] == 1.0
    assert by_adapter["base model"]["scores"]["abstention_accuracy"] == 0.0
    run = {"id": "r1", "started": "2026-11-24T00:00:00+00:00", "turns": 2, "summaries": 0, "golden_matched": 2,
           "judge_model": "", "embedding_model": "bag-of-words"}
    write_report(tmp_path / "r1", results_document(evaluation, run, None))
    report = (tmp_path / "r1" / "report.md").read_text()
    assert "| adapter | turns | share |" in report and "| lumio@v2 | 1 | 0.500 |" in report


async def test_account_actions_are_reported_per_action_with_their_success_rate(tmp_path, golden_file):
    log = tmp_path / "log"
    log.mkdir()

    def action(name, outcome, latency, *, changes=False, ts=1_700_000_000.0):  # type: ignore[no-untyped-def]
        return {"kind": "action", "action": name, "turn_id": f"t{ts}", "session_id": "s-t1", "timestamp": ts,
                "identity_source": "customer_key", "parameters": {"order_id": "L-104233"}, "changes": changes,
                "outcome": outcome, "status_code": 200, "attempts": 1, "latency_ms": latency, "citations": []}

    lines = [
        _turn("t1", "Can I pay with PayPal?", "Yes, Lumio accepts PayPal [1].", ts=1_700_000_000),
        action("order_status", "ok", 30.0, ts=1_700_000_001),
        action("order_status", "not_found", 10.0, ts=1_700_000_002),
        action("cancel_subscription", "ok", 50.0, changes=True, ts=1_700_000_003),
        action("order_status", "ok", 20.0, ts=1_800_000_000),  # after --until
    ]
    (log / "interactions-2023-11-14.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    keep = LogFilter(until=datetime.fromtimestamp(1_750_000_000, UTC))
    runs = [run for run in read_action_runs([log]) if keep.keeps_action(run)]
    turns, summaries, warnings = read_log([log])
    assert not warnings and len(turns) == 1 and [run.outcome for run in runs] == ["ok", "not_found", "ok"]
    evaluation = await evaluate(turns, summaries, {}, settings=EvalSettings(judge="none"), embed=bag_of_words, actions=runs)
    actions = evaluation.operational["actions"]
    assert actions["order_status"]["runs"] == 2 and actions["order_status"]["success_rate"] == 0.5
    assert actions["order_status"]["outcomes"] == {"ok": 1, "not_found": 1} and actions["order_status"]["changes"] == 0
    assert actions["cancel_subscription"]["changes"] == 1 and actions["order_status"]["latency_ms"]["p50"] == 20.0
    run = {"id": "r1", "started": "2026-11-24T00:00:00+00:00", "turns": 1, "summaries": 0, "golden_matched": 0,
           "judge_model": "", "embedding_model": "bag-of-words"}
    write_report(tmp_path / "r1", results_document(evaluation, run, None))
    assert "| order_status | 2 | 0.500 | ok: 1, not_found: 1 | 0 |" in (tmp_path / "r1" / "report.md").read_text()


def test_turn_from_a_minimal_record():
    turn = TurnInteraction.from_record({"turn_id": "x"})
    assert turn.contexts == [] and turn.rating == 0


def test_replay_keeps_follow_ups_in_their_conversation():
    from supportbot.evaluation.records import GoldenItem
    from supportbot.evaluation.replay import conversations

    def item(id_, follows=""):
        return GoldenItem(id_, f"question {id_}", set(), "", True, follows)

    items = [item("a"), item("b"), item("c", "b"), item("d", "c"), item("e")]
    assert [[i.id for i in chat] for chat in conversations(items)] == [["a"], ["b", "c", "d"], ["e"]]
    assert [[i.id for i in chat] for chat in conversations(items, limit=2)] == [["a"], ["b", "c", "d"]]


def test_contextual_recall_needs_no_key_facts():
    from supportbot.evaluation.records import GoldenItem
    from supportbot.evaluation.scoring import judge_free_scores

    turn = TurnInteraction.from_record({"turn_id": "t", "question": "refund?", "answer": "Refunds take 5 days.",
                             "contexts": ["Refunds take 5 days."], "grounded": True})
    plain = GoldenItem("g", "refund?", set(), "Refunds take 5 days.", True)
    with_facts = GoldenItem("g", "refund?", set(), "Refunds take 5 days.", True, key_facts=["5 days"])
    scores = judge_free_scores(turn, plain, bag_of_words, EvalSettings())
    assert "contextual_recall_embedding" in scores and "key_fact_recall" not in scores
    assert judge_free_scores(turn, with_facts, bag_of_words, EvalSettings())["key_fact_recall"] == 1.0
