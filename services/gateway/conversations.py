"""The session RPCs' logic: a session loaded for the calling key, and each change of a session
(close, handoff, feedback, an agent taking over, replying, handing back) made under its lock,
told to its watchers, the metrics and the helpdesk's webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.gateway import handoff, metrics, webhooks
from services.gateway.answer_cache import AnswerCache
from services.gateway.convert import status_event, turn_event
from services.gateway.interaction_log import InteractionLog
from services.gateway.pipeline.session_stage import authorize
from services.gateway.reply_outcome import ReplyOutcome, compare
from services.gateway.sessions import SessionRecord, SessionStore, TurnRecord, new_turn_id
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import WebhookOutbox
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.auth import current_principal
from supportbot.core.errors import FailedPrecondition, InvalidArgument, require_text
from supportbot.core.redaction import redact
from supportbot.interactions import AgentReplyInteraction, FeedbackInteraction


def ensure_open(session: SessionRecord) -> None:
    if session.status == SessionStatus.CLOSED:
        raise FailedPrecondition(f"session {session.session_id} is closed")


async def announce(outbox: WebhookOutbox, before: SessionStatus, session: SessionRecord) -> None:
    """A stored change of status, told to the metrics and the helpdesk's webhooks."""
    metrics.status_changed(before, session)
    if session.status == SessionStatus.WAITING and before == SessionStatus.BOT:
        await outbox.emit(webhooks.HANDOFF, session)
    elif session.status == SessionStatus.CLOSED:
        await outbox.emit(webhooks.CLOSED, session)


def agent_name() -> str:
    principal = current_principal()
    return principal.name if principal else "agent"


class Conversations:
    def __init__(
        self, settings: GatewaySettings, sessions: SessionStore, interactions: InteractionLog, outbox: WebhookOutbox,
        cache: AnswerCache,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.interactions = interactions
        self.outbox = outbox
        self.cache = cache

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
            await announce(self.outbox, before, session)
        return session

    async def close(self, session_id: str) -> SessionRecord:
        def close(session: SessionRecord) -> None:
            session.status = SessionStatus.CLOSED

        return await self.change(session_id, close)

    async def request_handoff(self, session_id: str, reason: str) -> SessionRecord:
        reason = reason.strip()[: self.settings.limits.max_handoff_reason_chars] or handoff.ASKED_FOR_PERSON

        def hand_off(session: SessionRecord) -> None:
            ensure_open(session)
            handoff.queue(session, reason)

        return await self.change(session_id, hand_off)

    async def rate(self, session_id: str, turn_id: str, rating: int, comment: str) -> bool:
        """Stores a customer's rating of an answer; whether it handed the session off."""
        if rating not in (-1, 1):
            raise InvalidArgument("rating must be -1 (thumbs down) or 1 (thumbs up)")
        if len(comment) > self.settings.limits.max_feedback_comment_chars:
            raise InvalidArgument(f"comment is over the limit of {self.settings.limits.max_feedback_comment_chars} characters")
        handed_off = False

        def rate(session: SessionRecord) -> None:
            nonlocal handed_off
            turn = session.turn(turn_id)
            if turn.role != Speaker.ASSISTANT:
                raise InvalidArgument("feedback is for the assistant's answers")
            turn.feedback = rating
            handed_off = rating < 0 and handoff.queue(session, handoff.THUMBS_DOWN)

        session = await self.change(session_id, rate)
        metrics.feedback(session.collection, rating)
        if rating < 0:
            # A rated-down answer is never reused; nor is the cached one it came from.
            await self.cache.forget_turn(turn_id)
            await self.outbox.emit(webhooks.THUMBS_DOWN, session, feedback={
                "turn_id": turn_id, "rating": rating, "comment": comment,
            })
        await self.interactions.append(FeedbackInteraction(turn_id, session_id, rating, redact(comment), time.time()))
        return handed_off

    async def take_over(self, session_id: str) -> SessionRecord:
        name = agent_name()

        def take_over(session: SessionRecord) -> None:
            ensure_open(session)
            session.status = SessionStatus.WITH_AGENT
            session.assigned_agent = name

        return await self.change(session_id, take_over)

    async def hand_back(self, session_id: str) -> SessionRecord:
        def hand_back(session: SessionRecord) -> None:
            ensure_open(session)
            session.status, session.assigned_agent, session.ungrounded_streak = SessionStatus.BOT, "", 0

        return await self.change(session_id, hand_back)

    async def agent_reply(
        self, session_id: str, text: str, suggestion: str, suggestions_shown: bool
    ) -> tuple[TurnRecord, ReplyOutcome]:
        """An agent's reply, stored and logged with how it relates to the drafts shown."""
        message = require_text(text, field="message", limit=self.settings.limits.max_message_chars, hint="type the reply")
        name = agent_name()
        reply = TurnRecord(new_turn_id(), Speaker.AGENT, message, time.time())

        def send(session: SessionRecord) -> TurnRecord:
            ensure_open(session)
            session.make_room(
                message, max_messages=self.settings.limits.max_session_messages, max_chars=self.settings.limits.max_session_chars
            )
            session.status = SessionStatus.WITH_AGENT
            session.assigned_agent = session.assigned_agent or name
            session.turns.append(reply)
            return reply

        if len(suggestion) > self.settings.limits.max_message_chars * 4:
            raise InvalidArgument("suggestion is longer than any suggested reply")
        session = await self.change(session_id, send)
        outcome = compare(message, suggestion, suggestions_shown)
        metrics.agent_replied(session.collection, outcome)
        question = handoff.last_real_question(session)
        await self.interactions.append(AgentReplyInteraction(
            session.session_id, reply.turn_id, reply.created_at, session.collection, redact(question), redact(message),
            redact(suggestion), outcome.outcome, outcome.edit_distance, outcome.edit_ratio,
        ))
        return reply, outcome
