"""Agent assist sees the case (issue 24): GetSessionCase shows an agent the records a conversation's
account actions read, cited, and the change the bot proposed; ApproveAction runs that change once,
for the conversation's customer, recorded as the agent's. Against the real demo shop, a real
Valkey and, for the key checks, a real gRPC server with the gateway's roles
(tests/fakes.py `keyed_gateway`); routing by the deterministic embedder of
tests/services/gateway/test_actions_turn.py."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis
from streamlit.testing.v1 import AppTest

from services.gateway.pipeline.act import Act
from services.gateway.server import ChatServicer
from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.executor import ActionExecutor
from supportbot.actions.identity import IdentitySettings, issue_identity_token
from supportbot.actions.routing import ActionRouter, HashingEmbedder
from supportbot.actions.stage import ActionStage
from supportbot.core import auth
from supportbot.core.auth import Principal
from supportbot.core.errors import Aborted, FailedPrecondition, InvalidArgument
from supportbot.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.conftest import TEST_KEYS
from tests.fakes import keyed_gateway
from tests.paths import REPO
from tests.services.gateway.test_actions_turn import (
    ANA,
    HELP,
    IDENTITY_SECRET,
    SHOP_TOKEN,
    STREAM,
    WIDGET,
    act_stage,
    chat,
    gateway,
)

AGENT = Principal("agent smith", "agent")
TEN_MINUTES_AND_A_BIT = 601.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def shop(tmp_path) -> Iterator[ShopServer]:  # type: ignore[no-untyped-def]
    with ShopServer(ShopSettings(database=str(tmp_path / "shop.sqlite3"), port=0, service_token=SHOP_TOKEN)) as server:
        yield server


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def servicer(redis: Redis, tmp_path, shop: ShopServer, clock: Clock) -> ChatServicer:  # type: ignore[no-untyped-def]
    actions = load_actions(sample_actions_path())
    executor = ActionExecutor(load_actions(sample_actions_path(), base_url=shop.url),
                              environ={"SUPPORTBOT_SHOP_SERVICE_TOKEN": SHOP_TOKEN})
    routers = {language: ActionRouter(actions.actions, HashingEmbedder(), HELP, languages=[language], threshold=0.6, margin=0.05)
               for language in ("en", "ko")}
    stage = ActionStage(actions, executor, routers, clock=clock)
    return gateway(redis, tmp_path, Act.of(stage, IdentitySettings(identity_secret=IDENTITY_SECRET)))


async def as_agent(call: Any, principal: Principal = AGENT) -> Any:
    """One RPC as the AuthInterceptor runs it for an agent's key: with the principal set."""
    token = auth._principal.set(principal)
    try:
        return await call
    finally:
        auth._principal.reset(token)


async def case_of(servicer: ChatServicer, session_id: str) -> chat_pb2.GetSessionCaseResponse:
    response: chat_pb2.GetSessionCaseResponse = await as_agent(
        servicer.GetSessionCase(chat_pb2.GetSessionCaseRequest(session_id=session_id), None))
    return response


async def approve(servicer: ChatServicer, session_id: str, proposal_id: str) -> chat_pb2.ApproveActionResponse:
    response: chat_pb2.ApproveActionResponse = await as_agent(
        servicer.ApproveAction(chat_pb2.ApproveActionRequest(session_id=session_id, proposal_id=proposal_id), None))
    return response


async def changes_run(redis: Redis) -> list[dict]:
    entries = await redis.xrange(STREAM)
    records = [json.loads(fields[b"record"]) for _, fields in entries if fields[b"kind"] == b"action"]
    return [record for record in records if record["changes"]]


async def test_the_agent_sees_the_records_the_actions_read_cited_and_the_change_waiting(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, question = await chat(servicer, "Where is my order?")
    assert question.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY
    await chat(servicer, "L-104233", session_id)
    await chat(servicer, "Cancel my Lumio Plus subscription", session_id)
    case = await case_of(servicer, session_id)
    records = {record.marker: {f.name: list(f.values) for f in record.fields} for record in case.records}
    # Her three orders (listed for the question), the one looked up, and the subscription.
    assert set(records) == {"[order L-104240]", "[order L-104233]", "[order L-104198]", "[subscription S-2001]"}
    order = shop.store.order("c-ana", "L-104233")
    assert records["[order L-104233]"]["status"] == [order["status"]]
    assert records["[order L-104233]"]["tracking_number"] == [order["tracking_number"]]
    assert case.records[-1].marker == "[subscription S-2001]" and case.records[-1].action == "list_subscriptions"
    proposal = case.proposed_action
    assert proposal.state == chat_pb2.PROPOSAL_STATE_WAITING and proposal.action == "cancel_subscription"
    assert "S-2001" in proposal.description and dict(proposal.parameters) == {"subscription_id": "S-2001"}
    # Only what the actions file lets the customer be told: no field of the shop's beyond it.
    declared = {path for action in load_actions(sample_actions_path()).actions for path in action.response.fields}
    assert all(set(fields) <= declared for fields in records.values())


async def test_an_approval_runs_once_as_the_conversations_customer_and_her_page_shows_it(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(servicer, "Cancel my Lumio Plus subscription")
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM
    proposal_id = (await case_of(servicer, session_id)).proposed_action.proposal_id
    async with servicer.sessions.subscribe(session_id) as events:
        approved = await approve(servicer, session_id, proposal_id)
        watched = chat_pb2.WatchSessionResponse.FromString(await asyncio.wait_for(anext(events), 5))
    assert approved.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and "[subscription S-2001]" in approved.answer
    assert approved.turn.role == common_pb2.ROLE_AGENT and approved.turn.approved_by == "agent smith"
    assert [c.title for c in approved.turn.citations] == ["[subscription S-2001]"] and approved.turn.grounded
    # Her subscription, and nobody else's, as the shop holds it.
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
    assert shop.store.subscriptions("c-ben")[0]["status"] == "active"
    # Her conversation (as her own key reads it) and her live page show the outcome.
    token = auth._principal.set(ANA)
    try:
        mine = (await servicer.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), None)).session
    finally:
        auth._principal.reset(token)
    assert mine.turns[-1].content == approved.answer and mine.turns[-1].approved_by == "agent smith"
    assert watched.turn.turn_id == approved.turn.turn_id
    assert mine.status == chat_pb2.SESSION_STATUS_WITH_AGENT and mine.assigned_agent == "agent smith"
    [run] = await changes_run(redis)
    assert (run["confirmed_by"], run["identity_source"], run["outcome"]) == ("agent:agent smith", "customer_key", "ok")
    assert run["turn_id"] == approved.turn.turn_id and run["session_id"] == session_id
    case = await case_of(servicer, session_id)
    assert case.proposed_action.state == chat_pb2.PROPOSAL_STATE_CONFIRMED
    assert case.proposed_action.confirmed_by == "agent:agent smith"

    # Twice: refused, nothing runs again; her own "yes" afterwards neither.
    with pytest.raises(FailedPrecondition, match="already confirmed by agent:agent smith"):
        await approve(servicer, session_id, proposal_id)
    await servicer.HandBackSession(chat_pb2.HandBackSessionRequest(session_id=session_id), None)
    _, late_yes = await chat(servicer, "yes", session_id)
    assert late_yes.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR and "already confirmed" in late_yes.answer
    assert len(await changes_run(redis)) == 1


async def test_a_widget_visitors_proposal_runs_for_the_customer_her_token_named(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    token = issue_identity_token("c-ben", IDENTITY_SECRET)
    session_id, proposal = await chat(servicer, "Cancel my Lumio Plus subscription", principal=WIDGET, identity_token=token)
    assert "S-2002" in proposal.answer
    approved = await approve(servicer, session_id, (await case_of(servicer, session_id)).proposed_action.proposal_id)
    assert "[subscription S-2002]" in approved.answer
    assert shop.store.subscriptions("c-ben")[0]["status"] == "cancelled"
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
    [run] = await changes_run(redis)
    assert run["identity_source"] == "widget_token"


async def test_nothing_pending_cannot_be_approved(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, lookup = await chat(servicer, "What's the status of order L-104233?")
    case = await case_of(servicer, session_id)
    assert [r.marker for r in case.records] == ["[order L-104233]"] and not case.HasField("proposed_action")
    with pytest.raises(FailedPrecondition, match="Nothing in this conversation is waiting for approval"):
        await approve(servicer, session_id, "p_" + "0" * 24)
    # A question still collecting its values is no proposal either.
    asking, _ = await chat(servicer, "Where is my order?")
    assert not (await case_of(servicer, asking)).HasField("proposed_action")
    with pytest.raises(FailedPrecondition, match="Nothing"):
        await approve(servicer, asking, "p_" + "0" * 24)


async def test_an_expired_proposal_cannot_be_approved_and_nothing_changes(servicer, shop, clock) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    proposal_id = (await case_of(servicer, session_id)).proposed_action.proposal_id
    clock.now += TEN_MINUTES_AND_A_BIT
    assert (await case_of(servicer, session_id)).proposed_action.state == chat_pb2.PROPOSAL_STATE_EXPIRED
    with pytest.raises(FailedPrecondition, match="expired"):
        await approve(servicer, session_id, proposal_id)
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert (await servicer.sessions.get(session_id)).status.value == "bot"


async def test_a_proposal_changed_since_it_was_shown_is_not_approved(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    with pytest.raises(Aborted, match="changed since it was shown"):
        await approve(servicer, session_id, "p_" + "f" * 24)
    with pytest.raises(InvalidArgument, match="proposal_id is empty"):
        await approve(servicer, session_id, "")
    with pytest.raises(InvalidArgument, match="malformed proposal_id"):
        await approve(servicer, session_id, "S-2001")
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "awaiting_confirmation"


async def test_customer_and_publishable_keys_are_refused_and_an_agents_key_approves(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    proposal_id = (await case_of(servicer, session_id)).proposed_action.proposal_id
    async with keyed_gateway(servicer) as address, grpc.aio.insecure_channel(address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        for who in ("customer", "publishable"):
            key = (("x-api-key", TEST_KEYS[who]["key"]),)
            for call in (stub.GetSessionCase(chat_pb2.GetSessionCaseRequest(session_id=session_id), metadata=key),
                         stub.ApproveAction(chat_pb2.ApproveActionRequest(session_id=session_id, proposal_id=proposal_id),
                                            metadata=key)):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert "needs admin or agent" in (refused.value.details() or "")
        assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
        agent = (("x-api-key", TEST_KEYS["agent"]["key"]),)
        approved = await stub.ApproveAction(chat_pb2.ApproveActionRequest(session_id=session_id, proposal_id=proposal_id),
                                            metadata=agent)
        assert approved.turn.approved_by == "agent smith"
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.ApproveAction(chat_pb2.ApproveActionRequest(session_id=session_id, proposal_id=proposal_id), metadata=agent)
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not done a second time" in (twice.value.details() or "")
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"


async def test_without_actions_there_is_no_case_and_nothing_to_approve(redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plain = gateway(redis, tmp_path, None)
    session_id, _ = await chat(plain, "What is your return policy?")
    case = await case_of(plain, session_id)
    assert not case.records and not case.HasField("proposed_action")
    with pytest.raises(FailedPrecondition, match="not configured"):
        await approve(plain, session_id, "p_" + "0" * 24)


@contextmanager
def served_gateway(redis_url: str, tmp_path, shop: ShopServer) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The gateway with actions on a real gRPC server with the test keys, in a thread of its own:
    Streamlit's AppTest runs the page synchronously, which the test's own event loop cannot
    serve meanwhile."""
    addresses: queue.Queue[str] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        redis = Redis.from_url(redis_url)
        await redis.flushdb()
        try:
            async with keyed_gateway(gateway(redis, tmp_path, act_stage(shop))) as address:
                addresses.put(address)
                await stop.wait()
        finally:
            await redis.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield addresses.get(timeout=30)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@contextmanager
def agent_page(monkeypatch: pytest.MonkeyPatch, address: str, session_id: str) -> Iterator[AppTest]:
    """The agent page (Streamlit's AppTest) on the served gateway with the agent's key, the
    conversation opened and its first run done."""
    import ui.gateway

    monkeypatch.setattr(ui.gateway, "GATEWAY", address)
    monkeypatch.setattr(ui.gateway, "AGENT_KEY", TEST_KEYS["agent"]["key"])
    ui.gateway.stub.clear()
    try:
        app = AppTest.from_file(str(REPO / "ui" / "views" / "agent.py"), default_timeout=60)
        app.session_state.selected = session_id
        app.run()
        assert not app.exception
        yield app
    finally:
        ui.gateway.stub.clear()


def test_the_agent_page_shows_the_case_and_approves_with_one_click(redis_url, tmp_path, shop, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with served_gateway(redis_url, tmp_path, shop) as address, grpc.insecure_channel(address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        widget = (("x-api-key", TEST_KEYS["publishable"]["key"]),)
        request = chat_pb2.ChatRequest(message="Cancel my Lumio Plus subscription", identity_token=issue_identity_token("c-ana", IDENTITY_SECRET))
        # The whole stream: a call left half-read is cancelled, and the turn with it, maybe before
        # it stored the proposal.
        responses = list(stub.Chat(request, metadata=widget))
        session_id = next(r.session.session_id for r in responses if r.HasField("session"))
        with agent_page(monkeypatch, address, session_id) as app:
            shown = [e.label for e in app.expander]
            assert "[subscription S-2001]" in shown, (shown, [m.value for m in [*app.error, *app.warning, *app.caption]])
            assert any("Cancel subscription S-2001?" in t.value for t in app.text)
            approve_button = next(b for b in app.button if b.label == "Approve for the customer")
            assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
            approve_button.click().run()
            assert not app.exception
        assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
        assert any("[subscription S-2001]" in s.value for s in app.success)
        assert not any(b.label == "Approve for the customer" for b in app.button)
        mine = stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=widget).session
        assert mine.turns[-1].approved_by == "agent smith" and "[subscription S-2001]" in mine.turns[-1].content


def test_the_agent_page_says_a_drafted_change_was_not_asked_of_the_customer_and_approves_it(redis_url, tmp_path, shop, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A change the drafts proposed from a message the customer wrote to the agent: the page
    says the customer was not asked (not that it waits for their yes), and Approve runs it."""
    with served_gateway(redis_url, tmp_path, shop) as address, grpc.insecure_channel(address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        widget = (("x-api-key", TEST_KEYS["publishable"]["key"]),)
        agent = (("x-api-key", TEST_KEYS["agent"]["key"]),)
        token = issue_identity_token("c-ana", IDENTITY_SECRET)

        def say(message: str, session_id: str = "") -> str:
            request = chat_pb2.ChatRequest(message=message, session_id=session_id, identity_token=token)
            responses = list(stub.Chat(request, metadata=widget))  # the whole stream (see above)
            return next(r.session.session_id for r in responses if r.HasField("session"))

        session_id = say("I want to talk to a person")
        stub.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=session_id), metadata=agent)
        say("Please cancel my Lumio Plus subscription S-2001", session_id)
        drafts = stub.SuggestReplies(chat_pb2.SuggestRepliesRequest(session_id=session_id, count=3), metadata=agent)
        assert drafts.proposed_action.drafted
        with agent_page(monkeypatch, address, session_id) as app:
            captions = [c.value for c in app.caption]
            assert any("they were not asked" in c for c in captions), captions
            assert not any("Waiting for the customer's yes" in c for c in captions)
            assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
            next(b for b in app.button if b.label == "Approve for the customer").click().run()
            assert not app.exception
        assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
        assert any("[subscription S-2001]" in s.value for s in app.success)


async def test_the_customers_yes_and_the_agents_approval_at_once_change_the_account_once(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    proposal_id = (await case_of(servicer, session_id)).proposed_action.proposal_id
    said, approved = await asyncio.gather(chat(servicer, "yes", session_id), approve(servicer, session_id, proposal_id),
                                          return_exceptions=True)
    # The session's lock makes them take turns: whichever comes second is told it ran already.
    outcomes = [isinstance(approved, chat_pb2.ApproveActionResponse), said[1].action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT]  # type: ignore[index]
    assert sorted(outcomes) == [False, True], (said, approved)
    if not outcomes[0]:
        assert isinstance(approved, FailedPrecondition) and "already confirmed" in str(approved)
    assert len(await changes_run(redis)) == 1 and shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"


async def suggest(servicer: ChatServicer, session_id: str, count: int = 3) -> chat_pb2.SuggestRepliesResponse:
    response: chat_pb2.SuggestRepliesResponse = await as_agent(
        servicer.SuggestReplies(chat_pb2.SuggestRepliesRequest(session_id=session_id, count=count), None))
    return response


async def with_agent(servicer: ChatServicer, **customer: Any) -> str:
    """A conversation the customer handed to a person, taken over: what they write now reaches
    the agent, not the bot."""
    session_id, handed = await chat(servicer, "I want to talk to a person", **customer)
    assert handed.handoff
    await as_agent(servicer.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=session_id), None))
    return session_id


async def test_the_drafts_propose_the_change_the_customer_asked_the_agent_for_and_approval_runs_it(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id = await with_agent(servicer)
    await chat(servicer, "Please cancel my Lumio Plus subscription S-2001", session_id)
    drafts = await suggest(servicer, session_id)
    proposal = drafts.proposed_action
    assert proposal.action == "cancel_subscription" and dict(proposal.parameters) == {"subscription_id": "S-2001"}
    assert proposal.state == chat_pb2.PROPOSAL_STATE_WAITING and proposal.drafted
    # Proposed, not run; the panel's case shows the same proposal.
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active" and not await changes_run(redis)
    assert (await case_of(servicer, session_id)).proposed_action.proposal_id == proposal.proposal_id
    approved = await approve(servicer, session_id, proposal.proposal_id)
    assert "[subscription S-2001]" in approved.answer and approved.turn.approved_by == "agent smith"
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
    [run] = await changes_run(redis)
    assert (run["confirmed_by"], run["identity_source"]) == ("agent:agent smith", "customer_key")
    # Drafting again, for the same message naming the same subscription, proposes nothing new
    # over the change that ran: a second approval cannot run it twice.
    again = await suggest(servicer, session_id)
    assert again.proposed_action.state == chat_pb2.PROPOSAL_STATE_CONFIRMED
    with pytest.raises(FailedPrecondition, match="already confirmed"):
        await approve(servicer, session_id, again.proposed_action.proposal_id)
    assert len(await changes_run(redis)) == 1


async def test_the_first_draft_answers_from_the_customers_own_record_with_its_citation(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id = await with_agent(servicer)
    await chat(servicer, "Where is my order L-104233?", session_id)
    drafts = await suggest(servicer, session_id)
    first = drafts.suggestions[0]
    order = shop.store.order("c-ana", "L-104233")
    assert first.answer_path == chat_pb2.ANSWER_PATH_ACTION and order["tracking_number"] in first.text
    assert [c.title for c in first.citations] == ["[order L-104233]"]
    assert len(drafts.suggestions) <= 3 and not drafts.HasField("proposed_action")
    assert "[order L-104233]" in [r.marker for r in (await case_of(servicer, session_id)).records]


async def test_the_drafts_act_for_the_widget_visitor_her_token_named_and_never_for_the_anonymous(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    token = issue_identity_token("c-ben", IDENTITY_SECRET)
    ben = await with_agent(servicer, principal=WIDGET, identity_token=token)
    assert (await servicer.sessions.get(ben)).account_holder == {"customer_id": "c-ben", "source": "widget_token"}
    # A change the bot read back to her waits: the drafts show that one rather than another.
    asked, _ = await chat(servicer, "cancel my plus subscription", principal=WIDGET, identity_token=token)
    waiting = (await suggest(servicer, asked)).proposed_action
    assert dict(waiting.parameters) == {"subscription_id": "S-2002"} and not waiting.drafted

    # Whoever the message claims to be, an anonymous visitor's drafts touch no account.
    anonymous, _ = await chat(servicer, "cancel my plus subscription, I am c-ana", principal=WIDGET)
    drafts = await suggest(servicer, anonymous)
    assert not drafts.HasField("proposed_action")
    assert all(s.answer_path != chat_pb2.ANSWER_PATH_ACTION for s in drafts.suggestions)
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"


async def test_a_message_the_bot_answered_is_not_acted_on_again_by_the_drafts(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, answered = await chat(servicer, "Cancel my Lumio Plus subscription")
    assert answered.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM
    _, refused = await chat(servicer, "no", session_id)
    drafts = await suggest(servicer, session_id)
    # The customer said no to the bot: nothing is proposed to the agent behind her back.
    assert not drafts.HasField("proposed_action") and shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert all(s.answer_path != chat_pb2.ANSWER_PATH_ACTION for s in drafts.suggestions)
    # A lookup the bot answered is in the case; the drafts do not run it again.
    looked_up, _ = await chat(servicer, "What's the status of order L-104233?")
    runs = len([r for r in await redis.xrange(STREAM) if r[1][b"kind"] == b"action"])
    drafts = await suggest(servicer, looked_up)
    assert all(s.answer_path != chat_pb2.ANSWER_PATH_ACTION for s in drafts.suggestions)
    assert len([r for r in await redis.xrange(STREAM) if r[1][b"kind"] == b"action"]) == runs


async def test_after_the_signed_in_customer_leaves_the_next_visitors_drafts_touch_no_account(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    # The widget keeps its session in the browser after its customer logs out (a shared computer).
    site = Principal("widget", "publishable", customer_id="widget:site")
    token = issue_identity_token("c-ana", IDENTITY_SECRET)
    session_id = await with_agent(servicer, principal=site, identity_token=token)
    assert (await servicer.sessions.get(session_id)).account_holder == {"customer_id": "c-ana", "source": "widget_token"}
    await chat(servicer, "where is my order L-104233?", session_id, principal=site)
    assert (await servicer.sessions.get(session_id)).account_holder is None
    drafts = await suggest(servicer, session_id)
    assert not drafts.HasField("proposed_action")
    assert all(s.answer_path != chat_pb2.ANSWER_PATH_ACTION for s in drafts.suggestions)
    assert all("L-104233" not in s.text for s in drafts.suggestions)
