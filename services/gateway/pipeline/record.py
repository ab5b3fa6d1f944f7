"""The record stage: the bot's turn saved in the session and told to its watchers, the turn's
one `TurnOutcome` made (the ChatResult is converted from it at the edge), the metrics, the
interaction log's record made from that same outcome, and the answer cache filled. It runs
also when the customer goes away mid-answer: what was said stays in the session."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from services.gateway import metrics
from services.gateway.convert import status_event, turn_event
from services.gateway.domain import AnswerPath, FinishReason, TurnEvent, TurnOutcome
from services.gateway.interaction_log import InteractionLog
from services.gateway.pipeline.context import TurnContext
from services.gateway.pipeline.reuse import Reuse
from services.gateway.sessions import SessionRecord, SessionStore, TurnRecord
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.redaction import redact
from supportbot.interactions import RetrievedChunk, TurnInteraction


def interaction(turn: TurnContext, outcome: TurnOutcome, session: SessionRecord) -> TurnInteraction:
    """The interaction log's record of a turn: its outcome, with what was asked and found."""
    return TurnInteraction(
        turn_id=outcome.turn_id, session_id=session.session_id, timestamp=time.time(),
        collection=session.collection, channel=session.channel,
        question=redact(turn.message), rewritten_question=redact(outcome.rewritten_question),
        retrieved=[
            RetrievedChunk(s.chunk_id, s.document_id, s.score, s.dense_score, s.document_version, s.content_hash)
            for s in turn.sources
        ],
        contexts=[s.text for s in turn.sources], answer=redact(outcome.answer),
        citations=[c.as_record() for c in outcome.citations], finish_reason=outcome.finish.wire_name,
        completion_tokens=outcome.completion_tokens, latencies_ms=outcome.latencies.by_stage(),
        grounded=outcome.grounded, handoff=outcome.handoff,
        answer_mode=outcome.answer_mode.label, answer_path=outcome.answer_path.label,
        sentences_kept=outcome.sentences_kept, sentences_dropped=outcome.sentences_dropped,
        fallback_reason=outcome.fallback_reason, cached_from_turn_id=outcome.cached_from_turn_id,
        adapter=outcome.adapter,
    )


class Record:
    name = "record"

    def __init__(self, sessions: SessionStore, interactions: InteractionLog, reuse: Reuse) -> None:
        self.sessions = sessions
        self.interactions = interactions
        self.reuse = reuse

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        session, answer = turn.active_session, turn.answer
        if answer.path == AnswerPath.UNSPECIFIED and answer.text:
            answer.finish = FinishReason.ABORTED  # cut short while streaming
        assistant_turn = TurnRecord(
            turn.turn_id, Speaker.ASSISTANT, answer.text.strip(), time.time(),
            citations=[c.as_record() for c in answer.citations], grounded=answer.grounded,
        )
        session.turns.append(assistant_turn)
        outcome = turn.outcome = turn.answered_outcome(assistant_turn.content)
        await self.sessions.publish(session.session_id, turn_event(assistant_turn))
        if turn.handoff:
            await self.sessions.publish(session.session_id, status_event(SessionStatus.WAITING))
        metrics.turn_answered(
            session.collection, turn.result_label(), outcome, max((s.dense_score for s in turn.sources), default=None)
        )
        await self.interactions.append(interaction(turn, outcome, session))
        for run in turn.action_runs:  # the account actions this turn ran (KIND "action")
            await self.interactions.append(run)
        await self.reuse.remember(turn)
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing
