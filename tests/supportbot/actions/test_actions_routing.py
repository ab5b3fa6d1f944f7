"""Routing by example requests with a "neither" class: the threshold and margin decide, with a
deterministic embedder (no model) and with the real all-MiniLM-L6-v2 (integration tier)."""

from __future__ import annotations

import numpy as np
import pytest

from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.routing import (
    DEFAULT_ROUTING,
    ActionRouter,
    HashingEmbedder,
    Spelling,
    asks_to_be_done,
    asks_what_a_change_would_do,
    decide,
    help_center_examples,
    speaks_of_own_case,
)

ACTIONS = load_actions(sample_actions_path())
HELP_CENTER = ["How long do refunds take?", "What is your return policy?", "How do I reset my Lumio bulb?",
               "Which payment methods do you accept?", "How do I track a package?"]


def test_below_the_threshold_is_neither() -> None:
    decision = decide({"order_status": 0.40, "list_orders": 0.30, "": 0.10}, threshold=0.5, margin=0.05)
    assert not decision.is_action and "threshold" in decision.reason and decision.runner_up == "order_status"


def test_a_help_center_question_as_close_as_the_action_is_neither() -> None:
    decision = decide({"order_status": 0.72, "": 0.70}, threshold=0.5, margin=0.05)
    assert not decision.is_action and "help-center" in decision.reason


def test_clearly_an_action_is_routed_with_its_runner_up() -> None:
    decision = decide({"order_status": 0.81, "list_orders": 0.60, "": 0.40}, threshold=0.5, margin=0.05)
    assert decision.action == "order_status" and decision.runner_up == "list_orders" and decision.runner_up_score == 0.60


def test_thresholds_move_the_boundary() -> None:
    scores = {"order_status": 0.6, "": 0.5}
    assert decide(scores, 0.55, 0.05).is_action
    assert not decide(scores, 0.65, 0.05).is_action
    assert not decide(scores, 0.55, 0.15).is_action


def test_router_with_a_deterministic_embedder() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, threshold=0.5, margin=0.0)
    # An example request itself scores 1.0 for its action.
    assert router.route("Cancel my Lumio Plus subscription").action == "cancel_subscription"
    assert router.scores("What is your return policy?")[""] == pytest.approx(1.0, abs=1e-5)
    assert not router.route("What is your return policy?").is_action


def test_router_languages_and_empty_examples() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), languages=["ko"], threshold=0.5)
    assert router.route("루미오 플러스 구독 해지해 주세요").action == "cancel_subscription"
    with pytest.raises(ValueError, match="no action has example requests"):
        ActionRouter(ACTIONS.actions, HashingEmbedder(), languages=["fr"])


def test_router_normalises_what_the_embedder_returns() -> None:
    def unnormalised(texts):  # type: ignore[no-untyped-def]
        return HashingEmbedder()(texts) * 7.0

    router = ActionRouter(ACTIONS.actions, unnormalised, threshold=0.5)
    assert max(router.scores("Show me my orders").values()) == pytest.approx(1.0, abs=1e-5)
    assert np.isclose(np.linalg.norm(router._vectors[0]), 1.0)


@pytest.mark.integration
def test_minilm_routes_paraphrases_and_leaves_policy_questions(dense_embedder) -> None:  # type: ignore[no-untyped-def]
    router = ActionRouter(ACTIONS.actions, dense_embedder.embed_documents, HELP_CENTER, languages=["en"])
    assert router.route("my package hasn't arrived, where is order L-104233?").action == "order_status"
    assert router.route("please cancel my plus membership").action == "cancel_subscription"
    assert not router.route("Which payment methods do you accept?").is_action


def test_record_numbers_are_masked_before_embedding() -> None:
    seen: list[str] = []

    def recording(texts):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return HashingEmbedder()(texts)

    router = ActionRouter(ACTIONS.actions, recording, HELP_CENTER, languages=["en"])
    assert "What's the status of order ?" in seen and not any("L-104233" in text for text in seen)
    seen.clear()
    router.scores("is l-104240 on its way? and S-2001?")
    assert seen == ["is on its way? and ?"]
    # Two messages that differ only in the number score the same.
    assert router.scores("where is order L-104233") == router.scores("where is order L-999999")


def test_a_message_naming_a_record_is_routed_among_the_actions_taking_it() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"],
                          threshold=0.99, margin=0.5, anchored_threshold=0.1)
    assert router.records_named("return L-104198 please") == {"order_status", "start_return", "change_delivery_address"}
    assert router.records_named("cancel s-2001") == {"cancel_subscription"}
    assert router.records_named("What is your return policy?") == set()
    # Without a record number the strict threshold keeps it a help-center question ...
    assert not router.route("I would like to return my order please").is_action
    # ... with one, the anchored threshold applies, the neither class does not, and only the
    # actions that take an order number compete (never list_orders or cancel_subscription).
    decision = router.route("I would like to return my order L-104198 please")
    assert decision.action == "start_return" and decision.reason == "matched a named record"
    assert router.route("cancel S-2001").action == "cancel_subscription"


def test_a_named_record_below_the_anchored_threshold_falls_back_to_the_usual_decision() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"],
                          threshold=0.99, margin=0.0, anchored_threshold=0.99)
    assert not router.route("zzz qqq L-104198").is_action


def test_the_default_thresholds_name_their_benchmark() -> None:
    import inspect

    from supportbot.actions import routing

    source = inspect.getsource(routing)
    assert "bench.actions --split tune --sweep" in source
    assert set(routing.DEFAULT_ROUTING) == {"en", "ko"}
    assert all(0 <= t.threshold <= 1 and 0 <= t.anchored <= 1 for t in routing.DEFAULT_ROUTING.values())


@pytest.mark.parametrize(("message", "own"), [
    ("Where is my order?", True),
    ("could you cancel S-2001 for me?", True),
    ("how much is lumio plus per month", False),
    ("Do you ship internationally?", False),
    ("제 주문 지금 어디쯤 왔어요?", True),
    ("주문한 물건 아직 출발 안 했나요?", True),  # the pronoun dropped: "what (I) ordered"
    ("구독 해지해 주세요", True),
    ("플러스 구독 해지하려면 어떻게 해야 돼요?", False),
    ("일반 배송은 며칠 걸려요?", False),
    ("제주도도 배송되나요?", False),  # 제 only as a word, not inside 제주도
    # Korean drops the pronoun when asking after one particular thing: where, when, whether, what state.
    ("배송 언제 와요?", True),
    ("택배 출발했나요?", True),
    ("주문 어디쯤이에요?", True),
    ("배송 상태가 어떻게 되나요?", True),
    ("배송 상태 궁금해요", True),
    # ... unless it says it asks about things in general.
    ("일반 배송은 보통 언제 와요?", False),
    ("주문하면 언제 도착해요?", False),
    ("주문 상태는 어디서 확인하나요?", False),
    ("반품 정책이 어떻게 되나요?", False),  # the state of no particular thing
    ("허브가 깨져서 왔어요", False),  # a statement of what came, no question after it
    ("계정이 잠겼다고 나와요", False),  # 나와요 ("it shows"), not 와요
])
def test_what_marks_a_message_as_the_customers_own_case(message: str, own: bool) -> None:
    assert speaks_of_own_case(message) is own


def test_a_general_question_needs_the_general_threshold() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"],
                          threshold=0.5, margin=0.0, general_threshold=1.01)
    # The example request itself, but worded as a general question: no action at 1.01 ...
    assert not router.route("List the recent orders").is_action
    assert router.route("List the recent orders", general_threshold=0.5).action == "list_orders"
    # ... while the customer's own case routes at the usual threshold.
    assert router.route("List my recent orders").action == "list_orders"


def test_a_question_about_things_in_general_starts_no_action_at_any_general_threshold() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["ko"], threshold=0.0, margin=-1.0,
                          general_threshold=0.0)
    assert router.route("주문 언제 도착해요?").is_action
    general = router.route("주문하면 언제 도착해요?")
    assert not general.is_action and general.runner_up == "order_status"
    assert router.route("제 주문하면 언제 도착해요?").is_action  # the customer's own case after all


def test_a_named_record_is_looked_up_unless_the_change_is_clearly_asked_for() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"], anchored_threshold=0.0)
    scores = {"order_status": 0.50, "start_return": 0.55, "change_delivery_address": 0.2, "": 0.9}
    close = router.decide("L-104198", scores, change_margin=0.1)
    assert close.action == "order_status" and close.runner_up == "start_return" and "lookup" in close.reason
    clear = router.decide("L-104198", scores, change_margin=0.02)
    assert clear.action == "start_return"


@pytest.mark.parametrize(("message", "hypothetical"), [
    ("if I cancel Lumio Plus do I get money back for the rest of the month?", True),
    ("What do I lose if I cancel Lumio Plus?", True),
    ("what happens if I change the address after it ships", True),
    ("구독 해지하면 남은 기간은 환불돼요?", True),
    ("만약 주소를 바꾸면 배송이 늦어지나요?", True),
    ("cancel my order if it hasn't shipped yet", False),  # a condition on the record: a request
    ("please cancel my Lumio Plus subscription", False),
    ("구독 해지해 주세요", False),
    ("화면에 주문 번호가 안 보여요", False),  # 화면 is a noun, not the conditional ending
])
def test_what_marks_a_question_about_what_a_change_would_do(message: str, hypothetical: bool) -> None:
    assert asks_what_a_change_would_do(message) is hypothetical


def test_a_question_about_what_a_change_would_do_proposes_no_change() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"], threshold=0.0, margin=0.0,
                          general_threshold=0.0)
    asked = router.route("If I cancel my Lumio Plus subscription, do I get money back?")
    assert not asked.is_action and asked.runner_up == "cancel_subscription" and "help center" in asked.reason
    assert router.route("Cancel my Lumio Plus subscription").action == "cancel_subscription"
    # Also when the message names the record the change would act on.
    named = router.decide("If I cancel S-2001, do I get money back?",
                          {"cancel_subscription": 0.9, "list_subscriptions": 0.3, "": 0.2}, change_margin=0.0)
    assert not named.is_action and named.runner_up == "cancel_subscription"
    # Lookups are not changes: a hypothetical may still be read ("what happens if my order is late").
    assert router.route("what happens if my order is late, where is my order?").is_action


def test_help_center_examples_are_titles_headings_and_sentences(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "plus.md").write_text(
        "---\ntitle: Lumio Plus plans\n---\n# Lumio Plus plans\n\nPlus costs 4.99 a month. **Annual** plans save 20%.\n",
        encoding="utf-8")
    (tmp_path / "ship.html").write_text(
        "<html><head><title>Shipping times</title><script>var x = 1;</script></head>"
        "<body><h2>Standard</h2><p>Standard shipping takes 3-5 days.</p></body></html>", encoding="utf-8")
    examples = help_center_examples(tmp_path)
    assert "Lumio Plus plans" in examples and "Plus costs 4.99 a month." in examples
    assert "Annual plans save 20%." in examples and "Standard shipping takes 3-5 days." in examples
    assert "Shipping times" in examples and not any("var x" in text for text in examples)


@pytest.mark.parametrize("message", ["플러스 구독 끊을래", "이제 그만둘게요", "반품할래요"])
def test_korean_endings_of_the_speakers_own_intent_speak_of_their_own_case(message: str) -> None:
    assert speaks_of_own_case(message)


@pytest.mark.parametrize("message", ["need an update on a delivery pls", "plz check where it is"])
def test_chat_shorthand_for_please_speaks_of_the_customers_own_case(message: str) -> None:
    assert speaks_of_own_case(message)


@pytest.mark.parametrize(("message", "mended"), [
    ("pls cancel my subscripton", "please cancel my subscription"),
    ("wheres my pakage", "where is my package"),
    ("my orders were shipped along the way", "my orders were shipped along the way"),  # real words stay
    ("can you chnage the adress", "can you change the address"),  # swapped, left out
    ("I want it changed, I waited", "I want it changed, I waited"),  # one letter for another: both words
])
def test_chat_shorthand_and_misspellings_are_mended_against_the_routers_words(message: str, mended: str) -> None:
    spelling = Spelling(["Please cancel my subscription", "Where is my package?", "My order shipped", "Where were you?",
                         "We charged your card", "I wanted to change my address"])
    assert spelling.mend(message) == mended


@pytest.mark.parametrize(("message", "asks"), [
    ("please cancel lumio plus for me", True), ("can you pull up my orders", True), ("I'd like to return it", True),
    ("can I cancel Lumio Plus?", False), ("there's a charge on my statement", False),
    ("please tell me what happens if I cancel", False), ("플러스 해지해 주세요", False),
    ("Please, how do I reset my bulb?", False), ("can you tell me how returns work?", False),
    ("I'd like to know if you ship abroad", False), ("please don't cancel my subscription", False),
    # A negation in the reason for a request does not refuse it; one of the request does.
    ("please cancel lumio plus for me, I'm not using it anymore", True), ("I don't want to return it, please", False),
    ("please do not change anything", False), ("no, please keep my plan", False),
    ("need an update on a delivery pls", True),
])
def test_asking_to_be_done_in_so_many_words(message: str, asks: bool) -> None:
    assert asks_to_be_done(message) is asks


def test_an_own_case_message_well_ahead_of_the_help_center_starts_its_action_below_the_threshold() -> None:
    router = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"], threshold=0.6, margin=0.0,
                          lead_threshold=0.45, lead_margin=0.12)
    moving = "I'm moving next week, can my bulbs go to my new place instead?"
    ahead = {"change_delivery_address": 0.51, "start_return": 0.40, "": 0.38}
    decision = router.decide(moving, ahead)
    assert decision.action == "change_delivery_address" and "well ahead" in decision.reason
    assert not router.decide(moving, {**ahead, "": 0.40}).is_action  # ahead by 0.11 only
    assert not router.decide(moving, {"change_delivery_address": 0.44, "start_return": 0.1, "": 0.1}).is_action
    # A message not about the customer's own case gets no such tier, and without one nothing changes.
    assert not router.decide("can bulbs go to a new place after they ship", ahead).is_action
    plain = ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP_CENTER, languages=["en"], threshold=0.6, margin=0.0)
    assert not plain.decide(moving, ahead).is_action
    assert DEFAULT_ROUTING["en"].lead < DEFAULT_ROUTING["en"].threshold
