"""ChatService: one chat turn = session, rewrite, retrieval, generation (streamed), save, log."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.assist import (
    SUGGESTION_MAX_TOKENS,
    SUGGESTION_SCHEMA,
    parse_suggestion,
    suggestion_temperatures,
    summary_messages,
    summary_transcript,
)
from services.gateway.interaction_log import InteractionLog, JsonlExporter
from services.gateway.redaction import redact
from services.gateway.redis_connection import connect_redis
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
from services.generator.prompting import parse_citations
from supportbot.core.auth import API_KEY_METADATA_KEY, AuthInterceptor, KeyRing, current_principal
from supportbot.core.channels import create_channel
from supportbot.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unavailable,
    require_text,
)
from supportbot.core.server import GrpcService
from supportbot.core.telemetry import tracer
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
TRACER = tracer(__name__)

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


# Which roles may call each method; the rest are open to every role (with per-session checks).
METHOD_ROLES = {
    "ListSessions": ("agent", "admin"),
    "TakeOverSession": ("agent", "admin"),
    "HandBackSession": ("agent", "admin"),
    "SendAgentReply": ("agent", "admin"),
    "SuggestReplies": ("agent", "admin"),
    "SummarizeSession": ("agent", "admin"),
}


def _event(**fields: Any) -> bytes:
    return chat_pb2.WatchSessionResponse(**fields).SerializeToString()


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(
        self,
        settings: GatewaySettings,
        sessions: SessionStore,
        interactions: InteractionLog,
        retriever: retriever_pb2_grpc.RetrieverServiceStub,
        generator: generator_pb2_grpc.GeneratorServiceStub,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.interactions = interactions
        self.retriever = retriever
        self.generator = generator

    # -- access -----------------------------------------------------------------------------
    @staticmethod
    def authorize(session: SessionRecord) -> SessionRecord:
        principal = current_principal()
        if principal is not None and not principal.can_see(session.collection, session.customer_id):
            raise PermissionDenied(f"this key may not access session {session.session_id}")
        return session

    async def load(self, session_id: str) -> SessionRecord:
        return self.authorize(await self.sessions.get(session_id))

    def history(self, session: SessionRecord) -> list[common_pb2.ConversationMessage]:
        """The conversation the model sees: the latest messages, without system notes."""
        if not self.settings.history_messages:
            return []
        return [
            common_pb2.ConversationMessage(role=_ROLE_TO_PB[t.role], content=t.content)
            for t in session.turns[-self.settings.history_messages :]
            if t.role in {"customer", "assistant", "agent"} and t.content
        ]

    def _check_message(self, message: str) -> str:
        return require_text(message, field="message", limit=self.settings.max_message_chars, hint="type a question")

    # -- the chat turn ----------------------------------------------------------------------
    async def Chat(self, request, context):  # noqa: N802 (gRPC method name)
        started = time.perf_counter()
        try:
            message = self._check_message(request.message)
            if request.session_id:
                session = await self.load(request.session_id)
                if session.status == STATUS_CLOSED:
                    raise FailedPrecondition(f"session {session.session_id} is closed: start a new one")
            else:
                principal = current_principal()
                session = await self.sessions.create(
                    collection=request.collection or self.settings.default_collection,
                    channel=request.channel or "api",
                    customer_id=principal.customer_id if principal and principal.role == "customer" else "",
                )
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        turn_id = new_turn_id()
        yield chat_pb2.ChatResponse(session=chat_pb2.SessionInfo(session_id=session.session_id, turn_id=turn_id))

        async with self.sessions.locked(session.session_id) as session:
            session_ms = (time.perf_counter() - started) * 1000
            history = self.history(session)
            rewrite_started = time.perf_counter()
            rewritten = standalone_question(message, session)
            rewrite_ms = (time.perf_counter() - rewrite_started) * 1000
            customer_turn = TurnRecord(new_turn_id(), "customer", message, time.time())
            session.turns.append(customer_turn)
            await self.sessions.publish(session.session_id, _event(turn=turn_message(customer_turn)))

            if session.status in {STATUS_WAITING, STATUS_WITH_AGENT}:
                # A person is handling this conversation: the bot stays quiet.
                yield chat_pb2.ChatResponse(
                    result=chat_pb2.ChatResult(
                        turn_id=turn_id,
                        finish_reason=common_pb2.FINISH_REASON_NOT_GENERATED,
                        latencies=chat_pb2.StageLatencies(session_ms=session_ms, total_ms=(time.perf_counter() - started) * 1000),
                        handoff=True,
                    )
                )
                return

            turn = _TurnState()
            try:
                async for response in self._answer(session, message, rewritten, history, turn_id, started, turn, context):
                    yield response
            finally:
                # Also when the customer goes away mid-answer: what was said stays in the session.
                await self._finish_turn(session, turn_id, message, rewritten, session_ms, rewrite_ms, started, turn)
            yield chat_pb2.ChatResponse(result=turn.result)

    async def _answer(self, session, message, rewritten, history, turn_id, started, turn, context):  # type: ignore[no-untyped-def]
        retrieval_started = time.perf_counter()
        retrieval_failed = False
        try:
            with TRACER.start_as_current_span("retrieval"):
                response = await self.retriever.Search(
                    retriever_pb2.SearchRequest(query=rewritten, collection=session.collection, top_k=self.settings.top_k),
                    timeout=self.settings.retrieval_timeout_s,
                )
            turn.sources = list(response.results)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                await context.abort(exc.code(), exc.details())
            retrieval_failed = exc.code() != grpc.StatusCode.NOT_FOUND
            log.warning("retrieval failed", extra={"code": exc.code().name, "details": exc.details()})
        turn.retrieval_ms = (time.perf_counter() - retrieval_started) * 1000
        yield chat_pb2.ChatResponse(sources=chat_pb2.SourcesRetrieved(sources=turn.sources, rewritten_question=rewritten))

        if retrieval_failed or not turn.sources:
            turn.answer = self.settings.unavailable_answer if retrieval_failed else self.settings.ungrounded_answer
            yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=turn.answer))
            return
        parts: list[str] = []
        generation = TRACER.start_span("generation")
        try:
            stream = self.generator.Generate(
                generator_pb2.GenerateRequest(
                    question=message, sources=turn.sources, history=history,
                    max_tokens=self.settings.max_answer_tokens, request_id=turn_id,
                ),
                timeout=self.settings.generation_timeout_s,
            )
            async for event in stream:
                if event.HasField("delta"):
                    if not turn.first_token_ms:
                        turn.first_token_ms = (time.perf_counter() - started) * 1000
                    parts.append(event.delta.text)
                    turn.answer = "".join(parts)
                    yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=event.delta.text))
                else:
                    turn.answer = event.result.text.strip()
                    turn.citations = list(event.result.citations)
                    turn.finish = event.result.finish_reason
                    turn.completion_tokens = event.result.completion_tokens
                    turn.grounded = True
        except grpc.aio.AioRpcError as exc:
            log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
            if not parts:
                turn.answer = self.settings.unavailable_answer
                yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=turn.answer))
        finally:
            generation.set_attribute("supportbot.completion_tokens", turn.completion_tokens)
            generation.end()

    async def _finish_turn(self, session, turn_id, message, rewritten, session_ms, rewrite_ms, started, turn):  # type: ignore[no-untyped-def]
        if not turn.grounded and turn.finish == common_pb2.FINISH_REASON_NOT_GENERATED and turn.answer and turn.first_token_ms:
            turn.finish = common_pb2.FINISH_REASON_ABORTED  # cut short while streaming
        session.ungrounded_streak = 0 if turn.grounded else session.ungrounded_streak + 1
        handoff = False
        if _ASKS_FOR_PERSON.search(message):
            handoff, session.handoff_reason = True, "customer asked for a person"
        elif session.ungrounded_streak >= 2:
            handoff, session.handoff_reason = True, "the bot could not answer twice in a row"
        assistant_turn = TurnRecord(
            turn_id, "assistant", turn.answer, time.time(),
            citations=[_citation_dict(c) for c in turn.citations], grounded=turn.grounded,
        )
        session.turns.append(assistant_turn)
        if handoff:
            session.status = STATUS_WAITING
        latencies = chat_pb2.StageLatencies(
            session_ms=session_ms, rewrite_ms=rewrite_ms, retrieval_ms=turn.retrieval_ms,
            first_token_ms=turn.first_token_ms, total_ms=(time.perf_counter() - started) * 1000,
        )
        turn.result = chat_pb2.ChatResult(
            turn_id=turn_id, answer=turn.answer, citations=turn.citations, finish_reason=turn.finish,
            latencies=latencies, handoff=handoff, grounded=turn.grounded,
            completion_tokens=turn.completion_tokens, rewritten_question=rewritten,
        )
        await self.sessions.publish(session.session_id, _event(turn=turn_message(assistant_turn)))
        if handoff:
            await self.sessions.publish(session.session_id, _event(status=_STATUS_TO_PB[STATUS_WAITING]))
        await self.interactions.append("turn", {
            "turn_id": turn_id,
            "session_id": session.session_id,
            "timestamp": time.time(),
            "collection": session.collection,
            "channel": session.channel,
            "question": redact(message),
            "rewritten_question": redact(rewritten),
            "retrieved": [
                {"chunk_id": s.chunk_id, "document_id": s.document_id, "score": s.score, "dense_score": s.dense_score}
                for s in turn.sources
            ],
            "contexts": [s.text for s in turn.sources],
            "answer": redact(turn.answer),
            "citations": [_citation_dict(c) for c in turn.citations],
            "finish_reason": common_pb2.FinishReason.Name(turn.finish),
            "completion_tokens": turn.completion_tokens,
            "latencies_ms": {
                "session": latencies.session_ms, "rewrite": latencies.rewrite_ms,
                "retrieval": latencies.retrieval_ms, "first_token": latencies.first_token_ms,
                "total": latencies.total_ms,
            },
            "grounded": turn.grounded,
            "handoff": handoff,
        })

    # -- sessions ---------------------------------------------------------------------------
    async def CreateSession(self, request, context):  # noqa: N802
        principal = current_principal()
        customer_id = request.customer_id
        if principal is not None and principal.role == "customer":
            customer_id = principal.customer_id
        session = await self.sessions.create(
            collection=request.collection or self.settings.default_collection,
            channel=request.channel or "api",
            customer_id=customer_id,
        )
        return chat_pb2.CreateSessionResponse(session=session_message(session))

    async def GetSession(self, request, context):  # noqa: N802
        try:
            session = await self.load(request.session_id)
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        return chat_pb2.GetSessionResponse(session=session_message(session))

    async def ListSessions(self, request, context):  # noqa: N802
        if not 0 <= request.page_size <= 1000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 1000")
        statuses = {_PB_TO_STATUS[s] for s in request.statuses if s in _PB_TO_STATUS} or {
            STATUS_BOT, STATUS_WAITING, STATUS_WITH_AGENT,
        }
        principal = current_principal()
        allowed = set(principal.collections) if principal and principal.collections else None
        if request.collection:
            if allowed is not None and request.collection not in allowed:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"this key may not see collection {request.collection!r}")
            allowed = {request.collection}
        sessions = await self.sessions.list(statuses, allowed, request.page_size or 100)
        return chat_pb2.ListSessionsResponse(sessions=[session_message(s) for s in sessions])

    async def _change(self, session_id: str, context: Any, change) -> SessionRecord:  # type: ignore[no-untyped-def]
        """Applies `change` to the session under its lock and tells watchers."""
        try:
            async with self.sessions.locked(session_id) as session:
                self.authorize(session)
                before = session.status
                event = change(session)
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        if event is not None:
            await self.sessions.publish(session_id, _event(turn=turn_message(event)))
        if session.status != before:
            await self.sessions.publish(session_id, _event(status=_STATUS_TO_PB[session.status]))
        return session

    async def CloseSession(self, request, context):  # noqa: N802
        def close(session: SessionRecord) -> None:
            session.status = STATUS_CLOSED

        return chat_pb2.CloseSessionResponse(session=session_message(await self._change(request.session_id, context, close)))

    async def RequestHandoff(self, request, context):  # noqa: N802
        def hand_off(session: SessionRecord) -> None:
            if session.status == STATUS_CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed")
            if session.status == STATUS_BOT:
                session.status = STATUS_WAITING
                session.handoff_reason = request.reason.strip()[:500] or "customer asked for a person"

        session = await self._change(request.session_id, context, hand_off)
        return chat_pb2.RequestHandoffResponse(session=session_message(session))

    async def SubmitFeedback(self, request, context):  # noqa: N802
        if request.rating not in (-1, 1):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rating must be -1 (thumbs down) or 1 (thumbs up)")
        if len(request.comment) > 2000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "comment is over the limit of 2000 characters")
        handoff = False

        def rate(session: SessionRecord) -> None:
            nonlocal handoff
            turn = session.turn(request.turn_id)
            if turn.role != "assistant":
                raise InvalidArgument("feedback is for the assistant's answers")
            turn.feedback = request.rating
            handoff = request.rating < 0 and session.status == STATUS_BOT
            if handoff:
                session.status, session.handoff_reason = STATUS_WAITING, "the customer marked an answer as unhelpful"

        await self._change(request.session_id, context, rate)
        await self.interactions.append("feedback", {
            "turn_id": request.turn_id, "session_id": request.session_id, "rating": request.rating,
            "comment": redact(request.comment), "timestamp": time.time(),
        })
        return chat_pb2.SubmitFeedbackResponse(handoff=handoff)

    # -- agent assist -----------------------------------------------------------------------
    async def WatchSession(self, request, context):  # noqa: N802
        try:
            session = await self.load(request.session_id)
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        async with self.sessions.subscribe(session.session_id) as events:
            # Subscribed first, then the current status: nothing falls between the two.
            current = await self.sessions.get(session.session_id)
            yield chat_pb2.WatchSessionResponse(status=_STATUS_TO_PB[current.status])
            async for raw in events:
                yield chat_pb2.WatchSessionResponse.FromString(raw)

    async def TakeOverSession(self, request, context):  # noqa: N802
        principal = current_principal()

        def take_over(session: SessionRecord) -> None:
            if session.status == STATUS_CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed")
            session.status = STATUS_WITH_AGENT
            session.assigned_agent = principal.name if principal else "agent"

        return chat_pb2.TakeOverSessionResponse(session=session_message(await self._change(request.session_id, context, take_over)))

    async def HandBackSession(self, request, context):  # noqa: N802
        def hand_back(session: SessionRecord) -> None:
            if session.status == STATUS_CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed")
            session.status, session.assigned_agent, session.ungrounded_streak = STATUS_BOT, "", 0

        return chat_pb2.HandBackSessionResponse(session=session_message(await self._change(request.session_id, context, hand_back)))

    async def SendAgentReply(self, request, context):  # noqa: N802
        try:
            message = require_text(request.message, field="message", limit=self.settings.max_message_chars, hint="type the reply")
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        principal = current_principal()
        reply = TurnRecord(new_turn_id(), "agent", message, time.time())

        def send(session: SessionRecord) -> TurnRecord:
            if session.status == STATUS_CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed")
            session.status = STATUS_WITH_AGENT
            session.assigned_agent = session.assigned_agent or (principal.name if principal else "agent")
            session.turns.append(reply)
            return reply

        await self._change(request.session_id, context, send)
        return chat_pb2.SendAgentReplyResponse(turn=turn_message(reply))

    async def _generate_text(self, request: generator_pb2.GenerateRequest) -> str:
        try:
            async for event in self.generator.Generate(request, timeout=self.settings.generation_timeout_s):
                if event.HasField("result"):
                    return event.result.text
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"the generator is not available right now ({exc.code().name}); try again") from exc
        raise Unavailable("the generator ended without an answer; try again")

    async def SuggestReplies(self, request, context):  # noqa: N802
        count = request.count or 3
        try:
            if not 1 <= count <= 5:
                raise InvalidArgument(f"count must be between 1 and 5, got {count}")
            session = await self.load(request.session_id)
            asked = [t.content for t in session.turns if t.role == "customer"]
            # "Can I talk to a person?" is no question for the help center: draft for the last real one.
            question = next((q for q in reversed(asked) if not _ASKS_FOR_PERSON.search(q)), asked[-1] if asked else "")
            if not question:
                raise FailedPrecondition("the customer has not written anything yet")
            sources: list[common_pb2.Source] = []
            try:
                response = await self.retriever.Search(
                    retriever_pb2.SearchRequest(query=standalone_question(question, session), collection=session.collection, top_k=3),
                    timeout=self.settings.retrieval_timeout_s,
                )
                sources = list(response.results)
            except grpc.aio.AioRpcError as exc:
                log.warning("retrieval for suggestions failed", extra={"code": exc.code().name})
            history = [m for m in self.history(session) if m.content != question]
            drafts = await asyncio.gather(*(
                self._generate_text(generator_pb2.GenerateRequest(
                    question=question, sources=sources, history=history, json_schema=SUGGESTION_SCHEMA,
                    temperature=temperature, max_tokens=SUGGESTION_MAX_TOKENS,
                ))
                for temperature in suggestion_temperatures(count)
            ))
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        replies = list(dict.fromkeys(r for r in map(parse_suggestion, drafts) if r))
        return chat_pb2.SuggestRepliesResponse(
            suggestions=[chat_pb2.SuggestedReply(text=r, citations=parse_citations(r, sources)) for r in replies],
            sources=sources,
        )

    async def SummarizeSession(self, request, context):  # noqa: N802
        try:
            session = await self.load(request.session_id)
            if not session.turns:
                raise FailedPrecondition("the conversation is empty")
            summary = await self._generate_text(
                generator_pb2.GenerateRequest(messages=summary_messages(session), max_tokens=160, repetition_penalty=1.1)
            )
        except ServiceError as exc:
            await context.abort(exc.code, exc.message)
        summary = summary.strip()
        # Logged with the conversation it condenses, so offline evaluation can score it.
        await self.interactions.append("summary", {
            "session_id": session.session_id, "timestamp": time.time(),
            "transcript": redact(summary_transcript(session)), "summary": redact(summary),
        })
        return chat_pb2.SummarizeSessionResponse(summary=summary)


class _TurnState:
    """What one chat turn has produced so far."""

    def __init__(self) -> None:
        self.sources: list[common_pb2.Source] = []
        self.answer = ""
        self.citations: list[common_pb2.Citation] = []
        self.finish = common_pb2.FINISH_REASON_NOT_GENERATED
        self.completion_tokens = 0
        self.grounded = False
        self.retrieval_ms = 0.0
        self.first_token_ms = 0.0
        self.result: chat_pb2.ChatResult | None = None


async def build_service(settings: GatewaySettings) -> GrpcService:
    redis = connect_redis(settings)
    roots = settings.backend_root_certificates.read_bytes() if settings.backend_root_certificates else None
    retriever_key = settings.resolved_retriever_api_key()
    retriever_channel = create_channel(
        settings.retriever_address,
        retry_services=["supportbot.v1.RetrieverService"],
        root_certificates=roots,
        metadata=((API_KEY_METADATA_KEY, retriever_key),) if retriever_key else (),
    )
    # A generation that failed before its first token (a replica went away) is safe to repeat.
    generator_channel = create_channel(
        settings.generator_address,
        retry_services=["supportbot.v1.GeneratorService"],
        root_certificates=roots,
    )
    interactions = InteractionLog(redis, settings.interaction_stream)
    servicer = ChatServicer(
        settings,
        SessionStore(redis, settings.session_ttl_s),
        interactions,
        retriever_pb2_grpc.RetrieverServiceStub(retriever_channel),
        generator_pb2_grpc.GeneratorServiceStub(generator_channel),
    )
    interceptors = []
    if settings.auth_enabled:
        keys_file = settings.resolved_api_keys_file()
        interceptors.append(AuthInterceptor(KeyRing.load(keys_file), METHOD_ROLES))
    stop_export = asyncio.Event()
    exporter = None
    if settings.export_interactions:
        exporter = asyncio.create_task(
            JsonlExporter(redis, settings.interaction_stream, settings.resolved_interaction_log_dir()).run(stop_export)
        )

    def register(server: grpc.aio.Server) -> list[str]:
        chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
        return [chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name]

    async def on_stop() -> None:
        stop_export.set()
        if exporter is not None:
            await exporter
        await retriever_channel.close()
        await generator_channel.close()
        await redis.aclose()

    return GrpcService("gateway", settings, register, on_stop, interceptors)
