"""The parts composed as the turn will call them, against the real shop, with a deterministic
embedder: lookups, clarifying questions with the customer's own records, a change proposed and run
once on an explicit yes, and the pending state carried between turns as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from supportbot.actions.identity import CustomerIdentity
from supportbot.actions.stage import SESSION_FIELD, ActionStage, ActionTurn
from tests.supportbot.actions.staging import demo_stage

TOKEN = "stage-test-token-" + "s" * 24
ANA = CustomerIdentity("c-ana", "customer_key")


@pytest.fixture()
def stage() -> Iterator[ActionStage]:
    with demo_stage(TOKEN) as built:
        yield built


async def talk(stage: ActionStage, messages: list[str], identity=ANA):  # type: ignore[no-untyped-def]
    state, results = None, []
    for message in messages:
        result = await stage.handle(message, state, identity)
        # What the Redis session would hold between turns.
        state = json.loads(json.dumps(result.state)) if result.state is not None else None
        results.append(result)
    return results


async def test_a_lookup_is_answered_and_cited(stage: ActionStage) -> None:
    [result] = await talk(stage, ["What's the status of order L-104233?"])
    assert result.kind == "result" and "[order L-104233]" in result.text and result.state is None
    assert result.interactions[0].outcome == "ok"


async def test_a_missing_order_gets_a_question_with_the_customers_orders(stage: ActionStage) -> None:
    question, answer = await talk(stage, ["Where is my order?", "L-104240"])
    assert question.kind == "clarify" and [o.value for o in question.options] == ["L-104240", "L-104233", "L-104198"]
    assert answer.kind == "result" and "processing" in answer.text


async def test_a_change_runs_once_after_yes_and_a_second_yes_is_refused(stage: ActionStage) -> None:
    proposal, done, again = await talk(stage, ["Cancel my Lumio Plus subscription", "yes", "yes"])
    assert proposal.kind == "confirm" and "S-2001" in proposal.text
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "cancelled"  # type: ignore[attr-defined]
    assert done.kind == "result" and "[subscription S-2001]" in done.text
    assert again.kind == "error" and "already confirmed" in again.text


async def test_no_leaves_everything_as_it_was(stage: ActionStage) -> None:
    proposal, refusal = await talk(stage, ["루미오 플러스 구독 해지해 주세요", "아니요"], CustomerIdentity("c-jiwoo", "widget_token"))
    assert proposal.kind == "confirm" and refusal.kind == "result" and refusal.state is None
    assert stage.server.store.subscriptions("c-jiwoo")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_the_address_is_asked_for_then_read_back(stage: ActionStage) -> None:
    asked, proposal, done = await talk(stage, ["Change the delivery address of my open order", "22 Station Road, York YO1 7AA", "yes"])
    assert asked.kind == "clarify" and "address" in asked.text
    assert proposal.kind == "confirm" and "L-104240" in proposal.text and "22 Station Road" in proposal.text
    assert done.kind == "result"
    assert stage.server.store.order("c-ana", "L-104240")["shipping_address"] == "22 Station Road, York YO1 7AA"  # type: ignore[attr-defined]


async def test_the_generator_fills_the_address_and_a_failing_one_leaves_it_asked(stage: ActionStage) -> None:
    message = "Change the delivery address of my open order to 22 Station Road, York YO1 7AA"

    async def filled(request):  # type: ignore[no-untyped-def]
        return json.dumps({"address": "22 Station Road, York YO1 7AA"})

    async def down(request):  # type: ignore[no-untyped-def]
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")

    stage.generate = filled
    [proposal] = await talk(stage, [message])
    assert proposal.kind == "confirm" and "22 Station Road, York YO1 7AA" in proposal.text
    for failing in (down, filled_slowly(), None):
        stage.generate = failing
        [asked] = await talk(stage, [message])
        assert asked.kind == "clarify" and "address" in asked.text


def filled_slowly():  # type: ignore[no-untyped-def]
    async def slow(request):  # type: ignore[no-untyped-def]
        raise TimeoutError

    return slow


async def test_help_center_questions_pass_through_and_anonymous_visitors_are_asked_to_sign_in(stage: ActionStage) -> None:
    [policy] = await talk(stage, ["What is your return policy?"])
    assert policy.kind == "help_center" and policy.state is None
    [anonymous] = await talk(stage, ["Where is my order?"], None)
    assert anonymous.kind == "error" and "signed in" in anonymous.text


async def test_a_stored_state_of_another_customer_is_never_confirmed(stage: ActionStage) -> None:
    [proposal] = await talk(stage, ["Cancel my Lumio Plus subscription"])
    ben = await stage.handle("yes", proposal.state, CustomerIdentity("c-ben", "customer_key"))
    assert ben.kind == "error" and "nothing waiting" in ben.text
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_the_typed_turn_input_passes_through_and_keeps_a_suspended_action(stage: ActionStage) -> None:
    proposal = await stage.run(ActionTurn("Cancel my Lumio Plus subscription", None, ANA))
    assert not proposal.passthrough and proposal.kind == "confirm"
    # What the gateway stores under SESSION_FIELD is plain JSON and comes back as the next input.
    stored = json.loads(json.dumps({SESSION_FIELD: proposal.state}))
    policy = await stage.run(ActionTurn("What is your return policy?", stored[SESSION_FIELD], ANA))
    assert policy.passthrough and policy.text == "" and policy.state is not None
    assert policy.state["status"] == "suspended" and policy.interactions == []
    again = await stage.run(ActionTurn("yes", policy.state, ANA))
    assert again.kind == "confirm" and stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_a_result_carries_its_interaction_record_and_citation(stage: ActionStage) -> None:
    result = await stage.run(ActionTurn("What's the status of order L-104233?", None, ANA, turn_id="t-1", session_id="s-1"))
    [record] = result.interactions
    assert record.KIND == "action" and record.to_record()["action"] == "order_status"
    assert (record.turn_id, record.session_id) == ("t-1", "s-1")
    assert record.identity_source == "customer_key" and record.outcome == "ok"
    assert [c.marker for c in result.citations] == ["[order L-104233]"]


async def test_confirmation_errors_speak_the_customers_language(stage: ActionStage) -> None:
    jiwoo = CustomerIdentity("c-jiwoo", "widget_token")
    [nothing] = await talk(stage, ["네"], jiwoo)
    assert nothing.kind == "error" and nothing.text == "확인을 기다리는 요청이 없어요."
    [english] = await talk(stage, ["yes"])
    assert english.kind == "error" and "nothing waiting" in english.text
    proposal, done, twice = await talk(stage, ["루미오 플러스 구독 해지해 주세요", "네", "네"], jiwoo)
    assert done.kind == "result" and twice.kind == "error" and "이미 확인되어" in twice.text


async def test_an_expired_proposal_says_so_and_is_dropped(stage: ActionStage) -> None:
    [proposal] = await talk(stage, ["Cancel my Lumio Plus subscription"])
    stage.clock = lambda: proposal.state["expires_at"] + 1  # type: ignore[index]
    late = await stage.run(ActionTurn("yes", proposal.state, ANA))
    assert late.kind == "error" and "expired" in late.text and late.state is None
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_after_expiry_another_question_is_answered_and_the_request_can_be_asked_afresh(stage: ActionStage) -> None:
    """Before, any message after a proposal lapsed was answered "That request expired"."""
    [proposal] = await talk(stage, ["Cancel my Lumio Plus subscription"])
    stage.clock = lambda: proposal.state["expires_at"] + 1  # type: ignore[index]
    question = await stage.run(ActionTurn("How long do refunds take?", proposal.state, ANA))
    assert question.kind == "help_center" and question.state is None
    again = await stage.run(ActionTurn("Cancel my Lumio Plus subscription", proposal.state, ANA))
    assert again.kind == "confirm" and again.state is not None and again.state["expires_at"] > proposal.state["expires_at"]  # type: ignore[index]
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_a_change_the_shop_never_got_is_not_reported_done_and_can_be_asked_again(stage: ActionStage) -> None:
    """The shop stops between the proposal and the yes: the customer is told nothing changed, a
    second yes is not answered as if it had run, and once the shop is back the same request works."""
    shop = stage.server  # type: ignore[attr-defined]
    [proposal] = await talk(stage, ["Cancel my Lumio Plus subscription"])
    assert proposal.kind == "confirm"
    port = int(shop.url.rsplit(":", 1)[1])
    shop.stop()
    failed = await stage.handle("yes", proposal.state, ANA)
    assert failed.kind == "error" and "nothing was changed" in failed.text and not failed.citations
    assert failed.interactions[0].outcome == "unavailable" and failed.state is None
    again = await stage.handle("yes", failed.state, ANA)
    assert again.kind == "error" and "nothing waiting" in again.text and "already" not in again.text
    with ShopServer(ShopSettings(database=":memory:", port=port, service_token=TOKEN), shop.store) as back:
        assert back.store.subscriptions("c-ana")[0]["status"] == "active"
        retried, done = await talk(stage, ["Cancel my Lumio Plus subscription", "yes"])
        assert retried.kind == "confirm" and done.kind == "result" and "[subscription S-2001]" in done.text
        assert back.store.subscriptions("c-ana")[0]["status"] == "cancelled"


# --- an agent's drafts (ActionStage.draft) -------------------------------------------------------


async def test_a_draft_runs_the_lookup_asked_for_and_cites_the_record(stage: ActionStage) -> None:
    drafted = await stage.draft("Where is L-104233?", None, ANA)
    assert drafted is not None and drafted.kind == "result" and "[order L-104233]" in drafted.text
    assert drafted.state is None and [r.action for r in drafted.reads] == ["order_status"]


async def test_a_drafted_change_waits_for_the_agent_and_the_customers_yes_only_reads_it_back(stage: ActionStage) -> None:
    drafted = await stage.draft("Cancel my Lumio Plus subscription", None, ANA)
    assert drafted is not None and drafted.kind == "confirm" and "S-2001" in drafted.text
    state = json.loads(json.dumps(drafted.state))
    assert state["status"] == "suspended" and state["drafted"] is True
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]
    # She was never asked: her "yes" (to something the agent said) reads the change back first.
    yes = await stage.handle("yes", state, ANA)
    assert yes.kind == "confirm" and yes.state is not None and yes.state["drafted"] is False
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "active"  # type: ignore[attr-defined]


async def test_a_drafted_change_runs_on_the_agents_approval_for_the_customer_drafted_for(stage: ActionStage) -> None:
    from supportbot.actions.case import proposal_of

    drafted = await stage.draft("Cancel my Lumio Plus subscription", None, ANA)
    assert drafted is not None
    proposal = proposal_of(drafted.state, stage.actions, stage.clock())
    assert proposal is not None and proposal.drafted and proposal.state == "waiting"
    done = await stage.approve(drafted.state, proposal.proposal_id, "agent:smith")
    assert done.kind == "result" and "[subscription S-2001]" in done.text
    assert stage.server.store.subscriptions("c-ana")[0]["status"] == "cancelled"  # type: ignore[attr-defined]
    assert stage.server.store.subscriptions("c-ben")[0]["status"] == "active"  # type: ignore[attr-defined]
    assert done.interactions[0].confirmed_by == "agent:smith"


async def test_a_draft_offers_nothing_for_policy_questions_anonymous_visitors_or_over_a_waiting_proposal(stage: ActionStage) -> None:
    assert await stage.draft("What is your return policy?", None, ANA) is None
    assert await stage.draft("Where is L-104233?", None, None) is None
    [waiting] = await talk(stage, ["Cancel my Lumio Plus subscription"])
    assert await stage.draft("Change the delivery address of L-104240 to 1 Main St, York YO1 1AA", waiting.state, ANA) is None


async def test_a_drafted_question_offers_the_customers_records_and_keeps_no_state(stage: ActionStage) -> None:
    drafted = await stage.draft("Where is my order?", None, ANA)
    assert drafted is not None and drafted.kind == "clarify" and drafted.state is None
    assert [o.value for o in drafted.options] == ["L-104240", "L-104233", "L-104198"]


async def test_an_offered_order_is_picked_by_its_item_or_its_place(stage: ActionStage) -> None:
    _, by_item = await talk(stage, ["Where is my order?", "the lumio hub one"])
    assert by_item.kind == "result" and "[order L-104233]" in by_item.text
    _, by_place = await talk(stage, ["제 주문 어디쯤 왔나요?", "첫 번째 거요"], CustomerIdentity("c-jiwoo", "widget_token"))
    assert by_place.kind == "result" and by_place.citations[0].record_id == "L-200103"
