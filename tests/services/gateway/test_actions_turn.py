"""Account actions in the gateway's chat turn (services/gateway/pipeline/act.py), through the Chat
RPC of a gateway built by `build_chat`, against the real demo shop on a temporary SQLite file, a
real Valkey for sessions and the interaction log, and a deterministic embedder for routing: the
customer's own order cited, a change confirmed before it runs, anonymous visitors told to sign
in, the pending action kept in the session, action runs in the interaction log, and a gateway
without actions exactly as before."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from redis.asyncio import Redis

from services.gateway.backends import Embeddings
from services.gateway.interaction_log import InteractionLog
from services.gateway.pipeline.act import Act
from services.gateway.server import ChatServicer, build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.retriever.server import MAX_EMBED_TEXTS, RetrieverServicer
from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.executor import ActionExecutor
from supportbot.actions.identity import IdentitySettings, issue_identity_token
from supportbot.actions.routing import ActionRouter, HashingEmbedder
from supportbot.actions.stage import ActionStage
from supportbot.actions.wiring import ActionSettings
from supportbot.core import auth
from supportbot.core.auth import Principal
from supportbot.core.errors import InvalidArgument, PermissionDenied
from supportbot.v1 import chat_pb2, generator_pb2, retriever_pb2
from tests.fakes import REFUNDS, FakeGenerator, FakeRetriever

SHOP_TOKEN = "turn-test-token-" + "t" * 24
IDENTITY_SECRET = "identity-secret-" + "i" * 32
STREAM = "test:actions-turn"
HELP = ["What is your return policy?", "How do I reset my Lumio bulb?", "Which payment methods do you accept?"]
ANA = Principal("ana-key", "customer", customer_id="c-ana")
WIDGET = Principal("widget", "publishable")


@pytest.fixture()
def shop(tmp_path) -> Iterator[ShopServer]:  # type: ignore[no-untyped-def]
    with ShopServer(ShopSettings(database=str(tmp_path / "shop.sqlite3"), port=0, service_token=SHOP_TOKEN)) as server:
        yield server


def act_stage(shop: ShopServer) -> Act:
    actions = load_actions(sample_actions_path())
    executor = ActionExecutor(load_actions(sample_actions_path(), base_url=shop.url),
                              environ={"SUPPORTBOT_SHOP_SERVICE_TOKEN": SHOP_TOKEN})
    routers = {language: ActionRouter(actions.actions, HashingEmbedder(), HELP, languages=[language], threshold=0.6, margin=0.05)
               for language in ("en", "ko")}
    return Act.of(ActionStage(actions, executor, routers), IdentitySettings(identity_secret=IDENTITY_SECRET))


def gateway(redis: Redis, tmp_path, act: Act | None, retriever: FakeRetriever | None = None) -> ChatServicer:  # type: ignore[no-untyped-def]
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="extractive")
    return build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, STREAM), retriever or FakeRetriever(),
                      FakeGenerator(), act=act)


def refunds_help_center() -> FakeRetriever:
    """A help center that finds the card refunds article, whatever is asked."""
    retriever = FakeRetriever()
    retriever.results = [REFUNDS]
    return retriever


@pytest.fixture()
def servicer(redis: Redis, tmp_path, shop: ShopServer) -> ChatServicer:  # type: ignore[no-untyped-def]
    return gateway(redis, tmp_path, act_stage(shop))


async def chat(servicer: ChatServicer, message: str, session_id: str = "", *, principal: Principal | None = ANA,
               identity_token: str = "") -> tuple[str, chat_pb2.ChatResult]:
    """One turn as the AuthInterceptor would run it: with the key's principal set."""
    found, result = session_id, None
    request = chat_pb2.ChatRequest(message=message, session_id=session_id, identity_token=identity_token)
    token = auth._principal.set(principal)
    try:
        async for response in servicer.Chat(request, None):
            if response.HasField("session"):
                found = response.session.session_id
            if response.HasField("result"):
                result = response.result
    finally:
        auth._principal.reset(token)
    assert result is not None
    return found, result


async def action_records(redis: Redis) -> list[dict]:
    entries = await redis.xrange(STREAM)
    return [json.loads(fields[b"record"]) for _, fields in entries if fields[b"kind"] == b"action"]


async def test_where_is_my_order_answers_from_the_customers_own_record_and_cites_it(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, result = await chat(servicer, "What's the status of order L-104233?")
    order = shop.store.order("c-ana", "L-104233")
    assert result.answer_path == chat_pb2.ANSWER_PATH_ACTION and result.grounded
    assert "[order L-104233]" in result.answer and order["status"] in result.answer
    assert result.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and result.action.action == "order_status"
    assert [r.marker for r in result.action.records] == ["[order L-104233]"]
    assert [c.title for c in result.citations] == ["[order L-104233]"]
    # Stored as the assistant's turn, with the record it rests on.
    stored = await servicer.sessions.get(session_id)
    assert stored.turns[-1].content == result.answer and stored.turns[-1].citations[0]["title"] == "[order L-104233]"
    [record] = await action_records(redis)
    assert (record["action"], record["outcome"], record["session_id"]) == ("order_status", "ok", session_id)
    assert record["turn_id"] == result.turn_id and record["identity_source"] == "customer_key"


async def test_a_change_asks_first_and_runs_only_on_yes_with_the_state_kept_in_the_session(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(servicer, "Cancel my Lumio Plus subscription")
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM and "S-2001" in proposal.answer
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "awaiting_confirmation"
    assert await action_records(redis) == []  # nothing ran
    _, done = await chat(servicer, "yes", session_id)
    assert done.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and "[subscription S-2001]" in done.answer
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
    [record] = await action_records(redis)
    assert record["action"] == "cancel_subscription" and record["changes"] and record["idempotency_key"]


async def test_a_yes_sent_from_two_tabs_at_once_changes_the_account_once(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    first, second = await asyncio.gather(chat(servicer, "yes", session_id), chat(servicer, "yes", session_id))
    # The turns of one session take turns (its lock): the second reads the state the first left,
    # a change confirmed already, and is told so.
    replies = sorted(((result.action.kind, result.answer) for _, result in (first, second)), key=lambda reply: reply[0])
    assert [kind for kind, _ in replies] == [chat_pb2.ACTION_REPLY_KIND_RESULT, chat_pb2.ACTION_REPLY_KIND_ERROR], replies
    assert "already confirmed" in replies[1][1]
    assert [record["action"] for record in await action_records(redis) if record["changes"]] == ["cancel_subscription"]
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "confirmed"


async def test_the_same_change_confirmed_in_two_conversations_at_once_runs_once_and_the_other_fails_honestly(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    one, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    other, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    replies = await asyncio.gather(chat(servicer, "yes", one), chat(servicer, "yes", other))
    kinds = sorted(result.action.kind for _, result in replies)
    assert kinds == [chat_pb2.ACTION_REPLY_KIND_RESULT, chat_pb2.ACTION_REPLY_KIND_ERROR], replies
    [failed] = [result for _, result in replies if result.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR]
    assert not failed.grounded and not failed.citations and "already cancelled" in failed.answer, failed.answer
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"


async def test_a_question_in_between_is_a_help_center_turn_and_the_proposal_waits(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await chat(servicer, "Cancel my Lumio Plus subscription")
    _, policy = await chat(servicer, "What is your return policy?", session_id)
    assert policy.answer_path != chat_pb2.ANSWER_PATH_ACTION and not policy.HasField("action")
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "suspended"
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"


async def test_a_missing_order_number_is_asked_with_the_customers_own_orders_as_options(servicer) -> None:  # type: ignore[no-untyped-def]
    session_id, question = await chat(servicer, "Where is my order?")
    assert question.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY and not question.grounded
    assert [o.value for o in question.action.options] == ["L-104240", "L-104233", "L-104198"]
    _, answer = await chat(servicer, "L-104240", session_id)
    assert answer.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and "[order L-104240]" in answer.answer
    assert (await servicer.sessions.get(session_id)).pending_action is None


async def test_anonymous_visitors_are_asked_to_sign_in_and_shown_no_ones_data(servicer, shop, redis) -> None:  # type: ignore[no-untyped-def]
    _, anonymous = await chat(servicer, "What's the status of order L-100001?", principal=WIDGET)
    assert anonymous.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR and "signed in" in anonymous.answer
    assert "L-100001" not in anonymous.answer and shop.store.order("c-ben", "L-100001")["tracking_number"] not in anonymous.answer
    assert not anonymous.citations and not anonymous.grounded


async def test_another_customers_order_reads_as_not_found(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    _, other = await chat(servicer, "What's the status of order L-100001?")
    assert other.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR and not other.citations
    assert shop.store.order("c-ben", "L-100001")["tracking_number"] not in other.answer


async def test_the_widgets_signed_token_names_the_customer_and_a_forged_one_is_refused(servicer) -> None:  # type: ignore[no-untyped-def]
    token = issue_identity_token("c-ana", IDENTITY_SECRET)
    session_id, signed = await chat(servicer, "What's the status of order L-104233?", principal=WIDGET, identity_token=token)
    assert "[order L-104233]" in signed.answer
    forged = issue_identity_token("c-ana", "another-secret-" + "x" * 32)
    with pytest.raises(PermissionDenied, match="signature"):
        await chat(servicer, "What's the status of order L-104233?", session_id, principal=WIDGET, identity_token=forged)
    # Refused before anything of the turn is stored: no customer message, no empty reply.
    assert len((await servicer.sessions.get(session_id)).turns) == 2


async def test_without_actions_configured_the_turn_is_a_help_center_turn(redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    plain = gateway(redis, tmp_path, None)
    assert "act" not in [step.stage.name for step in plain.turns.steps]
    session_id, result = await chat(plain, "What's the status of order L-104233?")
    assert result.answer_path != chat_pb2.ANSWER_PATH_ACTION and not result.HasField("action")
    assert "[order L-104233]" not in result.answer and await action_records(redis) == []
    assert (await plain.sessions.get(session_id)).pending_action is None


async def test_a_case_question_and_a_policy_question_in_one_message_are_answered_each_with_its_citation(
        redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    retriever = refunds_help_center()
    servicer = gateway(redis, tmp_path, act_stage(shop), retriever)
    session_id, result = await chat(servicer, "Has my order L-104240 shipped yet, and how long do card refunds take?")
    order = shop.store.order("c-ana", "L-104240")
    # The action's reply first, with its record; then the help center's answer to the other part,
    # searched as a question of its own.
    assert retriever.queries == ["how long do card refunds take?"]
    reply, _, policy = result.answer.partition("\n\n")
    assert "[order L-104233]" not in result.answer and "[order L-104240]" in reply and order["status"] in reply
    assert "Card refunds take 5-10 business days" in policy
    assert result.answer_path == chat_pb2.ANSWER_PATH_EXTRACTIVE and result.grounded
    assert result.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and [r.marker for r in result.action.records] == ["[order L-104240]"]
    # The articles numbered first, the record after them: no number stands for two things.
    articles = [c for c in result.citations if c.document_id == "refund-timing"]
    [record] = [c for c in result.citations if c.title == "[order L-104240]"]
    assert articles and record.index == max(c.index for c in articles) + 1
    assert sorted(c.index for c in result.citations) == list(range(1, len(result.citations) + 1))
    stored = (await servicer.sessions.get(session_id)).turns[-1]
    assert stored.content == result.answer and [c["title"] for c in stored.citations][-1] == "[order L-104240]"
    [run] = await action_records(redis)
    assert (run["action"], run["outcome"], run["turn_id"]) == ("order_status", "ok", result.turn_id)


async def test_a_change_with_a_policy_question_is_proposed_beside_the_answer_and_runs_only_on_yes(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(servicer, "cancel my Lumio Plus subscription — do I get a refund for this month?")
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM and proposal.action.action == "cancel_subscription"
    reply, _, policy = proposal.answer.partition("\n\n")
    assert "S-2001" in reply and policy and "S-2001" not in policy
    assert proposal.answer_path != chat_pb2.ANSWER_PATH_ACTION and proposal.rewritten_question == "do I get a refund for this month?"
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "awaiting_confirmation"
    _, done = await chat(servicer, "yes", session_id)
    assert done.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and "[subscription S-2001]" in done.answer
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled"


async def test_a_combined_message_while_a_change_waits_for_a_yes_is_split_and_sets_the_change_aside(servicer, shop) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(servicer, "Cancel my Lumio Plus subscription")
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM
    # Routed whole, this message is a help-center question (the policy part outweighs the order
    # part); as in a conversation where nothing waits, it is split: the order question asked, the
    # return policy answered as a question of its own.
    _, both = await chat(servicer, "Where is my order? Also, what is your return policy?", session_id)
    assert both.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY and both.action.action == "order_status"
    assert [o.value for o in both.action.options] == ["L-104240", "L-104233", "L-104198"]
    assert both.rewritten_question == "what is your return policy?" and both.answer.startswith("Which one do you mean: L-104240")
    # Another request replaced the change: a yes now changes nothing.
    assert (await servicer.sessions.get(session_id)).pending_action["action"] == "order_status"
    _, answered = await chat(servicer, "L-104233", session_id)
    assert answered.answer_path == chat_pb2.ANSWER_PATH_ACTION and "[order L-104233]" in answered.answer
    _, late = await chat(servicer, "yes", session_id)
    assert late.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active"


async def test_a_combined_message_answering_the_clarifying_question_continues_it_and_answers_the_policy_part(
        redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    retriever = refunds_help_center()
    servicer = gateway(redis, tmp_path, act_stage(shop), retriever)
    session_id, question = await chat(servicer, "Where is my order?")
    assert question.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY
    _, result = await chat(servicer, "Has my order L-104240 shipped yet, and how long do card refunds take?", session_id)
    reply, _, policy = result.answer.partition("\n\n")
    assert result.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and [r.marker for r in result.action.records] == ["[order L-104240]"]
    assert shop.store.order("c-ana", "L-104240")["status"] in reply and "Card refunds take 5-10 business days" in policy
    assert retriever.queries[-1] == "how long do card refunds take?"
    assert (await servicer.sessions.get(session_id)).pending_action is None


async def test_the_policy_part_is_generated_for_as_its_own_question_and_never_from_the_answer_cache(redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    generator = FakeGenerator()
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="verified")
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, STREAM), FakeRetriever(), generator,
                          act=act_stage(shop))
    message = "where is my order and can I still return it?"
    session_id, first = await chat(servicer, message)
    assert first.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY
    assert [o.value for o in first.action.options] == ["L-104240", "L-104233", "L-104198"]
    assert [r.question for r in generator.requests] == ["can I still return it?"]
    assert first.answer.startswith("Which one do you mean: L-104240") and first.answer_path == chat_pb2.ANSWER_PATH_VERIFIED
    # The same message in a new conversation is answered again, not replayed from the cache.
    _, again = await chat(servicer, message)
    assert not again.cached_from_turn_id and len(generator.requests) == 2
    _, answered = await chat(servicer, "L-104233", session_id)
    assert answered.answer_path == chat_pb2.ANSWER_PATH_ACTION and "[order L-104233]" in answered.answer


def test_act_is_not_built_without_an_actions_file() -> None:
    assert Act.configured(ActionSettings(file=None), IdentitySettings(), Embeddings(InProcessRetriever(), 5.0)) is None


class HashingModel:
    """A retriever 'model' without weights: the routing tests' hashing embedder."""

    model_name = "hashing-trigrams"

    def __init__(self) -> None:
        self.embed = HashingEmbedder()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.embed(texts)


class HashingKnowledgeBase:
    """What the retriever's Embed RPC reads of its knowledge base: the primary and the
    multilingual model."""

    def __init__(self) -> None:
        self.dense, self.companion = HashingModel(), HashingModel()

    def multilingual(self) -> HashingModel:
        return self.companion


class InProcessRetriever:
    """The retriever's real servicer, called as the gateway's stub would call it; `fail` makes
    every call fail as an unreachable retriever does."""

    def __init__(self) -> None:
        self.servicer = RetrieverServicer(HashingKnowledgeBase())  # type: ignore[arg-type]
        self.calls: list[tuple[int, int]] = []
        self.fail = False

    async def Embed(self, request: retriever_pb2.EmbedRequest, timeout: float) -> retriever_pb2.EmbedResponse:  # noqa: N802
        if self.fail:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
        self.calls.append((len(request.texts), request.embedder))
        return await self.servicer.Embed(request, None)


async def test_routing_embeds_with_the_retrievers_models_over_its_embed_rpc(redis, tmp_path, shop, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SUPPORTBOT_SHOP_SERVICE_TOKEN", SHOP_TOKEN)
    retriever = InProcessRetriever()
    act = Act.configured(ActionSettings(file=sample_actions_path(), base_url=shop.url), IdentitySettings(),
                         Embeddings(retriever, 5.0))
    assert act is not None and retriever.calls == []  # built at the first turn, not at start
    servicer = gateway(redis, tmp_path, act)
    _, result = await chat(servicer, "What's the status of order L-104233?")
    assert "[order L-104233]" in result.answer and result.action.action == "order_status"
    # The examples embedded in batches when the routers were built (both models), then the one message.
    examples, message = retriever.calls[:-1], retriever.calls[-1]
    assert {which for _, which in examples} == {retriever_pb2.EMBEDDER_PRIMARY, retriever_pb2.EMBEDDER_MULTILINGUAL}
    assert all(count > 1 for count, _ in examples) and message == (1, retriever_pb2.EMBEDDER_PRIMARY)


async def test_an_unreachable_retriever_leaves_the_turn_to_the_help_center_and_the_pending_action_as_it_was(redis, tmp_path, shop, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SUPPORTBOT_SHOP_SERVICE_TOKEN", SHOP_TOKEN)
    retriever = InProcessRetriever()
    act = Act.configured(ActionSettings(file=sample_actions_path(), base_url=shop.url), IdentitySettings(),
                         Embeddings(retriever, 5.0))
    servicer = gateway(redis, tmp_path, act)
    session_id, proposal = await chat(servicer, "Cancel my Lumio Plus subscription")
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM
    retriever.fail = True
    _, later = await chat(servicer, "yes", session_id)
    assert later.answer_path != chat_pb2.ANSWER_PATH_ACTION and shop.store.subscriptions("c-ana")[0]["status"] == "active"
    assert (await servicer.sessions.get(session_id)).pending_action["status"] == "awaiting_confirmation"


async def test_the_embed_rpc_refuses_more_texts_than_it_takes() -> None:
    with pytest.raises(InvalidArgument):
        await RetrieverServicer(HashingKnowledgeBase()).Embed(  # type: ignore[arg-type]
            retriever_pb2.EmbedRequest(texts=["x"] * (MAX_EMBED_TEXTS + 1)), None)


class RecordingGeneratorStub:
    """GeneratorService.Generate as the gateway's stub streams it, recording the requests."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.requests: list[Any] = []
        self.timeouts: list[float] = []

    def Generate(self, request: Any, timeout: float):  # type: ignore[no-untyped-def]  # noqa: N802
        self.requests.append(request)
        self.timeouts.append(timeout)

        async def stream():  # type: ignore[no-untyped-def]
            yield generator_pb2.GenerateResponse(result=generator_pb2.GenerateResult(text=self.text))

        return stream()


@pytest.mark.parametrize("on", [True, False])
async def test_the_gateway_hands_the_generator_to_slot_filling_only_when_the_setting_is_on(shop, monkeypatch, on: bool) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SUPPORTBOT_SHOP_SERVICE_TOKEN", SHOP_TOKEN)
    stub = RecordingGeneratorStub(json.dumps({"address": "22 Station Road, York YO1 7AA"}))
    settings = ActionSettings(file=sample_actions_path(), base_url=shop.url, generator_slot_filling=on, generator_slot_timeout_s=3.0)
    act = Act.configured(settings, IdentitySettings(), Embeddings(InProcessRetriever(), 5.0), stub)
    assert act is not None
    stage = await act.stage()
    assert (stage.generate is not None) is on
    if on:
        assert stage.generate is not None
        text = await stage.generate(generator_pb2.GenerateRequest(max_tokens=4))
        assert text == json.dumps({"address": "22 Station Road, York YO1 7AA"}) and stub.timeouts == [3.0]
    await stage.executor.aclose()


def test_slot_filling_by_the_generator_is_off_by_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SUPPORTBOT_ACTIONS_GENERATOR_SLOT_FILLING", raising=False)
    assert ActionSettings().generator_slot_filling is False
    monkeypatch.setenv("SUPPORTBOT_ACTIONS_GENERATOR_SLOT_FILLING", "true")
    assert ActionSettings().generator_slot_filling is True


async def test_in_generative_mode_the_case_part_is_the_actions_and_the_policy_part_the_models(redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    generator = FakeGenerator()
    generator.text = "Returns are accepted within 30 days of delivery [1]."
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="generative")
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, STREAM), refunds_help_center(), generator,
                          act=act_stage(shop))
    _, result = await chat(servicer, "Has my order L-104240 shipped yet, and how long do card refunds take?")
    reply, _, policy = result.answer.partition("\n\n")
    # The record's status comes from the shop, never from the model; the model answers only the
    # policy part, asked as a question of its own.
    assert shop.store.order("c-ana", "L-104240")["status"] in reply and "[order L-104240]" in reply
    assert [r.question for r in generator.requests] == ["how long do card refunds take?"]
    assert policy.startswith("Returns are accepted within 30 days") and result.answer_path == chat_pb2.ANSWER_PATH_GENERATED
    record = next(c for c in result.citations if c.title == "[order L-104240]")
    assert record.index == max(c.index for c in result.citations)
