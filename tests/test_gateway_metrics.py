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
from services.gateway.server import ChatServicer
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
    return ChatServicer(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), FakeRetriever(), FakeGenerator())


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
    servicer.turns.retriever.error = grpc.StatusCode.UNAVAILABLE
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
