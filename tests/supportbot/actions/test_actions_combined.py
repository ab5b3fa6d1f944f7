"""A case question and a policy question in one message (supportbot/actions/combined.py): where
the message is cut (one clause boundary; never a bare comma, "Plus" or a record number), which
part is a request and which a question, and the parts routed by a router with a deterministic
embedder, its gates included; then the stage starting the case part's action against the real
shop and leaving the other part to the help center, in English and Korean."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from services.shop.server import ShopServer
from supportbot.actions.combined import (
    CombinedThresholds,
    cuts,
    is_question,
    split,
    texts_to_embed,
    worded_as_request,
)
from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.identity import CustomerIdentity
from supportbot.actions.routing import ActionRouter, HashingEmbedder
from supportbot.actions.stage import ActionStage
from tests.supportbot.actions.staging import HELP, demo_stage

TOKEN = "combined-test-token-" + "c" * 24
ANA = CustomerIdentity("c-ana", "customer_key")
ACTIONS = load_actions(sample_actions_path())
CHANGES = [action.name for action in ACTIONS.actions if action.changes]
AT = CombinedThresholds(case=0.5, question=0.0)


@pytest.mark.parametrize(("message", "parts"), [
    ("where is my order and can I still return it?", ("where is my order", "can I still return it?")),
    ("cancel my Lumio Plus subscription — do I get a refund for this month?",
     ("cancel my Lumio Plus subscription", "do I get a refund for this month?")),
    ("Cancel my Lumio Plus subscription - do I get a refund?", ("Cancel my Lumio Plus subscription", "do I get a refund?")),
    ("Has my order L-104240 shipped yet, and do you deliver to Ireland?", ("Has my order L-104240 shipped yet", "do you deliver to Ireland?")),
    ("What's the tracking number for L-100001? Also, how many days do I have to return something?",
     ("What's the tracking number for L-100001?", "how many days do I have to return something?")),
    ("Track L-104233; what is the return policy?", ("Track L-104233", "what is the return policy?")),
    ("주문 어디쯤이에요? 그리고 반품 가능한가요?", ("주문 어디쯤이에요?", "반품 가능한가요?")),
    ("제 주문 내역 보여 주세요. 그런데 배송비는 얼마예요?", ("제 주문 내역 보여 주세요.", "배송비는 얼마예요?")),
    ("구독 해지해 주시고, 이번 달 요금은 환불되나요?", ("구독 해지해 주시고", "이번 달 요금은 환불되나요?")),
])
def test_a_message_is_cut_at_its_clause_boundary_and_the_conjunction_dropped(message: str, parts: tuple[str, str]) -> None:
    assert cuts(message) == [parts]


@pytest.mark.parametrize("message", [
    "If I cancel my Lumio Plus subscription, do I get a refund for this month?",  # a bare comma
    "Hi, where is my order L-104233?",
    "Is Lumio Plus worth it plus can I cancel anytime?",  # "plus" is no boundary (Lumio Plus)
    "Please cancel my Lumio Plus plan and the renewal",  # "and" before no new clause
    "I ordered the hub and bulb bundle, where is it?",
    "Where is order L-104233",  # a record number's hyphen
    "My order L-104233. ",
    "구독을 해지하면 이번 달 요금은 환불되나요?",
    "허브하고 전구를 주문했는데 언제 와요?",  # 하고 joins nouns; 는데 without a comma
    "주문 L-200101 배송 상태 알려주세요",
])
def test_no_boundary_no_cut(message: str) -> None:
    assert cuts(message) == []


@pytest.mark.parametrize(("part", "question", "asked_for"), [
    ("can I still return it?", True, False),
    ("Can I cancel my subscription?", True, False),  # asks about the policy
    ("Can you cancel my subscription?", True, True),
    ("cancel my Lumio Plus subscription", False, True),
    ("I don't want my Lumio Plus plan anymore", False, True),
    ("If I cancel it, do I get a refund?", True, False),
    ("구독 해지해 주세요", False, True),
    ("구독 해지할 수 있나요?", True, False),
    ("반품 가능한가요?", True, False),
    ("배송비는 얼마예요", True, False),
    ("구독을 해지하면 환불되나요?", True, False),
])
def test_a_question_is_told_from_a_request(part: str, question: bool, asked_for: bool) -> None:
    assert (is_question(part), worded_as_request(part)) == (question, asked_for)


@pytest.fixture(scope="module")
def router() -> ActionRouter:
    return ActionRouter(ACTIONS.actions, HashingEmbedder(), HELP, languages=["en"], threshold=0.6, margin=0.05)


@pytest.mark.parametrize(("message", "case", "action", "question"), [
    ("where is my order and can I still return it?", "where is my order", "order_status", "can I still return it?"),
    ("cancel my Lumio Plus subscription — do I get a refund for this month?", "cancel my Lumio Plus subscription",
     "cancel_subscription", "do I get a refund for this month?"),
    ("Which payment methods do you accept? And can you show me my orders?", "can you show me my orders?", "list_orders", "Which payment methods do you accept?"),
])
def test_a_case_part_and_a_policy_question_are_split(router: ActionRouter, message: str, case: str, action: str,
                                                     question: str) -> None:
    combined = split(message, router, AT, "en", CHANGES)
    assert combined is not None
    assert (combined.case, combined.decision.action, combined.question) == (case, action, question)
    assert combined.case_first == message.startswith(case)


@pytest.mark.parametrize("message", [
    # The other part is a second question about the same order: closer to a lookup.
    "Where is my order L-100002? When will it arrive?",
    # No question in the other part.
    "Where is my order L-104233? It's been over a week.",
    # A change asked about, not asked for: never proposed as the case part.
    "Can I cancel my Lumio Plus subscription? And which payment methods do you accept?",
    # Two requests: each is an action of its own, none a policy question.
    "Where is my order L-104233 and can you cancel my Lumio Plus subscription?",
    # Two policy questions: no case part.
    "What is your return policy? And how do I reset my Lumio bulb?",
    # A bare record number is no clause of its own (tune conversation en-lowercase).
    "where is my package? order l-100002",
])
def test_what_must_stay_one_message_is_not_split(router: ActionRouter, message: str) -> None:
    assert split(message, router, AT, "en", CHANGES) is None


def test_a_higher_case_threshold_keeps_a_less_certain_case_part_whole(router: ActionRouter) -> None:
    message = "Can you show me my orders? And which payment methods do you accept?"
    assert split(message, router, AT, "en", CHANGES) is not None
    assert split(message, router, CombinedThresholds(case=0.95, question=0.0), "en", CHANGES) is None


def test_the_texts_embedded_are_each_part_with_its_record_numbers_masked(router: ActionRouter) -> None:
    assert texts_to_embed("Where is L-104233 and can I return it?", router) == ["Where is", "can I return it?"]
    assert texts_to_embed("Where is my order?", router) == []


@pytest.fixture()
def stage() -> Iterator[ActionStage]:
    with demo_stage(TOKEN) as built:
        yield built


async def test_the_stage_asks_about_the_case_part_and_leaves_the_question_to_the_help_center(stage: ActionStage) -> None:
    result = await stage.handle("where is my order and can I still return it?", None, ANA)
    assert (result.kind, result.action, result.question) == ("clarify", "order_status", "can I still return it?")
    assert [o.value for o in result.options] == ["L-104240", "L-104233", "L-104198"]
    answered = await stage.handle("L-104233", json.loads(json.dumps(result.state)), ANA)
    assert answered.kind == "result" and "[order L-104233]" in answered.text and answered.question == ""


async def test_a_change_in_a_combined_message_is_only_proposed_and_runs_on_yes(stage: ActionStage) -> None:
    server: ShopServer = stage.server  # type: ignore[attr-defined]
    proposal = await stage.handle("cancel my Lumio Plus subscription — do I get a refund for this month?", None, ANA)
    assert (proposal.kind, proposal.action, proposal.question) == ("confirm", "cancel_subscription", "do I get a refund for this month?")
    assert server.store.subscriptions("c-ana")[0]["status"] == "active"
    done = await stage.handle("yes", json.loads(json.dumps(proposal.state)), ANA)
    assert done.kind == "result" and server.store.subscriptions("c-ana")[0]["status"] == "cancelled"


async def test_a_message_asked_whole_is_answered_whole(stage: ActionStage) -> None:
    result = await stage.handle("Where is my order L-104233? It's been over a week.", None, ANA)
    assert (result.kind, result.question) == ("result", "") and "[order L-104233]" in result.text
