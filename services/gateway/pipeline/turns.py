"""The chat turn's runner (`ChatTurns`) and its stages' declared order (`chat_stages`); see the
package's docstring (pipeline/__init__.py) for the order and the rules."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import Protocol

from services.gateway.answer_cache import AnswerCache
from services.gateway.answering import AnswerComposer
from services.gateway.conversations import announce
from services.gateway.domain import AnswerMode, ChatRequest, TurnEvent
from services.gateway.interaction_log import InteractionLog
from services.gateway.pipeline.act import Act
from services.gateway.pipeline.answer import AnswerQuestion
from services.gateway.pipeline.cite_case import CiteCase
from services.gateway.pipeline.context import Route, TurnContext
from services.gateway.pipeline.decide_handoff import DecideHandoff
from services.gateway.pipeline.identify import Identify, KeepAccountHolder
from services.gateway.pipeline.record import Record
from services.gateway.pipeline.retrieve import Retrieve
from services.gateway.pipeline.reuse import Reuse
from services.gateway.pipeline.rewrite import RewriteQuestion
from services.gateway.pipeline.route import RouteTurn
from services.gateway.pipeline.session_stage import OpenSession
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import WebhookOutbox
from supportbot.conversation import SessionStatus
from supportbot.core.auth import CUSTOMER_ROLES, current_principal
from supportbot.core.errors import PermissionDenied, require_text

BEFORE_ROUTE = frozenset({Route.UNDECIDED})
BOT = frozenset({Route.BOT})
BOT_OR_HANDOFF = frozenset({Route.BOT, Route.HANDOFF})
# Recorded: the bot's answers, the handoff's acknowledgement and an action's reply.
RECORDED = frozenset({Route.BOT, Route.HANDOFF, Route.ACTION})


class Stage(Protocol):
    name: str

    def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]: ...


@dataclass(frozen=True)
class Step:
    """A stage in the turn's order: the routes it runs for, and whether it also runs after an
    earlier stage failed or the customer went away (what was said is recorded either way)."""

    stage: Stage
    runs_for: frozenset[Route]
    always: bool = False


def chat_stages(
    settings: GatewaySettings, sessions: SessionStore, interactions: InteractionLog, composer: AnswerComposer,
    cache: AnswerCache, *, opener: OpenSession, retrieve: Retrieve, act: Act | None = None,
) -> list[Step]:
    """The chat turn's stages in order. `opener` and `retrieve` are shared with other RPCs
    (CreateSession, SuggestReplies); `act` is there only when actions are configured."""
    reuse = Reuse(cache)
    return [
        *([Step(Identify(act.identity), BEFORE_ROUTE)] if act is not None else []),
        Step(opener, BEFORE_ROUTE),
        *([Step(KeepAccountHolder(), BEFORE_ROUTE)] if act is not None else []),
        Step(RewriteQuestion(settings, sessions), BEFORE_ROUTE),
        Step(RouteTurn(settings, composer), BEFORE_ROUTE),
        *([Step(act, BOT)] if act is not None else []),
        Step(retrieve, BOT),
        Step(reuse, BOT),
        Step(AnswerQuestion(settings, composer), BOT),
        *([Step(CiteCase(), BOT)] if act is not None else []),
        Step(DecideHandoff(), BOT),
        Step(Record(sessions, interactions, reuse), RECORDED, always=True),
    ]


class ChatTurns:
    """Runs a turn through its stages: those after the session is opened under its lock."""

    def __init__(
        self, settings: GatewaySettings, sessions: SessionStore,
        steps: Sequence[Step], webhooks: WebhookOutbox,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.steps = list(steps)
        self.webhooks = webhooks

    def context(self, request: ChatRequest) -> TurnContext:
        message = require_text(request.message, field="message", limit=self.settings.limits.max_message_chars, hint="type a question")
        self.check_answer_mode(request.answer_mode)
        return TurnContext(request, message, request.answer_mode or AnswerMode.from_label(self.settings.answers.answer_mode))

    def check_answer_mode(self, requested: AnswerMode) -> None:
        """Customer and publishable keys get the answer modes the operator allows them (by
        default the configured one): never the model's unverified text unless the operator says
        so. Agents, services and admins may ask for any mode."""
        principal = current_principal()
        if not requested or principal is None or principal.role not in CUSTOMER_ROLES:
            return
        allowed = self.settings.answers.customer_modes()
        if requested.label not in allowed:
            raise PermissionDenied(
                f"a {principal.role} key may not ask for answer_mode {requested.label}: customers get "
                f"{' or '.join(allowed)} answers, checked against the help center (leave answer_mode unset for "
                f"{allowed[0]}); the operator chooses these modes with SUPPORTBOT_GATEWAY_CUSTOMER_ANSWER_MODES"
            )

    async def run(self, request: ChatRequest) -> AsyncGenerator[TurnEvent, None]:
        turn = self.context(request)
        async with AsyncExitStack() as lock:
            async with aclosing(self.walk(turn, lock)) as events:
                async for event in events:
                    yield event
        # The session is saved as the lock is left, before the outcome goes out: a customer who
        # received a result has a turn that is stored (Redis failing first ends it UNAVAILABLE).
        if turn.handoff and turn.session is not None and turn.session.status == SessionStatus.WAITING:
            await announce(self.webhooks, SessionStatus.BOT, turn.session)
        if turn.outcome is not None:
            yield turn.outcome

    async def walk(self, turn: TurnContext, lock: AsyncExitStack) -> AsyncGenerator[TurnEvent, None]:
        """Each stage once, in order; once a stage has opened the session, the rest run under
        its lock (entered on `lock`). When a stage fails (or the customer goes away), the stages
        that always run still do, without streaming."""
        pending, locked = list(self.steps), False
        try:
            while pending:
                step = pending.pop(0)
                if turn.route in step.runs_for:
                    async with aclosing(step.stage.run(turn)) as events:
                        async for event in events:
                            yield event
                if turn.session is not None and not locked:
                    turn.session = await lock.enter_async_context(self.sessions.locked(turn.session.session_id))
                    locked = True
                    turn.stage_ms["session"] = turn.elapsed_ms()
        finally:
            for step in pending:
                if step.always and turn.route in step.runs_for:
                    async with aclosing(step.stage.run(turn)) as events:
                        async for _ in events:
                            pass
