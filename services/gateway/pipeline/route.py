"""The route stage: who answers this turn. A person who has the conversation (the bot stays
quiet), a person the customer just asked for (a short acknowledgement and the agent queue, with
no search and no model), or the bot (the stages after this one)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from services.gateway import handoff, metrics
from services.gateway.answering import AnswerComposer
from services.gateway.domain import AnswerText, TurnEvent
from services.gateway.pipeline.context import Route, TurnContext
from services.gateway.settings import GatewaySettings


class RouteTurn:
    name = "route"

    def __init__(self, settings: GatewaySettings, composer: AnswerComposer) -> None:
        self.settings = settings
        self.composer = composer

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        session = turn.active_session
        if session.status.with_person:
            turn.route = Route.PERSON
            turn.outcome = turn.quiet_outcome()
            metrics.TURNS.labels(session.collection, "with_person", "unspecified").inc()
        elif handoff.asks_for_person(turn.message):
            turn.route = Route.HANDOFF
            reply = self.settings.fixed_replies.reply("handoff", turn.language)
            yield AnswerText(self.composer.fixed(turn.answer, reply, handoff.ASKED_FOR_PERSON))
            turn.handoff = handoff.queue(session, handoff.ASKED_FOR_PERSON)
        else:
            turn.route = Route.BOT
