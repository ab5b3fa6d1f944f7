"""The gateway's public API on the shared stack: auth and roles, handoff and agent assist,
feedback, the interaction log, restarts and failures of the services behind it."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest

from supportbot.client import SupportbotClient
from supportbot.v1 import chat_pb2, common_pb2
from tests.conftest import TEST_KEYS, client_as

pytestmark = pytest.mark.stack


async def rpc_error(coroutine) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await coroutine
    return error.value


async def test_keys_and_roles(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "") as anonymous:
        error = await rpc_error(anonymous.ask("hello"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "x-api-key" in error.details()
    async with SupportbotClient(stack.address("gateway"), api_key="sb_wrong") as stranger:
        assert (await rpc_error(stranger.ask("hello"))).code() == grpc.StatusCode.UNAUTHENTICATED
    async with client_as(stack, "customer") as alice, client_as(stack, "customer-b") as bob, client_as(stack, "agent-other") as other_agent:
        session_id, _, _ = await alice.ask("How do I reset my password?")
        request = chat_pb2.GetSessionRequest(session_id=session_id)
        assert (await alice.chat_stub.GetSession(request, metadata=alice.metadata)).session.customer_id == "cust-a"
        for intruder in (bob, other_agent):
            assert (await rpc_error(intruder.chat_stub.GetSession(request, metadata=intruder.metadata))).code() == grpc.StatusCode.PERMISSION_DENIED
        error = await rpc_error(bob.ask("and me?", session_id=session_id))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        error = await rpc_error(alice.chat_stub.ListSessions(chat_pb2.ListSessionsRequest(), metadata=alice.metadata))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "needs admin or agent" in error.details()
        # Customers reach the help center through the gateway only, in their collections.
        error = await rpc_error(alice.search("password"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "needs admin or agent or service" in error.details()
        error = await rpc_error(alice.stats())
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        error = await rpc_error(alice.ask("hello", collection="other-tenant-kb"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "other-tenant-kb" in error.details()
        # An agent searches its own collections only; the generator serves services and admins.
        assert (await rpc_error(other_agent.search("password"))).code() == grpc.StatusCode.PERMISSION_DENIED
        error = await rpc_error(other_agent.generator_info())
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "needs admin or service" in error.details()
        unchanged = (await alice.chat_stub.GetSession(request, metadata=alice.metadata)).session
        assert len(unchanged.turns) == 2


async def next_event(stream, kind: str, timeout: float = 30):  # type: ignore[no-untyped-def]
    async def find():  # type: ignore[no-untyped-def]
        async for event in stream:
            if event.WhichOneof("event") == kind:
                return event
    return await asyncio.wait_for(find(), timeout)


@pytest.fixture()
async def handed_off(stack, sample_ingested):  # type: ignore[no-untyped-def]
    """A conversation the customer handed to a person after one answered question:
    (customer client, agent client, session id)."""
    async with client_as(stack, "customer") as customer, client_as(stack, "agent") as agent:
        session_id, first, _ = await customer.ask("How long does a refund take to show up on my card?")
        assert first.grounded and not first.handoff
        _, asked, _ = await customer.ask("I want to talk to a person please", session_id=session_id)
        assert asked.handoff
        yield customer, agent, session_id


async def test_a_handed_off_conversation_waits_in_the_agent_queue(handed_off) -> None:  # type: ignore[no-untyped-def]
    _, agent, session_id = handed_off
    waiting = await agent.chat_stub.ListSessions(
        chat_pb2.ListSessionsRequest(statuses=[chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT]), metadata=agent.metadata
    )
    listed = next(s for s in waiting.sessions if s.session_id == session_id)
    assert listed.handoff_reason == "customer asked for a person"


async def test_watchers_see_the_take_over_the_quiet_bot_and_the_agent_reply(handed_off) -> None:  # type: ignore[no-untyped-def]
    customer, agent, session_id = handed_off
    watch = agent.chat_stub.WatchSession(chat_pb2.WatchSessionRequest(session_id=session_id), metadata=agent.metadata)
    assert (await next_event(watch, "status")).status == chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT
    taken = await agent.chat_stub.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=session_id), metadata=agent.metadata)
    assert taken.session.status == chat_pb2.SESSION_STATUS_WITH_AGENT and taken.session.assigned_agent == "agent smith"
    assert (await next_event(watch, "status")).status == chat_pb2.SESSION_STATUS_WITH_AGENT
    # While a person handles the session the bot stays quiet.
    _, quiet, _ = await customer.ask("hello?", session_id=session_id)
    assert quiet.handoff and quiet.answer == "" and quiet.finish_reason == common_pb2.FINISH_REASON_NOT_GENERATED
    assert (await next_event(watch, "turn")).turn.content == "hello?"
    reply = await agent.chat_stub.SendAgentReply(
        chat_pb2.SendAgentReplyRequest(session_id=session_id, message="Hi, this is Sam. Let me look."), metadata=agent.metadata
    )
    seen = await next_event(watch, "turn")
    assert seen.turn.role == common_pb2.ROLE_AGENT and seen.turn.turn_id == reply.turn.turn_id
    watch.cancel()


async def test_agent_assist_drafts_and_summarizes_from_the_refund_article(handed_off) -> None:  # type: ignore[no-untyped-def]
    _, agent, session_id = handed_off
    summary = await agent.chat_stub.SummarizeSession(chat_pb2.SummarizeSessionRequest(session_id=session_id), metadata=agent.metadata)
    assert summary.summary
    suggestions = await agent.chat_stub.SuggestReplies(
        chat_pb2.SuggestRepliesRequest(session_id=session_id, count=2), metadata=agent.metadata
    )
    assert 1 <= len(suggestions.suggestions) <= 2 and all(len(s.text) >= 20 for s in suggestions.suggestions)
    assert suggestions.sources and suggestions.sources[0].document_id == "returns/refund-timing"
    assert all(d.citations for d in suggestions.suggestions)


async def test_hand_back_then_close_ends_the_conversation(handed_off) -> None:  # type: ignore[no-untyped-def]
    customer, agent, session_id = handed_off
    back = await agent.chat_stub.HandBackSession(chat_pb2.HandBackSessionRequest(session_id=session_id), metadata=agent.metadata)
    assert back.session.status == chat_pb2.SESSION_STATUS_BOT
    closed = await agent.chat_stub.CloseSession(chat_pb2.CloseSessionRequest(session_id=session_id), metadata=agent.metadata)
    assert closed.session.status == chat_pb2.SESSION_STATUS_CLOSED
    error = await rpc_error(customer.ask("one more thing", session_id=session_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [t.role for t in closed.session.turns].count(common_pb2.ROLE_CUSTOMER) == 2


async def test_thumbs_down_hands_off_and_a_bad_rating_is_refused(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "customer") as customer:
        session_id, result, _ = await customer.ask("How do I change my email address?")
        feedback = await customer.chat_stub.SubmitFeedback(
            chat_pb2.SubmitFeedbackRequest(session_id=session_id, turn_id=result.turn_id, rating=-1), metadata=customer.metadata
        )
        assert feedback.handoff
        error = await rpc_error(customer.chat_stub.SubmitFeedback(
            chat_pb2.SubmitFeedbackRequest(session_id=session_id, turn_id=result.turn_id, rating=5), metadata=customer.metadata
        ))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        session = (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer.metadata)).session
        assert session.turns[-1].feedback == -1 and session.status == chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT


async def test_the_interaction_log_holds_each_turn_and_rating_redacted(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "customer") as customer:
        session_id, result, _ = await customer.ask("My email is jane.doe@example.com, how do I change it?")
        await customer.chat_stub.SubmitFeedback(
            chat_pb2.SubmitFeedbackRequest(session_id=session_id, turn_id=result.turn_id, rating=-1, comment="call me on +1 415 555 0199"),
            metadata=customer.metadata,
        )
    records: list[dict] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        records = [
            json.loads(line)
            for path in sorted((stack.data_dir / "interactions").glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        if any(r.get("kind") == "feedback" and r["turn_id"] == result.turn_id for r in records):
            break
        await asyncio.sleep(0.3)
    turn = next(r for r in records if r["kind"] == "turn" and r["turn_id"] == result.turn_id)
    assert "jane.doe" not in turn["question"] and "[email]" in turn["question"]
    assert turn["retrieved"][0]["document_id"] == "account/change-email" and turn["contexts"]
    assert set(turn["latencies_ms"]) == {"session", "rewrite", "retrieval", "first_token", "total"}
    # The log says which path produced the answer the customer got, and what verification kept.
    from services.gateway.convert import answer_path_name

    assert turn["answer_mode"] == "verified" and turn["answer_path"] == answer_path_name(result.answer_path)
    assert (turn["sentences_kept"], turn["sentences_dropped"]) == (result.sentences_kept, result.sentences_dropped)
    feedback_record = next(r for r in records if r["kind"] == "feedback" and r["turn_id"] == result.turn_id)
    assert feedback_record["rating"] == -1 and feedback_record["comment"] == "call me on [phone]"


async def test_two_turns_at_once_keep_the_session_whole(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "customer") as customer:
        created = await customer.chat_stub.CreateSession(chat_pb2.CreateSessionRequest(), metadata=customer.metadata)
        session_id = created.session.session_id
        await asyncio.gather(
            customer.ask("Do you ship to Germany?", session_id=session_id),
            customer.ask("How much is express shipping?", session_id=session_id),
        )
        session = (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer.metadata)).session
    roles = [t.role for t in session.turns]
    assert roles == [common_pb2.ROLE_CUSTOMER, common_pb2.ROLE_ASSISTANT] * 2


async def test_client_disconnect_mid_answer_keeps_the_session(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "customer") as customer:
        call = customer.chat_stub.Chat(
            chat_pb2.ChatRequest(message="What happens after I cancel Lumio Plus?"), metadata=customer.metadata
        )
        session_id = ""
        async for event in call:
            kind = event.WhichOneof("event")
            if kind == "session":
                session_id = event.session.session_id
            if kind == "delta":
                break
        call.cancel()
        for _ in range(50):
            session = (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer.metadata)).session
            if len(session.turns) == 2:
                break
            await asyncio.sleep(0.2)
    assert [t.role for t in session.turns] == [common_pb2.ROLE_CUSTOMER, common_pb2.ROLE_ASSISTANT]
    assert session.turns[1].content  # the part that was streamed before the customer left


async def test_sessions_survive_a_gateway_restart(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "customer") as customer:
        session_id, _, _ = await customer.ask("Where is my order?")
    stack.restart("gateway")
    async with client_as(stack, "customer") as customer:
        # This process's connection to the old gateway may still be in its reconnect backoff
        # (at most 2 s); calls fail fast until it reconnects.
        for attempt in range(10):
            try:
                same, result, _ = await customer.ask("it has not moved in a week", session_id=session_id)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 9:
                    raise
                await asyncio.sleep(0.5)
        session = (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer.metadata)).session
    assert same == session_id and len(session.turns) == 4
    assert result.rewritten_question.startswith("Where is my order?")


async def test_bad_agent_input(stack) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack, "agent") as agent:
        created = await agent.chat_stub.CreateSession(chat_pb2.CreateSessionRequest(), metadata=agent.metadata)
        session_id = created.session.session_id
        error = await rpc_error(agent.chat_stub.SendAgentReply(chat_pb2.SendAgentReplyRequest(session_id=session_id, message=" "), metadata=agent.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        error = await rpc_error(agent.chat_stub.SuggestReplies(chat_pb2.SuggestRepliesRequest(session_id=session_id, count=9), metadata=agent.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        error = await rpc_error(agent.chat_stub.SummarizeSession(chat_pb2.SummarizeSessionRequest(session_id=session_id), metadata=agent.metadata))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        error = await rpc_error(agent.chat_stub.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id="s_" + "z" * 30), metadata=agent.metadata))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        error = await rpc_error(agent.chat_stub.ListSessions(chat_pb2.ListSessionsRequest(page_size=-1), metadata=agent.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_javascript_client_built_from_the_protos_alone(stack, sample_ingested, repo_root) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess

    example = repo_root / "examples" / "node-client"
    assert (example / "node_modules" / "@grpc" / "grpc-js").exists(), "`make install` installs the example's packages"
    env = {**os.environ, "SUPPORTBOT_GATEWAY_ADDRESS": stack.address("gateway"), "SUPPORTBOT_API_KEY": TEST_KEYS["customer"]["key"]}
    run = subprocess.run(["node", "chat.mjs", "Do you ship to Canada?"], cwd=example, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["grounded"] is True and summary["turn_id"].startswith("t_")


async def test_damaged_hub_handoff_is_acknowledged_and_drafts_cite_the_damaged_package_article(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    from supportbot.answers.compose import TEMPLATE_HOLE
    from supportbot.answers.repetition import is_degenerate

    async with client_as(stack, "customer") as customer, client_as(stack, "agent") as agent:
        session_id, result, sources = await customer.ask("My hub arrived with a cracked case, I want to talk to a person")
        # A short acknowledgement and the queue at once: no search, no generated answer.
        assert result.handoff and not result.grounded and sources == []
        assert result.answer_path == chat_pb2.ANSWER_PATH_FIXED_REPLY and "person" in result.answer
        suggestions = await agent.chat_stub.SuggestReplies(
            chat_pb2.SuggestRepliesRequest(session_id=session_id, count=3), metadata=agent.metadata
        )
        assert suggestions.suggestions
        for draft in suggestions.suggestions:
            assert draft.citations and draft.sources, draft.text
            assert not TEMPLATE_HOLE.search(draft.text) and not is_degenerate(draft.text)
            assert draft.answer_path in (chat_pb2.ANSWER_PATH_VERIFIED, chat_pb2.ANSWER_PATH_EXTRACTIVE)
        assert any(s.document_id == "shipping/damaged-package" for d in suggestions.suggestions for s in d.sources)
        summary = await agent.chat_stub.SummarizeSession(chat_pb2.SummarizeSessionRequest(session_id=session_id), metadata=agent.metadata)
        assert summary.summary and not is_degenerate(summary.summary)


async def test_the_answer_cache_never_serves_an_answer_from_a_changed_document(stack) -> None:  # type: ignore[no-untyped-def]
    """Real retriever, model and Redis: a repeated first question is answered from the cache;
    once its cited article is re-ingested with another figure, the next customer gets an answer
    from the new version (the old entry is gone), and that one is cached in turn."""
    from supportbot.v1 import retriever_pb2

    article = "# Loyalty points\n\nLoyalty points expire {months} months after you earn them. Points are shown in Account > Rewards.\n"

    async def publish(client: SupportbotClient, months: int) -> int:
        document = retriever_pb2.Document(document_id="loyalty-points", source_path="loyalty-points.md",
                                          content=article.format(months=months).encode())
        return [r async for r in client.ingest([document], collection="cache-kb")][0].version

    verified = {"collection": "cache-kb", "answer_mode": chat_pb2.ANSWER_MODE_VERIFIED}
    async with client_as(stack, "admin") as admin:
        assert await publish(admin, 12) == 1
        _, first, _ = await admin.ask("When do my loyalty points expire?", **verified)
        assert first.grounded and not first.cached and "12 months" in first.answer
        _, again, _ = await admin.ask("when do my loyalty points expire", **verified)
        assert again.cached and again.cached_from_turn_id == first.turn_id and again.answer == first.answer
        assert again.completion_tokens == 0

        assert await publish(admin, 6) == 2
        for _ in range(2):  # the next customers: never the 12-month answer
            _, after, sources = await admin.ask("When do my loyalty points expire?", **verified)
            assert "12 months" not in after.answer and "6 months" in after.answer
            assert {s.document_version for s in sources if s.document_id == "loyalty-points"} == {2}
        assert after.cached and after.cached_from_turn_id != first.turn_id
