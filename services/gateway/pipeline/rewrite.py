"""The rewrite stage: the turn's question read after the conversation (a follow-up becomes a
standalone question, see followups.py), the customer's language, whether the answer cache may
serve it, and the customer's message stored in the session and told to its watchers."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from services.gateway import followups
from services.gateway.convert import turn_event
from services.gateway.domain import AnswerMode, Message, TurnEvent
from services.gateway.pipeline.context import TurnContext
from services.gateway.sessions import (
    SessionRecord,
    SessionStore,
    TurnRecord,
    customer_turns,
    new_turn_id,
)
from services.gateway.settings import GatewaySettings
from supportbot.conversation import Speaker
from supportbot.core.language import ENGLISH, UNDETERMINED, detect_language


def customer_language(message: str, session: SessionRecord) -> str:
    """The language to answer in: the message's, or for one that tells nothing ("👍", "ok?"
    counts as English) the customer's previous message's; English when nothing tells."""
    language = detect_language(message)
    if language == UNDETERMINED:
        earlier = session.customer_messages()
        language = detect_language(earlier[-1]) if earlier else UNDETERMINED
    return ENGLISH if language == UNDETERMINED else language


def standalone_question(question: str, session: SessionRecord) -> str:
    """What `question` asks on its own after the session's conversation (see followups.py); the
    stored one when it is the session's last customer message."""
    asked = customer_turns(session.turns)
    if asked and asked[-1].content == question and asked[-1].standalone:
        return asked[-1].standalone
    return followups.rewrite(question, followups.previous_exchange(session.turns)).standalone


def conversation_history(session: SessionRecord, limit: int) -> list[Message]:
    """The conversation the model sees: the latest messages, without system notes."""
    if not limit:
        return []
    return [Message(t.role, t.content) for t in session.turns[-limit:] if t.role != Speaker.SYSTEM and t.content]


class RewriteQuestion:
    name = "rewrite"

    def __init__(self, settings: GatewaySettings, sessions: SessionStore) -> None:
        self.settings = settings
        self.sessions = sessions

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        started = time.perf_counter()
        session = turn.active_session
        turn.history = conversation_history(session, self.settings.limits.history_messages)
        asked = followups.rewrite(turn.message, followups.previous_exchange(session.turns))
        turn.follows, turn.rewritten = asked.context, asked.standalone
        turn.stage_ms["rewrite"] = (time.perf_counter() - started) * 1000
        turn.language = customer_language(turn.message, session)
        first_question = not customer_turns(session.turns)
        turn.cacheable = (
            self.settings.cache.answer_cache_enabled and first_question and not turn.request.bypass_answer_cache
            and turn.mode != AnswerMode.EXTRACTIVE  # quoting costs less than a lookup
        )
        customer_turn = TurnRecord(
            new_turn_id(), Speaker.CUSTOMER, turn.message, time.time(),
            standalone=asked.standalone, anchor=asked.anchor, root=asked.root,
        )
        session.turns.append(customer_turn)
        await self.sessions.publish(session.session_id, turn_event(customer_turn))
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing
