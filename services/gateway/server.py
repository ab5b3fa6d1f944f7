"""ChatService: the gateway's edge. Each RPC converts its request to the gateway's own types
(convert.py), calls the chat turn (`pipeline/`), the session changes (`conversations.py`),
agent assist (`assist.py`) or the customer's case and its approval (`case.py`), and converts the
answer back. Handlers raise `ServiceError`s; the
server maps them to statuses. `build_chat` and `build_service` construct everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any

import grpc
from redis.exceptions import RedisError

from services.gateway import convert, metrics
from services.gateway.answer_cache import AnswerCache
from services.gateway.answering import AnswerComposer
from services.gateway.assist import Assistant, assist_context, transcript
from services.gateway.backends import Embeddings, Generator, Retriever
from services.gateway.case import CaseDesk
from services.gateway.conversations import Conversations
from services.gateway.domain import AnswerPath
from services.gateway.interaction_log import InteractionLog, JsonlExporter
from services.gateway.pipeline.act import Act
from services.gateway.pipeline.retrieve import Retrieve
from services.gateway.pipeline.session_stage import OpenSession
from services.gateway.pipeline.turns import ChatTurns, chat_stages
from services.gateway.redis_connection import connect_redis
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import WebhookDispatcher, WebhookOutbox
from supportbot.actions.identity import IdentitySettings
from supportbot.actions.wiring import ActionSettings
from supportbot.answers.wire import source_messages
from supportbot.conversation import OPEN_STATUSES, SessionStatus
from supportbot.core.auth import (
    API_KEY_METADATA_KEY,
    AuthInterceptor,
    KeyRing,
    Role,
    current_principal,
)
from supportbot.core.channels import create_channel
from supportbot.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ServiceError,
    Unavailable,
)
from supportbot.core.redaction import redact
from supportbot.core.server import GrpcService
from supportbot.interactions import SummaryInteraction
from supportbot.v1 import chat_pb2, chat_pb2_grpc, generator_pb2_grpc, retriever_pb2_grpc

log = logging.getLogger(__name__)

# Which roles may call each method; the rest are open to every role (with per-session checks).
# The service role is for calls between supportbot's services; the gateway serves people.
PEOPLE: tuple[Role, ...] = ("customer", "publishable", "agent", "admin")
METHOD_ROLES: dict[str, Iterable[Role]] = {
    "ListSessions": ("agent", "admin"),
    "TakeOverSession": ("agent", "admin"),
    "HandBackSession": ("agent", "admin"),
    "SendAgentReply": ("agent", "admin"),
    "SuggestReplies": ("agent", "admin"),
    "SummarizeSession": ("agent", "admin"),
    "GetSessionCase": ("agent", "admin"),
    "ApproveAction": ("agent", "admin"),
}


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(
        self, settings: GatewaySettings, sessions: SessionStore, interactions: InteractionLog, turns: ChatTurns,
        opener: OpenSession, retrieve: Retrieve, conversations: Conversations, assistant: Assistant, cases: CaseDesk,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.interactions = interactions
        self.turns = turns
        self.opener = opener
        self.retrieve = retrieve
        self.conversations = conversations
        self.assistant = assistant
        self.cases = cases

    # -- the chat turn ----------------------------------------------------------------------
    async def Chat(self, request: chat_pb2.ChatRequest, context: Any) -> AsyncGenerator[chat_pb2.ChatResponse, None]:  # noqa: N802 (gRPC method name)
        # Closed with the call, so the turn's own clean-up (saving what was said) runs at once.
        async with aclosing(self.turns.run(convert.chat_request(request))) as events:
            async for event in events:
                yield convert.chat_response(event)

    # -- sessions ---------------------------------------------------------------------------
    async def CreateSession(self, request: Any, context: Any) -> chat_pb2.CreateSessionResponse:  # noqa: N802
        session = await self.opener.create(request.collection, request.channel, request.customer_id)
        return chat_pb2.CreateSessionResponse(session=convert.session_message(session))

    async def GetSession(self, request: Any, context: Any) -> chat_pb2.GetSessionResponse:  # noqa: N802
        session = await self.conversations.load(request.session_id)
        return chat_pb2.GetSessionResponse(session=convert.session_message(session))

    async def ListSessions(self, request: Any, context: Any) -> chat_pb2.ListSessionsResponse:  # noqa: N802
        if not 0 <= request.page_size <= self.settings.limits.max_page_size:
            raise InvalidArgument(f"page_size must be between 0 and {self.settings.limits.max_page_size}")
        statuses = {SessionStatus.from_pb(s) for s in request.statuses if s != chat_pb2.SESSION_STATUS_UNSPECIFIED}
        principal = current_principal()
        allowed = set(principal.collections) if principal and principal.collections else None
        if request.collection:
            if allowed is not None and request.collection not in allowed:
                raise PermissionDenied(f"this key may not see collection {request.collection!r}")
            allowed = {request.collection}
        sessions = await self.sessions.list(statuses or set(OPEN_STATUSES), allowed, request.page_size or 100)
        return chat_pb2.ListSessionsResponse(sessions=[convert.session_message(s) for s in sessions])

    async def CloseSession(self, request: Any, context: Any) -> chat_pb2.CloseSessionResponse:  # noqa: N802
        session = await self.conversations.close(request.session_id)
        return chat_pb2.CloseSessionResponse(session=convert.session_message(session))

    async def RequestHandoff(self, request: Any, context: Any) -> chat_pb2.RequestHandoffResponse:  # noqa: N802
        session = await self.conversations.request_handoff(request.session_id, request.reason)
        return chat_pb2.RequestHandoffResponse(session=convert.session_message(session))

    async def SubmitFeedback(self, request: Any, context: Any) -> chat_pb2.SubmitFeedbackResponse:  # noqa: N802
        handed_off = await self.conversations.rate(request.session_id, request.turn_id, request.rating, request.comment)
        return chat_pb2.SubmitFeedbackResponse(handoff=handed_off)

    # -- agent assist -----------------------------------------------------------------------
    async def WatchSession(self, request: Any, context: Any) -> AsyncGenerator[chat_pb2.WatchSessionResponse, None]:  # noqa: N802
        session = await self.conversations.load(request.session_id)
        async with self.sessions.subscribe(session.session_id) as events:
            # Subscribed first, then the current status: nothing falls between the two.
            current = await self.sessions.get(session.session_id)
            yield chat_pb2.WatchSessionResponse(status=current.status.to_pb())
            async for raw in events:
                yield chat_pb2.WatchSessionResponse.FromString(raw)

    async def TakeOverSession(self, request: Any, context: Any) -> chat_pb2.TakeOverSessionResponse:  # noqa: N802
        session = await self.conversations.take_over(request.session_id)
        return chat_pb2.TakeOverSessionResponse(session=convert.session_message(session))

    async def HandBackSession(self, request: Any, context: Any) -> chat_pb2.HandBackSessionResponse:  # noqa: N802
        session = await self.conversations.hand_back(request.session_id)
        return chat_pb2.HandBackSessionResponse(session=convert.session_message(session))

    async def SendAgentReply(self, request: Any, context: Any) -> chat_pb2.SendAgentReplyResponse:  # noqa: N802
        reply, outcome = await self.conversations.agent_reply(
            request.session_id, request.message, request.suggestion, request.suggestions_shown
        )
        return chat_pb2.SendAgentReplyResponse(turn=convert.turn_message(reply), suggestion_outcome=outcome.outcome)

    async def SuggestReplies(self, request: Any, context: Any) -> chat_pb2.SuggestRepliesResponse:  # noqa: N802
        count = request.count or 3
        if not 1 <= count <= self.settings.limits.max_suggestions:
            raise InvalidArgument(f"count must be between 1 and {self.settings.limits.max_suggestions}, got {count}")
        session = await self.conversations.load(request.session_id)
        turn = assist_context(session, self.settings.limits.history_messages)
        if not turn.message:
            raise FailedPrecondition("the customer has not written anything yet")
        try:
            async with aclosing(self.retrieve.run(turn)) as found:
                async for _ in found:
                    pass
        except InvalidArgument as exc:  # a question the retriever refused cannot be searched either
            raise FailedPrecondition("the help center cannot be searched right now (INVALID_ARGUMENT)") from exc
        if turn.retrieval_failed:
            raise FailedPrecondition(f"the help center cannot be searched right now ({turn.retrieval_error})")
        sources = turn.sources
        # The customer's own account first: what their records say is what they asked about.
        account = await self.cases.draft(session.session_id)
        wanted = count - 1 if account.reply else count
        drafts = await self.assistant.drafts(turn, wanted) if wanted else []
        suggestions = [convert.suggested_reply(d.text, d.path, d.citations(sources), d.cited_sources(sources)) for d in drafts]
        paths = [draft.path for draft in drafts]
        if account.reply is not None:
            suggestions.insert(0, convert.suggested_reply(account.reply.text, AnswerPath.ACTION, account.reply.citations, []))
            paths.insert(0, AnswerPath.ACTION)
        metrics.suggestions_shown(session.collection, paths)
        response = chat_pb2.SuggestRepliesResponse(suggestions=suggestions, sources=source_messages(sources))
        if account.proposal is not None:
            response.proposed_action.CopyFrom(convert.proposed_action(account.proposal))
        return response

    async def SummarizeSession(self, request: Any, context: Any) -> chat_pb2.SummarizeSessionResponse:  # noqa: N802
        session = await self.conversations.load(request.session_id)
        if not session.turns:
            raise FailedPrecondition("the conversation is empty")
        summary, path = await self.assistant.summary(assist_context(session, self.settings.limits.history_messages))
        # Logged with the conversation it condenses, so offline evaluation can score it.
        await self.interactions.append(SummaryInteraction(
            session.session_id, time.time(), redact(transcript(session)), redact(summary), path.label
        ))
        return chat_pb2.SummarizeSessionResponse(summary=summary)

    async def GetSessionCase(self, request: Any, context: Any) -> chat_pb2.GetSessionCaseResponse:  # noqa: N802
        records, proposal = await self.cases.case(request.session_id)
        return convert.session_case(records, proposal)

    async def ApproveAction(self, request: Any, context: Any) -> chat_pb2.ApproveActionResponse:  # noqa: N802
        approval = await self.cases.approve(request.session_id, request.proposal_id)
        response = chat_pb2.ApproveActionResponse(action=convert.action_reply_message(approval.reply), answer=approval.answer)
        if approval.turn is not None:
            response.turn.CopyFrom(convert.turn_message(approval.turn))
        return response


def build_chat(
    settings: GatewaySettings, sessions: SessionStore, interactions: InteractionLog,
    retriever: retriever_pb2_grpc.RetrieverServiceStub, generator: generator_pb2_grpc.GeneratorServiceStub,
    act: Act | None = None,
) -> ChatServicer:
    """The chat service over its storage and its backends' stubs: every part built here but the
    act stage (account actions), which `build_service` builds when actions are configured."""
    composer = AnswerComposer(settings, Generator(generator, settings.backends.generation_timeout_s))
    cache = AnswerCache(sessions.redis, settings.cache)
    outbox = WebhookOutbox(sessions.redis, settings.webhooks)
    # Shared with the session and assist RPCs: CreateSession opens sessions, drafts search.
    opener = OpenSession(settings, sessions)
    retrieve = Retrieve(Retriever(retriever, settings.backends.top_k, settings.backends.retrieval_timeout_s), settings.backends.max_query_chars)
    stages = chat_stages(settings, sessions, interactions, composer, cache, opener=opener, retrieve=retrieve, act=act)
    conversations = Conversations(settings, sessions, interactions, outbox, cache)
    return ChatServicer(
        settings, sessions, interactions, ChatTurns(settings, sessions, stages, outbox), opener, retrieve,
        conversations, Assistant(composer), CaseDesk(conversations, act),
    )


async def build_service(settings: GatewaySettings) -> GrpcService:
    redis = connect_redis(settings.storage)
    roots = settings.backends.backend_root_certificates.read_bytes() if settings.backends.backend_root_certificates else None
    service_key = settings.resolved_service_api_key()
    service_metadata = ((API_KEY_METADATA_KEY, service_key),) if service_key else ()

    def channel(address: str, service: str) -> grpc.aio.Channel:
        return create_channel(address, retry_services=[service], root_certificates=roots, metadata=service_metadata)

    retriever_channel = channel(settings.backends.retriever_address, "supportbot.v1.RetrieverService")
    # A generation that failed before its first token (a replica went away) is safe to repeat.
    generator_channel = channel(settings.backends.generator_address, "supportbot.v1.GeneratorService")
    interactions = InteractionLog(redis, settings.storage.interaction_stream)
    sessions = SessionStore(redis, settings.storage.session_ttl_s)
    try:
        await sessions.index_existing()
    except RedisError as exc:  # Redis not up yet: serve anyway, index on the next start
        log.warning("sessions not indexed at start", extra={"error": str(exc)})
    generator_stub = generator_pb2_grpc.GeneratorServiceStub(generator_channel)
    servicer = build_chat(
        settings,
        sessions,
        interactions,
        retriever_pb2_grpc.RetrieverServiceStub(retriever_channel),
        generator_stub,
        # None unless SUPPORTBOT_ACTIONS_FILE names an actions file; routing embeds on the retriever,
        # free-text parameters fill on the generator when SUPPORTBOT_ACTIONS_GENERATOR_SLOT_FILLING is on.
        act=Act.configured(
            ActionSettings(), IdentitySettings(),
            Embeddings(retriever_pb2_grpc.RetrieverServiceStub(retriever_channel), settings.backends.retrieval_timeout_s),
            generator_stub,
        ),
    )
    interceptors = []
    if settings.access.auth_enabled:
        keys_file = settings.resolved_api_keys_file()
        interceptors.append(AuthInterceptor(KeyRing.load(keys_file), METHOD_ROLES, default_roles=PEOPLE))
    stop_export = asyncio.Event()
    exporter = None
    if settings.storage.export_interactions:
        exporter = asyncio.create_task(
            JsonlExporter(redis, settings.storage.interaction_stream, settings.resolved_interaction_log_dir()).run(stop_export)
        )
    dispatcher = asyncio.create_task(WebhookDispatcher(redis, settings.webhooks).run(stop_export)) if settings.webhooks.webhook_urls else None
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
        await retriever_channel.close(None)
        await generator_channel.close(None)
        await redis.aclose()

    return GrpcService("gateway", settings, register, on_stop, interceptors, translate_error=storage_unavailable)


def storage_unavailable(error: Exception) -> ServiceError | None:
    """Redis down (after the client's own retries): UNAVAILABLE, which clients retry, with a
    message for people, instead of UNKNOWN and a Python exception."""
    if isinstance(error, RedisError):
        log.warning("session storage unavailable", extra={"error": str(error)})
        return Unavailable("conversations cannot be stored right now: please try again in a moment")
    return None
