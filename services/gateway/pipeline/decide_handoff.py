"""The decide_handoff stage: after the bot's answer, whether the conversation goes to a person
(handoff.py holds the rules: two unanswered turns in a row)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from services.gateway import handoff
from services.gateway.domain import TurnEvent
from services.gateway.pipeline.context import TurnContext


class DecideHandoff:
    name = "decide_handoff"

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        reason = handoff.after_answer(turn.active_session, turn.answer.grounded)
        if reason:
            turn.handoff = handoff.queue(turn.active_session, reason)
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing
