"""The evaluation gate's decision, on scripted evaluations, and verified mode's figures on
scripted answers."""

from __future__ import annotations

import json

import pytest

from supportbot_cli.tuning.dataset import NOT_COVERED_REPLY, Example, Section
from supportbot_cli.tuning.gate import Generated, decide, decide_all, verified_figures, write_report

pytestmark = pytest.mark.unit

BASE = {
    "held_out": {"key_fact_recall": 0.60, "fallback_rate": 0.50, "faithfulness": 0.70, "token_f1": 0.30,
                 "abstention_accuracy": 0.80, "tokens_per_answer": 60.0, "latency_s": 2.0},
    "golden": {"key_fact_recall": 0.65, "fallback_rate": 0.45, "faithfulness": 0.72, "token_f1": 0.32,
               "abstention_accuracy": 0.85, "tokens_per_answer": 58.0, "latency_s": 2.0},
}  # fmt: skip


def changed(figures: dict, set_name: str, **values: float) -> dict:
    return {name: ({**f, **values} if name == set_name else dict(f)) for name, f in figures.items()}


def test_better_on_the_headline_and_worse_on_none_is_registered() -> None:
    candidate = changed(BASE, "held_out", fallback_rate=0.20, key_fact_recall=0.66)
    verdict = decide(BASE, candidate)
    assert verdict.registered
    assert "fallback_rate on held_out: 0.500 -> 0.200" in verdict.reasons[0]


def test_worse_beyond_tolerance_on_any_figure_is_refused_with_the_reason() -> None:
    # Far fewer fallbacks, but abstention falls by 0.1 (tolerance 0.025): refused.
    candidate = changed(BASE, "held_out", fallback_rate=0.10, abstention_accuracy=0.70)
    verdict = decide(BASE, candidate)
    assert not verdict.registered
    assert "abstention_accuracy on held_out: 0.800 -> 0.700" in verdict.reasons[0]
    # Costs are compared relatively: tokens per answer up by half is beyond a quarter.
    verdict = decide(BASE, changed(BASE, "golden", fallback_rate=0.1, tokens_per_answer=87.0))
    assert not verdict.registered and "tokens_per_answer on golden" in verdict.reasons[0]


def test_within_tolerance_passes_and_no_gain_is_refused() -> None:
    small_loss = changed(BASE, "held_out", fallback_rate=0.30, key_fact_recall=0.58)
    assert decide(BASE, small_loss).registered
    verdict = decide(BASE, changed(BASE, "golden", token_f1=0.40))  # better, but not on a headline
    assert not verdict.registered and "no headline figure" in verdict.reasons[0]


def test_a_working_adapter_is_not_replaced_by_a_worse_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    current = changed(BASE, "held_out", fallback_rate=0.10, key_fact_recall=0.75)
    candidate = changed(BASE, "held_out", fallback_rate=0.20, key_fact_recall=0.70)
    # Better than the base, worse than the adapter it would replace.
    assert decide(BASE, candidate).registered
    verdict = decide_all(BASE, candidate, current)
    assert not verdict.registered
    assert any("registered adapter" in reason for reason in verdict.reasons)
    report = tmp_path / "gate.json"
    write_report(report, verdict, {"base": BASE, "adapter": candidate}, {})
    assert json.loads(report.read_text())["verdict"]["registered"] is False


PASSAGE = Section(
    "billing/refunds",
    "Refunds",
    (),
    "Card refunds take 5-10 business days. PayPal refunds take 1-3 days.",
)
OTHER = Section("shipping/speed", "Shipping", (), "Standard shipping takes 3-5 business days.")


def test_verified_figures_on_scripted_answers() -> None:
    answerable = Example(
        "how long do card refunds take",
        [OTHER, PASSAGE],
        "",
        "golden",
        "billing/refunds",
        key_facts=["5-10 business days"],
        reference_answer="Card refunds take 5-10 business days.",
    )
    uncovered = Example("can I pay in gold bars", [OTHER], NOT_COVERED_REPLY, "not_covered", "shipping/speed",
                        answerable=False)  # fmt: skip
    good = [
        Generated("Card refunds take 5-10 business days [2].", 12, 1.0),
        Generated(NOT_COVERED_REPLY, 20, 1.0),
    ]
    figures = verified_figures([answerable, uncovered], good)
    assert figures["key_fact_recall"] == 1.0 and figures["fallback_rate"] == 0.0
    assert figures["abstention_accuracy"] == 1.0 and figures["faithfulness"] == 1.0
    # An answer the sources do not support is dropped and quoting takes over (a fallback); a
    # question answered that nothing covers counts against abstention.
    bad = [Generated("Refunds arrive by carrier pigeon within the hour.", 12, 1.0),
           Generated("Standard shipping takes 3-5 business days.", 10, 1.0)]  # fmt: skip
    figures = verified_figures([answerable, uncovered], bad)
    assert figures["fallback_rate"] == 0.5 and figures["abstention_accuracy"] == 0.5
    assert figures["faithfulness"] == 0.5
    # The fallback quotes the passage, so the key fact is still shown.
    assert figures["key_fact_recall"] == 1.0
