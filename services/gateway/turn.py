"""One chat turn as named stages over one context object:

    open_session -> rewrite -> (person asked for? acknowledge and queue) -> retrieve
    -> reuse (the answer cache, first questions only) -> answer -> decide_handoff -> record

`ChatTurns.run` yields the ChatResponse stream; each stage reads and fills the `TurnContext`.
Errors are raised as `ServiceError`s and mapped to gRPC statuses in one place
(`supportbot.core.errors.ErrorMappingInterceptor`). The stages need only a session store, the
interaction log and two stubs, so tests drive them with fake backends.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

import grpc
from redis.exceptions import RedisError

from services.gateway import handoff, metrics
from services.gateway.answer_cache import AnswerCache, CacheEntry, CacheKey, CacheLookup
from services.gateway.answering import Answer, AnswerComposer
from services.gateway.convert import (
    answer_mode_name,
    answer_path_name,
    citation_dict,
    status_event,
    turn_event,
)
from services.gateway.interaction_log import InteractionLog
from services.gateway.redaction import redact
from services.gateway.sessions import SessionRecord, SessionStore, TurnRecord, new_turn_id
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import CLOSED, HANDOFF, WebhookOutbox
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.auth import CUSTOMER_ROLES, current_principal
from supportbot.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    check_channel,
    check_collection_name,
    check_identifier,
    require_text,
)
from supportbot.core.language import ENGLISH, UNDETERMINED, detect_language
from supportbot.core.telemetry import tracer
from supportbot.interactions import RetrievedChunk, TurnInteraction
from supportbot.v1 import chat_pb2, common_pb2, retriever_pb2, retriever_pb2_grpc

log = logging.getLogger(__name__)
TRACER = tracer(__name__)

_FOLLOW_UP = re.compile(r"\b(it|that|this|they|them|those|these|its|there)\b", re.I)


def follow_up_of(question: str, session: SessionRecord) -> str:
    """The customer's previous question when this one leans on it ("how long does that take?"),
    else ""."""
    previous = [t.content for t in session.turns if t.role == Speaker.CUSTOMER]
    if previous and (len(question.split()) <= 6 or _FOLLOW_UP.search(question)):
        return previous[-1]
    return ""


def customer_language(message: str, session: SessionRecord) -> str:
    """The language to answer in: the message's, or for one that tells nothing ("👍", "ok?"
    counts as English) the customer's previous message's; English when nothing tells."""
    language = detect_language(message)
    if language == UNDETERMINED:
        earlier = [t.content for t in session.turns if t.role == Speaker.CUSTOMER]
        language = detect_language(earlier[-1]) if earlier else UNDETERMINED
    return ENGLISH if language == UNDETERMINED else language


def standalone_question(question: str, session: SessionRecord) -> str:
    """A follow-up is searched together with the question it follows."""
    previous = follow_up_of(question, session)
    return f"{previous} {question}" if previous else question


def fit_query(text: str, limit: int) -> str:
    """The end of a text too long to search (where a long message usually asks its question),
    from a word boundary."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < 40 else tail


def conversation_history(session: SessionRecord, limit: int) -> list[common_pb2.ConversationMessage]:
    """The conversation the model sees: the latest messages, without system notes."""
    if not limit:
        return []
    return [
        common_pb2.ConversationMessage(role=t.role.to_pb(), content=t.content)
        for t in session.turns[-limit:]
        if t.role != Speaker.SYSTEM and t.content
    ]


@dataclass
class TurnContext:
    """Everything one turn knows, filled stage by stage."""

    request: chat_pb2.ChatRequest
    message: str
    mode: int
    started: float = field(default_factory=time.perf_counter)
    turn_id: str = field(default_factory=new_turn_id)
    session: SessionRecord | None = None
    follows: str = ""  # the previous question, when this one is a follow-up
    rewritten: str = ""
    history: list[common_pb2.ConversationMessage] = field(default_factory=list)
    sources: list[common_pb2.Source] = field(default_factory=list)
    retrieval_failed: bool = False
    # The answer cache: whether this turn may use it, what the retriever embedded the question
    # as, and what the lookup found.
    cacheable: bool = False
    query_embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""
    cached: CacheLookup | None = None
    language: str = ENGLISH  # the customer's, from this message (or the conversation's last one)
    answer: Answer = field(default_factory=Answer)
    handoff: bool = False
    stage_ms: dict[str, float] = field(default_factory=dict)
    result: chat_pb2.ChatResult | None = None

    @property
    def reused_from(self) -> CacheEntry | None:
        """The cached answer this turn gives, when the lookup was a hit."""
        return self.cached.entry if self.cached is not None else None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def outcome(self) -> str:
        """For the metrics: how the turn ended for the customer."""
        if self.handoff:
            return "handed_off"
        if self.retrieval_failed:
            return "unavailable"
        return "grounded" if self.answer.grounded else "ungrounded"

    def latencies(self) -> chat_pb2.StageLatencies:
        first = (self.answer.first_text_at - self.started) * 1000 if self.answer.first_text_at else 0.0
        return chat_pb2.StageLatencies(
            session_ms=self.stage_ms.get("session", 0.0), rewrite_ms=self.stage_ms.get("rewrite", 0.0),
            retrieval_ms=self.stage_ms.get("retrieval", 0.0), first_token_ms=first, total_ms=self.elapsed_ms(),
        )


class ChatTurns:
    def __init__(
        self,
        settings: GatewaySettings,
        sessions: SessionStore,
        interactions: InteractionLog,
        retriever: retriever_pb2_grpc.RetrieverServiceStub,
        composer: AnswerComposer,
        webhooks: WebhookOutbox,
        cache: AnswerCache,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.interactions = interactions
        self.retriever = retriever
        self.composer = composer
        self.webhooks = webhooks
        self.cache = cache

    def context(self, request: chat_pb2.ChatRequest) -> TurnContext:
        message = require_text(request.message, field="message", limit=self.settings.max_message_chars, hint="type a question")
        if request.answer_mode not in chat_pb2.AnswerMode.values():
            raise InvalidArgument(f"unknown answer_mode {request.answer_mode}")
        return TurnContext(request, message, request.answer_mode or self.settings.answer_mode_value())

    async def run(self, request: chat_pb2.ChatRequest) -> AsyncIterator[chat_pb2.ChatResponse]:
        turn = self.context(request)
        session = await self.open_session(turn)
        yield chat_pb2.ChatResponse(session=chat_pb2.SessionInfo(session_id=session.session_id, turn_id=turn.turn_id))

        async with self.sessions.locked(session.session_id) as session:
            turn.session = session
            turn.stage_ms["session"] = turn.elapsed_ms()
            await self.rewrite(turn)
            if session.status.with_person:
                # A person is handling this conversation: the bot stays quiet.
                turn.result = chat_pb2.ChatResult(
                    turn_id=turn.turn_id, finish_reason=common_pb2.FINISH_REASON_NOT_GENERATED,
                    latencies=turn.latencies(), handoff=True, answer_mode=turn.mode,
                )
                metrics.TURNS.labels(session.collection, "with_person", "unspecified").inc()
            else:
                try:
                    if handoff.asks_for_person(turn.message):
                        # No search and no model: a short acknowledgement and the queue, at once.
                        text = self.composer.fixed(
                            turn.answer, self.settings.reply("handoff", turn.language), handoff.ASKED_FOR_PERSON
                        )
                        yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=text))
                        turn.handoff = handoff.queue(session, handoff.ASKED_FOR_PERSON)
                    else:
                        for stage in (self.retrieve, self.reuse, self.answer):
                            async with aclosing(stage(turn)) as responses:
                                async for response in responses:
                                    yield response
                        self.decide_handoff(turn)
                finally:
                    # Also when the customer goes away mid-answer: what was said stays in the session.
                    await self.record(turn)
        # The session is saved as the lock is left, before the result goes out: a customer who
        # received a result has a turn that is stored (Redis failing first ends it UNAVAILABLE).
        if turn.handoff and turn.session is not None and turn.session.status == SessionStatus.WAITING:
            await self.announce(SessionStatus.BOT, turn.session)
        yield chat_pb2.ChatResponse(result=turn.result)

    async def announce(self, before: SessionStatus, session: SessionRecord) -> None:
        """A stored change of status, told to the metrics and the helpdesk's webhooks."""
        metrics.status_changed(before, session)
        if session.status == SessionStatus.WAITING and before == SessionStatus.BOT:
            await self.webhooks.emit(HANDOFF, session)
        elif session.status == SessionStatus.CLOSED:
            await self.webhooks.emit(CLOSED, session)

    # -- stages -------------------------------------------------------------------------------
    async def open_session(self, turn: TurnContext) -> SessionRecord:
        """The request's session (which this key may see, and still open), or a new one."""
        request = turn.request
        if request.session_id:
            session = authorize(await self.sessions.get(request.session_id))
            if session.status == SessionStatus.CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed: start a new one")
            session.make_room(
                turn.message, max_messages=self.settings.max_session_messages, max_chars=self.settings.max_session_chars
            )
            return session
        return await self.create_session(request.collection, request.channel, "")

    async def create_session(self, collection: str, channel: str, customer_id: str) -> SessionRecord:
        """A new session, once its fields are valid: a refused request stores nothing."""
        collection = check_collection_name(collection or self.settings.default_collection)
        channel = check_channel(channel or "api")
        principal = current_principal()
        if principal is not None and not principal.may_use_collection(collection, self.settings.default_collection):
            raise PermissionDenied(
                f"this key may not chat in collection {collection}: a key's collections are set in the keys file"
            )
        if principal is not None and principal.role in CUSTOMER_ROLES:
            customer_id = principal.customer_id
        customer_id = check_identifier(customer_id, field="customer_id")
        return await self.sessions.create(collection=collection, channel=channel, customer_id=customer_id)

    async def rewrite(self, turn: TurnContext) -> None:
        started = time.perf_counter()
        session = turn.session
        assert session is not None
        turn.history = conversation_history(session, self.settings.history_messages)
        turn.follows = follow_up_of(turn.message, session)
        turn.rewritten = standalone_question(turn.message, session)
        turn.stage_ms["rewrite"] = (time.perf_counter() - started) * 1000
        turn.language = customer_language(turn.message, session)
        first_question = not any(t.role == Speaker.CUSTOMER for t in session.turns)
        turn.cacheable = (
            self.settings.answer_cache_enabled and first_question and not turn.request.bypass_answer_cache
            and turn.mode != chat_pb2.ANSWER_MODE_EXTRACTIVE  # quoting costs less than a lookup
        )
        customer_turn = TurnRecord(new_turn_id(), Speaker.CUSTOMER, turn.message, time.time())
        session.turns.append(customer_turn)
        await self.sessions.publish(session.session_id, turn_event(customer_turn))

    async def retrieve(self, turn: TurnContext) -> AsyncIterator[chat_pb2.ChatResponse]:
        started = time.perf_counter()
        assert turn.session is not None
        try:
            response = await search(
                self.retriever, fit_query(turn.rewritten, self.settings.max_query_chars), turn.session.collection,
                self.settings.top_k, self.settings.retrieval_timeout_s, include_query_embedding=turn.cacheable,
            )
            turn.sources = list(response.results)
            turn.query_embedding, turn.embedding_model = list(response.query_embedding), response.embedding_model
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details() or "the question was refused by the retriever") from exc
            turn.retrieval_failed = exc.code() != grpc.StatusCode.NOT_FOUND
            log.warning("retrieval failed", extra={"code": exc.code().name, "details": exc.details()})
        turn.stage_ms["retrieval"] = (time.perf_counter() - started) * 1000
        yield chat_pb2.ChatResponse(sources=chat_pb2.SourcesRetrieved(sources=turn.sources, rewritten_question=turn.rewritten))

    def cache_key(self, turn: TurnContext) -> CacheKey | None:
        if not (turn.cacheable and turn.query_embedding and turn.sources and turn.session is not None):
            return None
        return CacheKey(turn.session.collection, turn.mode, turn.embedding_model)

    async def reuse(self, turn: TurnContext) -> AsyncIterator[chat_pb2.ChatResponse]:
        """A first question that means the same as a recent one, whose cited documents have not
        changed, gets that one's answer (see answer_cache.py)."""
        key = self.cache_key(turn)
        if key is None:
            return
        try:
            turn.cached = await self.cache.lookup(key, turn.query_embedding, turn.rewritten, turn.sources)
        except RedisError as exc:  # the cache is an optimisation: without it the turn goes on
            log.warning("answer cache lookup failed", extra={"error": str(exc)})
            return
        metrics.ANSWER_CACHE.labels(key.collection, turn.cached.result).inc()
        return
        yield  # a stage is an async generator, even one that streams nothing

    async def answer(self, turn: TurnContext) -> AsyncIterator[chat_pb2.ChatResponse]:
        if (entry := turn.reused_from) is not None and turn.cached is not None:
            answer = turn.answer
            answer.path, answer.grounded, answer.citations = entry.path, True, turn.cached.citations
            answer.finish, answer.sentences_kept = entry.finish, entry.sentences_kept
            for piece in turn.cached.pieces:
                yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=answer.add(piece)))
            return
        if turn.retrieval_failed or not turn.sources:
            reply, reason = (
                (self.settings.reply("unavailable", turn.language), "the retriever is unavailable") if turn.retrieval_failed
                else (self.settings.reply("ungrounded", turn.language), "no source matched the question")
            )
            yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=self.composer.fixed(turn.answer, reply, reason)))
            return
        texts = self.composer.stream(
            turn.message, turn.sources, turn.answer, mode=turn.mode, context_question=turn.follows,
            history=turn.history, request_id=turn.turn_id, language=turn.language,
        )
        async with aclosing(texts):
            async for text in texts:
                yield chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=text))

    def decide_handoff(self, turn: TurnContext) -> None:
        assert turn.session is not None
        reason = handoff.after_answer(turn.session, turn.answer.grounded)
        if reason:
            turn.handoff = handoff.queue(turn.session, reason)

    async def record(self, turn: TurnContext) -> None:
        """Saves the bot's turn in the session, tells watchers, and logs the interaction."""
        session, answer = turn.session, turn.answer
        assert session is not None
        if answer.path == chat_pb2.ANSWER_PATH_UNSPECIFIED and answer.text:
            answer.finish = common_pb2.FINISH_REASON_ABORTED  # cut short while streaming
        assistant_turn = TurnRecord(
            turn.turn_id, Speaker.ASSISTANT, answer.text.strip(), time.time(),
            citations=[citation_dict(c) for c in answer.citations], grounded=answer.grounded,
        )
        session.turns.append(assistant_turn)
        latencies = turn.latencies()
        turn.result = chat_pb2.ChatResult(
            turn_id=turn.turn_id, answer=assistant_turn.content, citations=answer.citations, finish_reason=answer.finish,
            latencies=latencies, handoff=turn.handoff, grounded=answer.grounded, completion_tokens=answer.completion_tokens,
            rewritten_question=turn.rewritten, answer_mode=turn.mode, answer_path=answer.path,
            sentences_kept=answer.sentences_kept, sentences_dropped=answer.sentences_dropped,
            fallback_reason=answer.fallback_reason,
            cached=turn.reused_from is not None,
            cached_from_turn_id=turn.reused_from.entry_id if turn.reused_from is not None else "",
        )
        await self.sessions.publish(session.session_id, turn_event(assistant_turn))
        if turn.handoff:
            await self.sessions.publish(session.session_id, status_event(SessionStatus.WAITING))
        metrics.turn_answered(
            session.collection, turn.outcome(), turn.result,
            max((s.dense_score for s in turn.sources), default=None),
        )
        await self.interactions.append(TurnInteraction(
            turn_id=turn.turn_id, session_id=session.session_id, timestamp=time.time(),
            collection=session.collection, channel=session.channel,
            question=redact(turn.message), rewritten_question=redact(turn.rewritten),
            retrieved=[
                RetrievedChunk(s.chunk_id, s.document_id, s.score, s.dense_score, s.document_version, s.content_hash)
                for s in turn.sources
            ],
            contexts=[s.text for s in turn.sources], answer=redact(assistant_turn.content),
            citations=assistant_turn.citations, finish_reason=common_pb2.FinishReason.Name(answer.finish),
            completion_tokens=answer.completion_tokens,
            latencies_ms={
                "session": latencies.session_ms, "rewrite": latencies.rewrite_ms, "retrieval": latencies.retrieval_ms,
                "first_token": latencies.first_token_ms, "total": latencies.total_ms,
            },
            grounded=answer.grounded, handoff=turn.handoff,
            answer_mode=answer_mode_name(turn.mode), answer_path=answer_path_name(answer.path),
            sentences_kept=answer.sentences_kept, sentences_dropped=answer.sentences_dropped,
            fallback_reason=answer.fallback_reason, cached_from_turn_id=turn.result.cached_from_turn_id,
        ))
        await self.remember(turn)

    async def remember(self, turn: TurnContext) -> None:
        """A grounded, cited, whole first answer goes into the answer cache; a turn answered from
        the cache is linked to its entry (a thumbs-down on it removes the entry)."""
        key, answer = self.cache_key(turn), turn.answer
        if key is None:
            return
        try:
            if turn.reused_from is not None:
                await self.cache.served(turn.turn_id, turn.reused_from.entry_id)
            elif answer.grounded and answer.citations and answer.finish != common_pb2.FINISH_REASON_ABORTED:
                await self.cache.store(
                    key, turn.query_embedding, turn.rewritten, turn.turn_id, answer.pieces, answer.citations,
                    turn.sources, path=answer.path, finish=answer.finish, sentences_kept=answer.sentences_kept,
                )
        except RedisError as exc:
            log.warning("answer cache write failed", extra={"error": str(exc)})


def authorize(session: SessionRecord) -> SessionRecord:
    """The session, when the calling key may see it."""
    principal = current_principal()
    if principal is not None and not principal.can_see(session.collection, session.customer_id):
        raise PermissionDenied(f"this key may not access session {session.session_id}")
    return session


async def search(
    retriever: retriever_pb2_grpc.RetrieverServiceStub, query: str, collection: str, top_k: int, timeout_s: float,
    *, include_query_embedding: bool = False,
) -> retriever_pb2.SearchResponse:
    with TRACER.start_as_current_span("retrieval"):
        return await retriever.Search(
            retriever_pb2.SearchRequest(
                query=query, collection=collection, top_k=top_k, include_query_embedding=include_query_embedding
            ),
            timeout=timeout_s,
        )
