"""ChatService: thin RPC methods over the chat turn (`turn.py`), the session changes and agent
assist (`assist.py`). Handlers raise `ServiceError`s; the server maps them to statuses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import aclosing

import grpc
from redis.exceptions import RedisError

from services.gateway import handoff, metrics, webhooks
from services.gateway.answer_cache import AnswerCache
from services.gateway.answering import AnswerComposer
from services.gateway.assist import Assistant, conversation_language, transcript
from services.gateway.convert import (
    answer_path_name,
    session_message,
    status_event,
    turn_event,
    turn_message,
)
from services.gateway.interaction_log import InteractionLog, JsonlExporter
from services.gateway.redaction import redact
from services.gateway.redis_connection import connect_redis
from services.gateway.reply_outcome import compare
from services.gateway.sessions import SessionRecord, SessionStore, TurnRecord, new_turn_id
from services.gateway.settings import GatewaySettings
from services.gateway.turn import (
    ChatTurns,
    authorize,
    conversation_history,
    fit_query,
    search,
    standalone_question,
)
from services.gateway.webhooks import WebhookDispatcher, WebhookOutbox
from supportbot.conversation import OPEN_STATUSES, SessionStatus, Speaker
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
from supportbot.interactions import AgentReplyInteraction, FeedbackInteraction, SummaryInteraction
from supportbot.v1 import chat_pb2, chat_pb2_grpc, generator_pb2_grpc, retriever_pb2_grpc

log = logging.getLogger(__name__)

# Which roles may call each method; the rest are open to every role (with per-session checks).
# The service role is for calls between supportbot's services; the gateway serves people.
PEOPLE = ("customer", "publishable", "agent", "admin")
METHOD_ROLES = {
    "ListSessions": ("agent", "admin"),
    "TakeOverSession": ("agent", "admin"),
    "HandBackSession": ("agent", "admin"),
    "SendAgentReply": ("agent", "admin"),
    "SuggestReplies": ("agent", "admin"),
    "SummarizeSession": ("agent", "admin"),
}


def _open(session: SessionRecord) -> None:
    if session.status == SessionStatus.CLOSED:
        raise FailedPrecondition(f"session {session.session_id} is closed")


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
        composer = AnswerComposer(settings, generator)
        self.webhooks = WebhookOutbox(sessions.redis, settings)
        self.turns = ChatTurns(
            settings, sessions, interactions, retriever, composer, self.webhooks, AnswerCache(sessions.redis, settings)
        )
        self.assistant = Assistant(composer)

    async def load(self, session_id: str) -> SessionRecord:
        return authorize(await self.sessions.get(session_id))

    async def change(self, session_id: str, change: Callable[[SessionRecord], TurnRecord | None]) -> SessionRecord:
        """Applies `change` to the session under its lock and tells watchers."""
        async with self.sessions.locked(session_id) as session:
            authorize(session)
            before = session.status
            event = change(session)
        if event is not None:
            await self.sessions.publish(session_id, turn_event(event))
        if session.status != before:
            await self.sessions.publish(session_id, status_event(session.status))
            await self.turns.announce(before, session)
        return session

    # -- the chat turn ----------------------------------------------------------------------
    async def Chat(self, request, context):  # noqa: N802 (gRPC method name)
        # Closed with the call, so the turn's own clean-up (saving what was said) runs at once.
        async with aclosing(self.turns.run(request)) as responses:
            async for response in responses:
                yield response

    # -- sessions ---------------------------------------------------------------------------
    async def CreateSession(self, request, context):  # noqa: N802
        session = await self.turns.create_session(request.collection, request.channel, request.customer_id)
        return chat_pb2.CreateSessionResponse(session=session_message(session))

    async def GetSession(self, request, context):  # noqa: N802
        return chat_pb2.GetSessionResponse(session=session_message(await self.load(request.session_id)))

    async def ListSessions(self, request, context):  # noqa: N802
        if not 0 <= request.page_size <= self.settings.max_page_size:
            raise InvalidArgument(f"page_size must be between 0 and {self.settings.max_page_size}")
        statuses = {SessionStatus.from_pb(s) for s in request.statuses if s != chat_pb2.SESSION_STATUS_UNSPECIFIED}
        principal = current_principal()
        allowed = set(principal.collections) if principal and principal.collections else None
        if request.collection:
            if allowed is not None and request.collection not in allowed:
                raise PermissionDenied(f"this key may not see collection {request.collection!r}")
            allowed = {request.collection}
        sessions = await self.sessions.list(statuses or set(OPEN_STATUSES), allowed, request.page_size or 100)
        return chat_pb2.ListSessionsResponse(sessions=[session_message(s) for s in sessions])

    async def CloseSession(self, request, context):  # noqa: N802
        def close(session: SessionRecord) -> None:
            session.status = SessionStatus.CLOSED

        return chat_pb2.CloseSessionResponse(session=session_message(await self.change(request.session_id, close)))

    async def RequestHandoff(self, request, context):  # noqa: N802
        reason = request.reason.strip()[: self.settings.max_handoff_reason_chars] or handoff.ASKED_FOR_PERSON

        def hand_off(session: SessionRecord) -> None:
            _open(session)
            handoff.queue(session, reason)

        session = await self.change(request.session_id, hand_off)
        return chat_pb2.RequestHandoffResponse(session=session_message(session))

    async def SubmitFeedback(self, request, context):  # noqa: N802
        if request.rating not in (-1, 1):
            raise InvalidArgument("rating must be -1 (thumbs down) or 1 (thumbs up)")
        if len(request.comment) > self.settings.max_feedback_comment_chars:
            raise InvalidArgument(f"comment is over the limit of {self.settings.max_feedback_comment_chars} characters")
        handed_off = False

        def rate(session: SessionRecord) -> None:
            nonlocal handed_off
            turn = session.turn(request.turn_id)
            if turn.role != Speaker.ASSISTANT:
                raise InvalidArgument("feedback is for the assistant's answers")
            turn.feedback = request.rating
            handed_off = request.rating < 0 and handoff.queue(session, handoff.THUMBS_DOWN)

        session = await self.change(request.session_id, rate)
        metrics.feedback(session.collection, request.rating)
        if request.rating < 0:
            # A rated-down answer is never reused; nor is the cached one it came from.
            await self.turns.cache.forget_turn(request.turn_id)
            await self.webhooks.emit(webhooks.THUMBS_DOWN, session, feedback={
                "turn_id": request.turn_id, "rating": request.rating, "comment": request.comment,
            })
        await self.interactions.append(FeedbackInteraction(
            request.turn_id, request.session_id, request.rating, redact(request.comment), time.time()
        ))
        return chat_pb2.SubmitFeedbackResponse(handoff=handed_off)

    # -- agent assist -----------------------------------------------------------------------
    async def WatchSession(self, request, context):  # noqa: N802
        session = await self.load(request.session_id)
        async with self.sessions.subscribe(session.session_id) as events:
            # Subscribed first, then the current status: nothing falls between the two.
            current = await self.sessions.get(session.session_id)
            yield chat_pb2.WatchSessionResponse(status=current.status.to_pb())
            async for raw in events:
                yield chat_pb2.WatchSessionResponse.FromString(raw)

    async def TakeOverSession(self, request, context):  # noqa: N802
        principal = current_principal()

        def take_over(session: SessionRecord) -> None:
            _open(session)
            session.status = SessionStatus.WITH_AGENT
            session.assigned_agent = principal.name if principal else "agent"

        return chat_pb2.TakeOverSessionResponse(session=session_message(await self.change(request.session_id, take_over)))

    async def HandBackSession(self, request, context):  # noqa: N802
        def hand_back(session: SessionRecord) -> None:
            _open(session)
            session.status, session.assigned_agent, session.ungrounded_streak = SessionStatus.BOT, "", 0

        return chat_pb2.HandBackSessionResponse(session=session_message(await self.change(request.session_id, hand_back)))

    async def SendAgentReply(self, request, context):  # noqa: N802
        message = require_text(request.message, field="message", limit=self.settings.max_message_chars, hint="type the reply")
        principal = current_principal()
        reply = TurnRecord(new_turn_id(), Speaker.AGENT, message, time.time())

        def send(session: SessionRecord) -> TurnRecord:
            _open(session)
            session.make_room(
                message, max_messages=self.settings.max_session_messages, max_chars=self.settings.max_session_chars
            )
            session.status = SessionStatus.WITH_AGENT
            session.assigned_agent = session.assigned_agent or (principal.name if principal else "agent")
            session.turns.append(reply)
            return reply

        if len(request.suggestion) > self.settings.max_message_chars * 4:
            raise InvalidArgument("suggestion is longer than any suggested reply")
        session = await self.change(request.session_id, send)
        outcome = compare(message, request.suggestion, request.suggestions_shown)
        metrics.agent_replied(session.collection, outcome)
        question = handoff.last_real_question(session)
        await self.interactions.append(AgentReplyInteraction(
            session.session_id, reply.turn_id, reply.created_at, session.collection, redact(question), redact(message),
            redact(request.suggestion), outcome.outcome, outcome.edit_distance, outcome.edit_ratio,
        ))
        return chat_pb2.SendAgentReplyResponse(turn=turn_message(reply), suggestion_outcome=outcome.outcome)

    async def SuggestReplies(self, request, context):  # noqa: N802
        count = request.count or 3
        if not 1 <= count <= self.settings.max_suggestions:
            raise InvalidArgument(f"count must be between 1 and {self.settings.max_suggestions}, got {count}")
        session = await self.load(request.session_id)
        question = handoff.last_real_question(session)
        if not question:
            raise FailedPrecondition("the customer has not written anything yet")
        sources = []
        try:
            response = await search(
                self.retriever, fit_query(standalone_question(question, session), self.settings.max_query_chars),
                session.collection, self.settings.top_k, self.settings.retrieval_timeout_s,
            )
            sources = list(response.results)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition(f"the help center cannot be searched right now ({exc.code().name})") from exc
        history = [m for m in conversation_history(session, self.settings.history_messages) if m.content != question]
        language = conversation_language(session)
        drafts = [draft.message(sources) for draft in await self.assistant.drafts(question, sources, history, count, language)]
        metrics.suggestions_shown(session.collection, [draft.answer_path for draft in drafts])
        return chat_pb2.SuggestRepliesResponse(suggestions=drafts, sources=sources)

    async def SummarizeSession(self, request, context):  # noqa: N802
        session = await self.load(request.session_id)
        if not session.turns:
            raise FailedPrecondition("the conversation is empty")
        summary, path = await self.assistant.summary(session)
        # Logged with the conversation it condenses, so offline evaluation can score it.
        await self.interactions.append(SummaryInteraction(
            session.session_id, time.time(), redact(transcript(session)), redact(summary), answer_path_name(path)
        ))
        return chat_pb2.SummarizeSessionResponse(summary=summary)


async def build_service(settings: GatewaySettings) -> GrpcService:
    redis = connect_redis(settings)
    roots = settings.backend_root_certificates.read_bytes() if settings.backend_root_certificates else None
    service_key = settings.resolved_service_api_key()
    service_metadata = ((API_KEY_METADATA_KEY, service_key),) if service_key else ()
    retriever_channel = create_channel(
        settings.retriever_address,
        retry_services=["supportbot.v1.RetrieverService"],
        root_certificates=roots,
        metadata=service_metadata,
    )
    # A generation that failed before its first token (a replica went away) is safe to repeat.
    generator_channel = create_channel(
        settings.generator_address,
        retry_services=["supportbot.v1.GeneratorService"],
        root_certificates=roots,
        metadata=service_metadata,
    )
    interactions = InteractionLog(redis, settings.interaction_stream)
    sessions = SessionStore(redis, settings.session_ttl_s)
    try:
        await sessions.index_existing()
    except RedisError as exc:  # Redis not up yet: serve anyway, index on the next start
        log.warning("sessions not indexed at start", extra={"error": str(exc)})
    servicer = ChatServicer(
        settings,
        sessions,
        interactions,
        retriever_pb2_grpc.RetrieverServiceStub(retriever_channel),
        generator_pb2_grpc.GeneratorServiceStub(generator_channel),
    )
    interceptors = []
    if settings.auth_enabled:
        keys_file = settings.resolved_api_keys_file()
        interceptors.append(AuthInterceptor(KeyRing.load(keys_file), METHOD_ROLES, default_roles=PEOPLE))
    stop_export = asyncio.Event()
    exporter = None
    if settings.export_interactions:
        exporter = asyncio.create_task(
            JsonlExporter(redis, settings.interaction_stream, settings.resolved_interaction_log_dir()).run(stop_export)
        )
    dispatcher = asyncio.create_task(WebhookDispatcher(redis, settings).run(stop_export)) if settings.webhook_urls else None
    queue_watcher = asyncio.create_task(metrics.watch_queue(sessions, stop_export))

    def register(server: grpc.aio.Server) -> list[str]:
        chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
        return [chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name]

    async def on_stop() -> None:
        stop_export.set()
        if exporter is not None:
            await exporter
        await queue_watcher
        if dispatcher is not None:
            # A delivery waiting out its backoff is left pending: the next gateway claims it.
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
        await retriever_channel.close()
        await generator_channel.close()
        await redis.aclose()

    return GrpcService("gateway", settings, register, on_stop, interceptors, translate_error=storage_unavailable)


def storage_unavailable(error: Exception) -> ServiceError | None:
    """Redis down (after the client's own retries): UNAVAILABLE, which clients retry, with a
    message for people, instead of UNKNOWN and a Python exception."""
    if isinstance(error, RedisError):
        log.warning("session storage unavailable", extra={"error": str(error)})
        return Unavailable("conversations cannot be stored right now: please try again in a moment")
    return None
