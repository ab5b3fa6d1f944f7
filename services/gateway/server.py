"""ChatService: one chat turn = session, rewrite, retrieval, generation (streamed), save, log."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis

from services.gateway.redaction import redact
from services.gateway.sessions import (
    STATUS_BOT,
    STATUS_CLOSED,
    STATUS_WAITING,
    STATUS_WITH_AGENT,
    SessionRecord,
    SessionStore,
    TurnRecord,
    new_turn_id,
)
from services.gateway.settings import GatewaySettings
from supportbot.core.channels import create_channel
from supportbot.core.errors import FailedPrecondition, InvalidArgument, ServiceError
from supportbot.core.server import GrpcService
from supportbot.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    generator_pb2,
    generator_pb2_grpc,
    retriever_pb2,
    retriever_pb2_grpc,
)

log = logging.getLogger(__name__)

_STATUS_TO_PB = {
    STATUS_BOT: chat_pb2.SESSION_STATUS_BOT,
    STATUS_WAITING: chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT,
    STATUS_WITH_AGENT: chat_pb2.SESSION_STATUS_WITH_AGENT,
    STATUS_CLOSED: chat_pb2.SESSION_STATUS_CLOSED,
}
_PB_TO_STATUS = {v: k for k, v in _STATUS_TO_PB.items()}
_ROLE_TO_PB = {
    "customer": common_pb2.ROLE_CUSTOMER,
    "assistant": common_pb2.ROLE_ASSISTANT,
    "agent": common_pb2.ROLE_AGENT,
    "system": common_pb2.ROLE_SYSTEM,
}
_ASKS_FOR_PERSON = re.compile(
    r"\b(human|real person|a person|an agent|live agent|representative|talk to (someone|somebody))\b", re.I
)
_FOLLOW_UP = re.compile(r"\b(it|that|this|they|them|those|these|its|there)\b", re.I)


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def turn_message(turn: TurnRecord) -> chat_pb2.Turn:
    return chat_pb2.Turn(
        turn_id=turn.turn_id,
        role=_ROLE_TO_PB.get(turn.role, common_pb2.ROLE_UNSPECIFIED),
        content=turn.content,
        citations=[common_pb2.Citation(**c) for c in turn.citations],
        create_time=_timestamp(turn.created_at),
        grounded=turn.grounded,
        feedback=turn.feedback,
    )


def session_message(session: SessionRecord) -> chat_pb2.Session:
    return chat_pb2.Session(
        session_id=session.session_id,
        status=_STATUS_TO_PB[session.status],
        customer_id=session.customer_id,
        collection=session.collection,
        channel=session.channel,
        turns=[turn_message(t) for t in session.turns],
        create_time=_timestamp(session.created_at),
        update_time=_timestamp(session.updated_at),
        assigned_agent=session.assigned_agent,
        handoff_reason=session.handoff_reason,
    )


def standalone_question(question: str, session: SessionRecord) -> str:
    """A follow-up that leans on the conversation ("how long does that take?") is searched
    together with the customer's previous question."""
    previous = [t.content for t in session.turns if t.role == "customer"]
    if previous and (len(question.split()) <= 6 or _FOLLOW_UP.search(question)):
        return f"{previous[-1]} {question}"
    return question


def _citation_dict(citation: common_pb2.Citation) -> dict[str, Any]:
    return {
        "index": citation.index,
        "chunk_id": citation.chunk_id,
        "document_id": citation.document_id,
        "title": citation.title,
        "url": citation.url,
    }


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(
        self,
        settings: GatewaySettings,
        sessions: SessionStore,
        retriever: retriever_pb2_grpc.RetrieverServiceStub,
        generator: generator_pb2_grpc.GeneratorServiceStub,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.retriever = retriever
        self.generator = generator

    def _check_message(self, message: str) -> str:
        message = message.strip()
        if not message:
            raise InvalidArgument("message is empty: type a question")
        if len(message) > self.settings.max_message_chars:
            raise InvalidArgument(
                f"message is {len(message)} characters, over the limit of {self.settings.max_message_chars}"
            )
        return message

    async def Chat(self, request, context):  # noqa: N802 (gRPC method name)
        started = time.perf_counter()
        try:
            message = self._check_message(request.message)
            if request.session_id:
                session = await self.sessions.get(request.session_id)
                if session.status == STATUS_CLOSED:
                    raise FailedPrecondition(f"session {session.session_id} is closed: start a new one")
            else:
                session = await self.sessions.create(
                    collection=request.collection or self.settings.default_collection,
                    channel=request.channel or "api",
                )
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        turn_id = new_turn_id()
        yield chat_pb2.ChatResponse(session=chat_pb2.SessionInfo(session_id=session.session_id, turn_id=turn_id))

        async with self.sessions.locked(session.session_id) as session:
            session_ms = (time.perf_counter() - started) * 1000
            history = [
                common_pb2.ConversationMessage(role=_ROLE_TO_PB[t.role], content=t.content)
                for t in session.turns[-self.settings.history_messages :]
                if t.role in {"customer", "assistant", "agent"}
            ] if self.settings.history_messages else []
            rewrite_started = time.perf_counter()
            rewritten = standalone_question(message, session)
            rewrite_ms = (time.perf_counter() - rewrite_started) * 1000
            session.turns.append(TurnRecord(new_turn_id(), "customer", message, time.time()))

            if session.status in {STATUS_WAITING, STATUS_WITH_AGENT}:
                # A person is handling this conversation: the bot stays quiet.
                result = chat_pb2.ChatResult(
                    turn_id=turn_id,
                    finish_reason=common_pb2.FINISH_REASON_NOT_GENERATED,
                    latencies=chat_pb2.StageLatencies(session_ms=session_ms, total_ms=(time.perf_counter() - started) * 1000),
                    handoff=True,
                )
                yield chat_pb2.ChatResponse(result=result)
                return

            sources: list[common_pb2.Source] = []
            retrieval_started = time.perf_counter()
            retrieval_failed = False
            try:
                response = await self.retriever.Search(
                    retriever_pb2.SearchRequest(query=rewritten, collection=session.collection, top_k=self.settings.top_k),
                    timeout=self.settings.retrieval_timeout_s,
                )
                sources = list(response.results)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    await context.abort(exc.code(), exc.details())
                retrieval_failed = exc.code() != grpc.StatusCode.NOT_FOUND
                log.warning("retrieval failed", extra={"code": exc.code().name, "details": exc.details()})
            retrieval_ms = (time.perf_counter() - retrieval_started) * 1000
            yield chat_pb2.ChatResponse(sources=chat_pb2.SourcesRetrieved(sources=sources, rewritten_question=rewritten))

            answer, citations = "", []
            finish = common_pb2.FINISH_REASON_NOT_GENERATED
            first_token_ms = 0.0
            completion_tokens = 0
            grounded = False
            if retrieval_failed:
                answer = self.settings.unavailable_answer
            elif not sources:
                answer = self.settings.ungrounded_answer
            else:
                try:
                    stream = self.generator.Generate(
                        generator_pb2.GenerateRequest(
                            question=message,
                            sources=sources,
                            history=history,
                            max_tokens=self.settings.max_answer_tokens,
                            request_id=turn_id,
                        ),
                        timeout=self.settings.generation_timeout_s,
                    )
                    async for event in stream:
                        if event.HasField("delta"):
                            if not first_token_ms:
                                first_token_ms = (time.perf_counter() - started) * 1000
                            yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=event.delta.text))
                        elif event.HasField("result"):
                            answer = event.result.text.strip()
                            citations = list(event.result.citations)
                            finish = event.result.finish_reason
                            completion_tokens = event.result.completion_tokens
                            grounded = True
                except grpc.aio.AioRpcError as exc:
                    log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
                    answer = answer or self.settings.unavailable_answer
                    grounded = False
            if not grounded and answer:
                yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=answer))

            session.ungrounded_streak = 0 if grounded else session.ungrounded_streak + 1
            handoff = False
            if _ASKS_FOR_PERSON.search(message):
                handoff, session.handoff_reason = True, "customer asked for a person"
            elif session.ungrounded_streak >= 2:
                handoff, session.handoff_reason = True, "the bot could not answer twice in a row"
            if handoff:
                session.status = STATUS_WAITING
            session.turns.append(
                TurnRecord(
                    turn_id, "assistant", answer, time.time(),
                    citations=[_citation_dict(c) for c in citations], grounded=grounded,
                )
            )
            total_ms = (time.perf_counter() - started) * 1000
            latencies = chat_pb2.StageLatencies(
                session_ms=session_ms, rewrite_ms=rewrite_ms, retrieval_ms=retrieval_ms,
                first_token_ms=first_token_ms, total_ms=total_ms,
            )
            await self._log_interaction(
                session, turn_id, message, rewritten, sources, answer, citations, finish,
                completion_tokens, latencies, grounded, handoff,
            )
            yield chat_pb2.ChatResponse(
                result=chat_pb2.ChatResult(
                    turn_id=turn_id, answer=answer, citations=citations, finish_reason=finish,
                    latencies=latencies, handoff=handoff, grounded=grounded,
                    completion_tokens=completion_tokens, rewritten_question=rewritten,
                )
            )

    async def _log_interaction(
        self, session: SessionRecord, turn_id: str, question: str, rewritten: str,
        sources: list[common_pb2.Source], answer: str, citations: list[common_pb2.Citation],
        finish: int, completion_tokens: int, latencies: chat_pb2.StageLatencies, grounded: bool,
        handoff: bool,
    ) -> None:
        record = {
            "turn_id": turn_id,
            "session_id": session.session_id,
            "timestamp": time.time(),
            "collection": session.collection,
            "channel": session.channel,
            "question": redact(question),
            "rewritten_question": redact(rewritten),
            "retrieved": [
                {"chunk_id": s.chunk_id, "document_id": s.document_id, "score": s.score, "dense_score": s.dense_score}
                for s in sources
            ],
            "contexts": [s.text for s in sources],
            "answer": redact(answer),
            "citations": [_citation_dict(c) for c in citations],
            "finish_reason": common_pb2.FinishReason.Name(finish),
            "completion_tokens": completion_tokens,
            "latencies_ms": {
                "session": latencies.session_ms, "rewrite": latencies.rewrite_ms,
                "retrieval": latencies.retrieval_ms, "first_token": latencies.first_token_ms,
                "total": latencies.total_ms,
            },
            "grounded": grounded,
            "handoff": handoff,
        }
        await self.sessions.redis.xadd(self.settings.interaction_stream, {"record": json.dumps(record)})

    # -- sessions ---------------------------------------------------------------------------
    async def CreateSession(self, request, context):  # noqa: N802
        session = await self.sessions.create(
            collection=request.collection or self.settings.default_collection,
            channel=request.channel or "api",
            customer_id=request.customer_id,
        )
        return chat_pb2.CreateSessionResponse(session=session_message(session))

    async def GetSession(self, request, context):  # noqa: N802
        try:
            session = await self.sessions.get(request.session_id)
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        return chat_pb2.GetSessionResponse(session=session_message(session))

    async def ListSessions(self, request, context):  # noqa: N802
        statuses = {_PB_TO_STATUS[s] for s in request.statuses if s in _PB_TO_STATUS} or {
            STATUS_BOT, STATUS_WAITING, STATUS_WITH_AGENT,
        }
        if request.page_size < 0 or request.page_size > 1000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 1000")
        sessions = await self.sessions.list(statuses, request.collection, request.page_size or 100)
        return chat_pb2.ListSessionsResponse(sessions=[session_message(s) for s in sessions])

    async def _set_status(self, session_id: str, status: str, context: Any, reason: str = "") -> SessionRecord:
        try:
            async with self.sessions.locked(session_id) as session:
                session.status = status
                if reason:
                    session.handoff_reason = reason
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        return session

    async def CloseSession(self, request, context):  # noqa: N802
        session = await self._set_status(request.session_id, STATUS_CLOSED, context)
        return chat_pb2.CloseSessionResponse(session=session_message(session))

    async def RequestHandoff(self, request, context):  # noqa: N802
        session = await self._set_status(
            request.session_id, STATUS_WAITING, context, request.reason or "customer asked for a person"
        )
        return chat_pb2.RequestHandoffResponse(session=session_message(session))

    async def SubmitFeedback(self, request, context):  # noqa: N802
        if request.rating not in (-1, 1):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rating must be -1 (thumbs down) or 1 (thumbs up)")
        try:
            async with self.sessions.locked(request.session_id) as session:
                session.turn(request.turn_id).feedback = request.rating
                handoff = request.rating < 0 and session.status == STATUS_BOT
                if handoff:
                    session.status, session.handoff_reason = STATUS_WAITING, "the customer marked an answer as unhelpful"
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        await self.sessions.redis.xadd(
            self.settings.interaction_stream,
            {"feedback": json.dumps({
                "turn_id": request.turn_id, "session_id": request.session_id, "rating": request.rating,
                "comment": redact(request.comment), "timestamp": time.time(),
            })},
        )
        return chat_pb2.SubmitFeedbackResponse(handoff=handoff)


async def build_service(settings: GatewaySettings) -> GrpcService:
    redis = Redis.from_url(settings.redis_url)
    retriever_channel = create_channel(settings.retriever_address, retry_services=["supportbot.v1.RetrieverService"])
    generator_channel = create_channel(settings.generator_address)
    servicer = ChatServicer(
        settings,
        SessionStore(redis, settings.session_ttl_s),
        retriever_pb2_grpc.RetrieverServiceStub(retriever_channel),
        generator_pb2_grpc.GeneratorServiceStub(generator_channel),
    )

    def register(server: grpc.aio.Server) -> list[str]:
        chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
        return [chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name]

    async def on_stop() -> None:
        await retriever_channel.close()
        await generator_channel.close()
        await redis.aclose()

    return GrpcService("gateway", settings, register, on_stop)
