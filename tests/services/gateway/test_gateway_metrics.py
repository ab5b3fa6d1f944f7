"""The support metrics, counted by the real gateway servicer on scripted backends and a real
Valkey: each turn's outcome, latency histograms with request ids as exemplars, retrieval scores,
feedback, handoffs by reason, deflection, the agent queue, and bounded labels."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest
from redis.asyncio import Redis

from services.gateway.interaction_log import InteractionLog
from services.gateway.server import ChatServicer, build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from supportbot.core.logging import set_request_id
from supportbot.v1 import chat_pb2
from tests.fakes import FakeGenerator, FakeRetriever

KB = "metrics-kb"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture()
def servicer(redis: Redis, tmp_path) -> ChatServicer:  # type: ignore[no-untyped-def]
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="extractive")
    return build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), FakeRetriever(), FakeGenerator())


async def ask(servicer: ChatServicer, message: str, session_id: str = "") -> tuple[str, chat_pb2.ChatResult]:
    found = session_id
    result = None
    async for response in servicer.Chat(chat_pb2.ChatRequest(message=message, collection=KB, session_id=session_id), None):
        found = response.session.session_id or found
        if response.HasField("result"):
            result = response.result
    assert result is not None
    return found, result


async def test_turns_are_counted_by_outcome_with_latency_and_score(servicer) -> None:  # type: ignore[no-untyped-def]
    before = {
        "grounded": value("supportbot_chat_turns_total", collection=KB, outcome="grounded", answer_path="extractive"),
        "unavailable": value("supportbot_chat_turns_total", collection=KB, outcome="unavailable", answer_path="fixed_reply"),
        "first": value("supportbot_chat_time_to_first_token_seconds_count", collection=KB),
        "whole": value("supportbot_chat_turn_duration_seconds_count", collection=KB),
        "score": value("supportbot_retrieval_top_score_count", collection=KB),
    }
    set_request_id("req-metrics-exemplar")
    await ask(servicer, "How do I reset my password?")
    servicer.retrieve.retriever.stub.error = grpc.StatusCode.UNAVAILABLE
    await ask(servicer, "How do I reset my password?")
    assert value("supportbot_chat_turns_total", collection=KB, outcome="grounded", answer_path="extractive") == before["grounded"] + 1
    assert value("supportbot_chat_turns_total", collection=KB, outcome="unavailable", answer_path="fixed_reply") == before["unavailable"] + 1
    assert value("supportbot_chat_time_to_first_token_seconds_count", collection=KB) == before["first"] + 2
    assert value("supportbot_chat_turn_duration_seconds_count", collection=KB) == before["whole"] + 2
    assert value("supportbot_retrieval_top_score_count", collection=KB) == before["score"] + 1  # nothing retrieved the 2nd time
    # The request id rides along as an exemplar (OpenMetrics), to find the turn behind a slow bucket.
    assert 'request_id="req-metrics-exemplar"' in generate_latest(REGISTRY).decode()


async def test_handoffs_queue_wait_feedback_and_deflection(servicer) -> None:  # type: ignore[no-untyped-def]
    handed = value("supportbot_handoffs_total", collection=KB, reason="asked_for_person")
    thumbs = value("supportbot_handoffs_total", collection=KB, reason="thumbs_down")
    waited = value("supportbot_agent_queue_wait_seconds_count", collection=KB)
    down = value("supportbot_feedback_total", collection=KB, rating="down")
    deflected = value("supportbot_sessions_closed_total", collection=KB, deflected="true")
    with_person = value("supportbot_sessions_closed_total", collection=KB, deflected="false")

    person, result = await ask(servicer, "I want to talk to a person")
    assert result.handoff
    assert (await servicer.sessions.queue_stats())[0] >= 1
    await servicer.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=person), None)
    await servicer.CloseSession(chat_pb2.CloseSessionRequest(session_id=person), None)

    rated, answer = await ask(servicer, "How do I reset my password?")
    await servicer.SubmitFeedback(chat_pb2.SubmitFeedbackRequest(session_id=rated, turn_id=answer.turn_id, rating=-1), None)
    helped, _ = await ask(servicer, "How do I reset my password?")
    await servicer.CloseSession(chat_pb2.CloseSessionRequest(session_id=helped), None)

    assert value("supportbot_handoffs_total", collection=KB, reason="asked_for_person") == handed + 1
    assert value("supportbot_handoffs_total", collection=KB, reason="thumbs_down") == thumbs + 1
    assert value("supportbot_agent_queue_wait_seconds_count", collection=KB) == waited + 1
    assert value("supportbot_feedback_total", collection=KB, rating="down") == down + 1
    assert value("supportbot_sessions_closed_total", collection=KB, deflected="true") == deflected + 1
    assert value("supportbot_sessions_closed_total", collection=KB, deflected="false") == with_person + 1


async def test_labels_never_name_a_session_or_a_customer(servicer) -> None:  # type: ignore[no-untyped-def]
    session_id, _ = await ask(servicer, "How do I reset my password?")
    for family in REGISTRY.collect():
        if not family.name.startswith("supportbot_"):
            continue
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                assert label not in {"session", "session_id", "customer", "customer_id"}, family.name
                assert not label_value.startswith(("s_", "t_")), (family.name, label_value)


async def test_agent_replies_are_measured_against_the_drafts_and_exported(servicer, redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from services.gateway.interaction_log import JsonlExporter
    from supportbot.evaluation.export import golden_candidates, write_candidates
    from supportbot.evaluation.records import load_golden

    accepted = value("supportbot_agent_replies_total", collection=KB, outcome="accepted")
    edited = value("supportbot_agent_replies_total", collection=KB, outcome="edited")
    draft = "Tap Forgot password? on the sign-in screen and follow the link we send."

    # A draft sent as is; a question rated down, then answered by an edited draft; a gap.
    first, _ = await ask(servicer, "How can I get into my account without my password?")
    await servicer.RequestHandoff(chat_pb2.RequestHandoffRequest(session_id=first), None)
    reply = await servicer.SendAgentReply(chat_pb2.SendAgentReplyRequest(
        session_id=first, message=draft, suggestion=draft, suggestions_shown=True), None)
    assert reply.suggestion_outcome == "accepted"
    second, answer = await ask(servicer, "Why is my refund so slow?")
    await servicer.SubmitFeedback(chat_pb2.SubmitFeedbackRequest(session_id=second, turn_id=answer.turn_id, rating=-1), None)
    edited_reply = await servicer.SendAgentReply(chat_pb2.SendAgentReplyRequest(
        session_id=second, message="Card refunds take 5-10 business days after we approve them.",
        suggestion="Card refunds take 5-10 business days after approval.", suggestions_shown=True), None)
    assert edited_reply.suggestion_outcome == "edited"
    typed = await servicer.SendAgentReply(chat_pb2.SendAgentReplyRequest(session_id=second, message="Anything else?"), None)
    assert typed.suggestion_outcome == "typed"
    await ask(servicer, "I need a real person about my warranty claim")

    assert value("supportbot_agent_replies_total", collection=KB, outcome="accepted") == accepted + 1
    assert value("supportbot_agent_replies_total", collection=KB, outcome="edited") == edited + 1
    logs = tmp_path / "interactions"
    logs.mkdir()
    await JsonlExporter(redis, "test:turns", logs).export_once("0-0")
    candidates = {item["source"]: item for item in golden_candidates([logs])}
    assert candidates["agent_accepted"]["question"] == "How can I get into my account without my password?"
    assert candidates["agent_accepted"]["reference_answer"] == draft
    # Rated down, then answered by an edited draft: one item, both reasons.
    assert candidates["agent_edited"]["reference_answer"] == "Card refunds take 5-10 business days after we approve them."
    assert candidates["agent_edited"]["also"] == ["thumbs_down"] and candidates["agent_edited"]["bot_answer"]
    assert candidates["handoff"]["question"] == "I need a real person about my warranty claim"
    assert not candidates["handoff"]["answerable"]
    write_candidates(list(candidates.values()), tmp_path / "candidates.jsonl")
    assert {item.question for item in load_golden(tmp_path / "candidates.jsonl")} == {c["question"] for c in candidates.values()}
