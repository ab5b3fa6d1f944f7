"""The chat turn's stages (services/gateway/pipeline/): walked from the Chat RPC, a turn visits
each stage its route needs once, in the declared order, and the stage that records the turn
runs even when an earlier one failed."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc
import pytest
from redis.asyncio import Redis

from services.gateway.domain import TurnEvent
from services.gateway.interaction_log import InteractionLog
from services.gateway.pipeline.context import TurnContext
from services.gateway.pipeline.turns import Step
from services.gateway.server import ChatServicer, build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from supportbot.core.errors import InvalidArgument
from supportbot.v1 import chat_pb2
from tests.fakes import FakeGenerator, FakeRetriever


class Visits:
    """Wraps a stage so that each run of it is written down by the stage's name."""

    def __init__(self, step: Step, seen: list[str]) -> None:
        self.inner, self.seen = step.stage, seen
        self.name = step.stage.name

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        self.seen.append(self.name)
        async for event in self.inner.run(turn):
            yield event


@pytest.fixture()
def traced(redis: Redis, tmp_path) -> tuple[ChatServicer, FakeRetriever, list[str]]:  # type: ignore[no-untyped-def]
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="extractive")
    retriever = FakeRetriever()
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:pipeline"), retriever, FakeGenerator())
    seen: list[str] = []
    servicer.turns.steps = [Step(Visits(s, seen), s.runs_for, s.always) for s in servicer.turns.steps]
    return servicer, retriever, seen


async def chat(servicer: ChatServicer, message: str, session_id: str = "") -> tuple[str, chat_pb2.ChatResult]:
    result = None
    async for response in servicer.Chat(chat_pb2.ChatRequest(message=message, session_id=session_id), None):
        if response.HasField("session"):
            session_id = response.session.session_id
        if response.HasField("result"):
            result = response.result
    assert result is not None
    return session_id, result


async def test_a_bot_turn_visits_every_stage_once_in_order(traced) -> None:  # type: ignore[no-untyped-def]
    servicer, _, seen = traced
    _, result = await chat(servicer, "How do I reset my password?")
    assert result.grounded
    assert seen == ["open_session", "rewrite", "route", "retrieve", "reuse", "answer", "decide_handoff", "record"]


async def test_a_person_asked_for_skips_search_and_answer_but_is_recorded(traced) -> None:  # type: ignore[no-untyped-def]
    servicer, retriever, seen = traced
    session_id, result = await chat(servicer, "I want to talk to a real person")
    assert result.handoff and not retriever.queries
    assert seen == ["open_session", "rewrite", "route", "record"]
    seen.clear()
    # The conversation is a person's now: the bot stays quiet and records nothing of its own.
    _, quiet = await chat(servicer, "Hello?", session_id=session_id)
    assert quiet.handoff and not quiet.answer
    assert seen == ["open_session", "rewrite", "route"]


async def test_the_record_stage_runs_after_a_stage_fails(traced) -> None:  # type: ignore[no-untyped-def]
    servicer, retriever, seen = traced
    retriever.error = grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(InvalidArgument):
        await chat(servicer, "How do I reset my password?")
    assert seen == ["open_session", "rewrite", "route", "retrieve", "record"]
