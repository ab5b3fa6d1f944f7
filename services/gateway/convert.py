"""The gateway's edge: protobuf messages to its own types (`domain.py`, session records) and back.
The one module besides server.py that imports protobuf types (sources and citations convert with
`supportbot.answers.wire`, which the generator's edge shares)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.domain import (
    ActionReply,
    AnswerMode,
    AnswerPath,
    AnswerText,
    ChatRequest,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Latencies,
    Message,
    SearchResult,
    SessionOpened,
    SourcesFound,
    TurnEvent,
    TurnOutcome,
)
from services.gateway.sessions import SessionRecord, TurnRecord
from supportbot.actions.case import CaseRecord, Proposal, ProposalState
from supportbot.answers.answerability import UnknownTerm
from supportbot.answers.sources import Citation, Source
from supportbot.answers.wire import (
    citation_from_message,
    citation_messages,
    source_messages,
    sources_from_messages,
)
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.errors import InvalidArgument
from supportbot.v1 import chat_pb2, common_pb2, generator_pb2, retriever_pb2

_ROLES = {
    common_pb2.ROLE_CUSTOMER: Speaker.CUSTOMER, common_pb2.ROLE_ASSISTANT: Speaker.ASSISTANT,
    common_pb2.ROLE_AGENT: Speaker.AGENT, common_pb2.ROLE_SYSTEM: Speaker.SYSTEM,
}


# -- requests in --------------------------------------------------------------------------------
def chat_request(request: chat_pb2.ChatRequest) -> ChatRequest:
    if request.answer_mode not in chat_pb2.AnswerMode.values():
        raise InvalidArgument(f"unknown answer_mode {request.answer_mode}")
    return ChatRequest(
        message=request.message, session_id=request.session_id, collection=request.collection,
        channel=request.channel, answer_mode=AnswerMode(request.answer_mode),
        bypass_answer_cache=request.bypass_answer_cache, identity_token=request.identity_token,
        history=tuple(Message(_ROLES[m.role], m.content) for m in request.history if m.role in _ROLES),
    )


# -- responses out ------------------------------------------------------------------------------
def latencies_message(latencies: Latencies) -> chat_pb2.StageLatencies:
    return chat_pb2.StageLatencies(
        session_ms=latencies.session_ms, rewrite_ms=latencies.rewrite_ms, retrieval_ms=latencies.retrieval_ms,
        first_token_ms=latencies.first_token_ms, total_ms=latencies.total_ms,
    )


def chat_result(outcome: TurnOutcome) -> chat_pb2.ChatResult:
    return chat_pb2.ChatResult(
        turn_id=outcome.turn_id, answer=outcome.answer, citations=citation_messages(outcome.citations),
        finish_reason=outcome.finish.wire_name,
        latencies=latencies_message(outcome.latencies), handoff=outcome.handoff, grounded=outcome.grounded,
        completion_tokens=outcome.completion_tokens, rewritten_question=outcome.rewritten_question,
        answer_mode=outcome.answer_mode.wire_name,
        answer_path=outcome.answer_path.wire_name, sentences_kept=outcome.sentences_kept,
        sentences_dropped=outcome.sentences_dropped, fallback_reason=outcome.fallback_reason,
        cached=bool(outcome.cached_from_turn_id), cached_from_turn_id=outcome.cached_from_turn_id,
        adapter=outcome.adapter,
    )


def chat_response(event: TurnEvent) -> chat_pb2.ChatResponse:
    if isinstance(event, SessionOpened):
        return chat_pb2.ChatResponse(session=chat_pb2.SessionInfo(session_id=event.session_id, turn_id=event.turn_id))
    if isinstance(event, SourcesFound):
        return chat_pb2.ChatResponse(
            sources=chat_pb2.SourcesRetrieved(sources=source_messages(event.sources), rewritten_question=event.rewritten_question)
        )
    if isinstance(event, AnswerText):
        return chat_pb2.ChatResponse(delta=chat_pb2.AnswerDelta(text=event.text))
    result = chat_result(event)
    if event.action is not None:
        result.action.CopyFrom(action_reply_message(event.action))
    return chat_pb2.ChatResponse(result=result)


_ACTION_REPLY_KINDS = {
    "clarify": chat_pb2.ACTION_REPLY_KIND_CLARIFY, "confirm": chat_pb2.ACTION_REPLY_KIND_CONFIRM,
    "result": chat_pb2.ACTION_REPLY_KIND_RESULT, "error": chat_pb2.ACTION_REPLY_KIND_ERROR,
}


def action_reply_message(reply: ActionReply) -> chat_pb2.ActionReply:
    return chat_pb2.ActionReply(
        action=reply.action, kind=_ACTION_REPLY_KINDS.get(reply.kind, chat_pb2.ACTION_REPLY_KIND_UNSPECIFIED),
        options=[chat_pb2.ActionOption(value=value, label=label) for value, label in reply.options],
        records=[
            chat_pb2.RecordCitation(action=r.action, record=r.record, record_id=r.record_id, marker=r.marker)
            for r in reply.records
        ],
    )


_PROPOSAL_STATES = {
    ProposalState.WAITING: chat_pb2.PROPOSAL_STATE_WAITING, ProposalState.EXPIRED: chat_pb2.PROPOSAL_STATE_EXPIRED,
    ProposalState.CONFIRMED: chat_pb2.PROPOSAL_STATE_CONFIRMED,
}


def session_case(records: list[CaseRecord], proposal: Proposal | None) -> chat_pb2.GetSessionCaseResponse:
    response = chat_pb2.GetSessionCaseResponse(records=[
        chat_pb2.CaseRecord(
            action=r.action, record=r.record, record_id=r.record_id, marker=r.marker, read_time=timestamp(r.read_at),
            fields=[chat_pb2.CaseField(name=name, values=[str(v) for v in values]) for name, values in r.fields.items()],
        )
        for r in records
    ])
    if proposal is not None:
        response.proposed_action.CopyFrom(proposed_action(proposal))
    return response


def proposed_action(proposal: Proposal) -> chat_pb2.ProposedAction:
    return chat_pb2.ProposedAction(
        proposal_id=proposal.proposal_id, action=proposal.action, description=proposal.description,
        parameters=proposal.parameters, state=_PROPOSAL_STATES[proposal.state],
        expire_time=timestamp(proposal.expires_at), confirmed_by=proposal.confirmed_by, drafted=proposal.drafted,
    )


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def turn_message(turn: TurnRecord) -> chat_pb2.Turn:
    return chat_pb2.Turn(
        turn_id=turn.turn_id,
        role=turn.role.to_pb(),
        content=turn.content,
        citations=[common_pb2.Citation(**c) for c in turn.citations],
        create_time=timestamp(turn.created_at),
        grounded=turn.grounded,
        feedback=turn.feedback,
        approved_by=turn.approved_by,
    )


def session_message(session: SessionRecord) -> chat_pb2.Session:
    return chat_pb2.Session(
        session_id=session.session_id,
        status=session.status.to_pb(),
        customer_id=session.customer_id,
        collection=session.collection,
        channel=session.channel,
        turns=[turn_message(t) for t in session.turns],
        create_time=timestamp(session.created_at),
        update_time=timestamp(session.updated_at),
        assigned_agent=session.assigned_agent,
        handoff_reason=session.handoff_reason,
        waiting_action=action_reply_message(waiting) if (waiting := session.waiting_action(time.time())) else None,
    )


def suggested_reply(text: str, path: AnswerPath, citations: list[Citation], sources: list[Source]) -> chat_pb2.SuggestedReply:
    return chat_pb2.SuggestedReply(
        text=text, citations=citation_messages(citations), answer_path=path.wire_name, sources=source_messages(sources)
    )


def turn_event(turn: TurnRecord) -> bytes:
    """A WatchSession event, as published to the session's watchers."""
    return chat_pb2.WatchSessionResponse(turn=turn_message(turn)).SerializeToString()


def status_event(status: SessionStatus) -> bytes:
    return chat_pb2.WatchSessionResponse(status=status.to_pb()).SerializeToString()


def answer_mode_name(mode: int) -> str:
    return chat_pb2.AnswerMode.Name(mode).removeprefix("ANSWER_MODE_").lower()


def answer_path_name(path: int) -> str:
    return chat_pb2.AnswerPath.Name(path).removeprefix("ANSWER_PATH_").lower()


# -- the backends' messages ---------------------------------------------------------------------
def search_request(query: str, collection: str, top_k: int, include_query_embedding: bool) -> retriever_pb2.SearchRequest:
    return retriever_pb2.SearchRequest(
        query=query, collection=collection, top_k=top_k, include_query_embedding=include_query_embedding,
        include_highlights=True,  # the composer quotes the sentences that answer (Source.highlights)
    )


def embed_request(texts: list[str], multilingual: bool) -> retriever_pb2.EmbedRequest:
    which = retriever_pb2.EMBEDDER_MULTILINGUAL if multilingual else retriever_pb2.EMBEDDER_PRIMARY
    return retriever_pb2.EmbedRequest(texts=texts, embedder=which)


def embed_vectors(response: retriever_pb2.EmbedResponse) -> list[list[float]]:
    return [list(vector.values) for vector in response.vectors]


def search_result(response: retriever_pb2.SearchResponse) -> SearchResult:
    return SearchResult(
        sources_from_messages(response.results), list(response.query_embedding), response.embedding_model,
        [UnknownTerm(t.term, t.nearest_word, t.nearest_similarity) for t in response.unknown_terms],
    )


def conversation_message(message: Message) -> common_pb2.ConversationMessage:
    return common_pb2.ConversationMessage(role=message.role.to_pb(), content=message.content)


def generate_request(request: GenerationRequest) -> generator_pb2.GenerateRequest:
    return generator_pb2.GenerateRequest(
        question=request.question, sources=source_messages(request.sources),
        history=[conversation_message(m) for m in request.history],
        messages=[conversation_message(m) for m in request.messages],
        max_tokens=request.max_tokens, temperature=request.temperature,
        repetition_penalty=request.repetition_penalty, request_id=request.request_id, language=request.language,
        collection=request.collection,
    )


def finish_reason(value: int) -> FinishReason:
    """A finish reason from the wire; one newer than this gateway reads as unspecified."""
    return FinishReason(value) if value in FinishReason._value2member_map_ else FinishReason.UNSPECIFIED


def generation_result(result: generator_pb2.GenerateResult) -> GenerationResult:
    return GenerationResult(
        result.text, finish_reason(result.finish_reason), result.completion_tokens,
        [citation_from_message(c) for c in result.citations], result.adapter,
    )


async def generation_events(responses: AsyncIterator[Any]) -> AsyncGenerator[str | GenerationResult, None]:
    """The generator's stream: its deltas' text, then its result."""
    async for response in responses:
        if response.HasField("delta"):
            yield response.delta.text
        else:
            yield generation_result(response.result)
