"""The action stage of the chat turn: one customer message, the session's pending-action state and
the authenticated identity in (`ActionTurn`); out (`StageResult`) either "answer from the help
center as usual" (`passthrough`) or the action's reply (a clarifying question with options, a
confirmation request, a cited result, or a plain error), the state to keep, and the interaction
records to write.

What the gateway's turn does with it (one stage, before retrieval):

    turn_input = ActionTurn(message=question, pending=session.get(SESSION_FIELD), identity=identity)
    outcome = await action_stage.run(turn_input)
    session[SESSION_FIELD] = outcome.state          # None: delete the field (nothing pending)
    for record in outcome.interactions:             # KIND "action" records of the interaction log
        interactions.write(record)
    if not outcome.passthrough:
        reply with outcome.text, outcome.options (clarify: buttons; confirm: yes/no) and
        outcome.citations ("[order L-104233]"), and skip retrieval and generation

`identity` comes from the request's credentials only (supportbot.actions.identity.resolve_identity:
a customer key's customer_id, or the widget's signed identity token), never from any text.

No model is needed: routing takes an injected embedder, slot filling an optional generator
callable. The benchmark (`python -m bench.actions`) drives conversations through this class."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from supportbot.actions import pending as states
from supportbot.actions.case import proposal_id as proposal_id_of
from supportbot.actions.combined import (
    DEFAULT_COMBINED,
    Combined,
    CombinedThresholds,
    split,
    texts_to_embed,
)
from supportbot.actions.declarations import Action, ActionFile
from supportbot.actions.executor import ActionExecutor, ActionInteraction, ActionResult
from supportbot.actions.identity import CustomerIdentity, IdentitySource
from supportbot.actions.replies import RecordCitation, confirmation_text
from supportbot.actions.routing import ActionRouter, RouteDecision
from supportbot.actions.slots import (
    GenerateText,
    Option,
    candidates,
    clarifying_question,
    fill_by_generator,
    fill_by_pattern,
)
from supportbot.core.language import has_hangul

# The session field that holds the pending action between turns (a JSON object, or absent).
SESSION_FIELD = "pending_action"

StageKind = Literal["help_center", "clarify", "confirm", "result", "error"]

_SAID = {
    "cancelled": {"en": "OK, I won't change anything.", "ko": "알겠습니다. 아무것도 변경하지 않을게요."},
    "no_candidates": {
        "en": "I couldn't find any {record} on your account that this applies to.",
        "ko": "이 요청에 해당하는 {record}을(를) 계정에서 찾을 수 없어요.",
    },
    # ConfirmationError codes (supportbot.actions.pending), in the customer's language.
    "never_proposed": {"en": "There is nothing waiting for your confirmation.", "ko": "확인을 기다리는 요청이 없어요."},
    "already_confirmed": {
        "en": "This was already confirmed; it is not done a second time.",
        "ko": "이미 확인되어 처리된 요청이에요. 다시 실행하지 않아요.",
    },
    "expired": {
        "en": "That request expired before it was confirmed, so nothing was changed. Please ask again.",
        "ko": "확인 전에 요청이 만료되어 아무것도 변경되지 않았어요. 다시 요청해 주세요.",
    },
}


def _said(key: str, language: str) -> str:
    texts = _SAID[key]
    return texts.get(language, texts["en"])


@dataclass(frozen=True)
class ActionTurn:
    """What the stage reads from the turn."""

    message: str
    # What the session held under SESSION_FIELD after the last turn (None: nothing pending).
    pending: dict[str, Any] | None
    # The authenticated customer (from the API key or the widget's identity token), or None for
    # an anonymous visitor, who gets no account actions.
    identity: CustomerIdentity | None
    # Written on the interaction records, so an action run joins its turn in the log.
    turn_id: str = ""
    session_id: str = ""


@dataclass
class StageResult:
    """What the turn does: `kind` is help_center (answer as usual), clarify, confirm, result or
    error; `state` is what the session keeps for the next turn (None: nothing pending)."""

    kind: StageKind
    text: str = ""
    options: tuple[Option, ...] = ()
    citations: tuple[RecordCitation, ...] = ()
    state: dict[str, Any] | None = None
    route: RouteDecision | None = None
    action: str = ""
    result: ActionResult | None = None
    interactions: list[ActionInteraction] = field(default_factory=list)
    # Every action run of the turn, lookups for a question's options included: the records they
    # read are the case an agent sees (supportbot.actions.case).
    reads: list[ActionResult] = field(default_factory=list)
    # A message that held a case question and a policy question (supportbot.actions.combined):
    # the action answered the case part, and this part is left for the help center to answer.
    question: str = ""

    @property
    def passthrough(self) -> bool:
        """True: the help center answers this turn (the state may still hold a suspended action)."""
        return self.kind == "help_center"


class ActionStage:
    def __init__(self, actions: ActionFile, executor: ActionExecutor, routers: dict[str, ActionRouter], *,
                 generate: GenerateText | None = None, clock: Callable[[], float] = time.time,
                 ttl_s: float = states.DEFAULT_TTL_S, combined: dict[str, CombinedThresholds] | None = None) -> None:
        self.actions = actions
        self.executor = executor
        self.routers = routers
        self.combined = dict(DEFAULT_COMBINED if combined is None else combined)
        self.generate = generate
        self.clock = clock
        self.ttl_s = ttl_s

    def language_of(self, message: str) -> str:
        return "ko" if has_hangul(message) and "ko" in self.routers else "en"

    def texts_to_route(self, message: str) -> list[str]:
        """Every text routing this message embeds: the message and the parts of each way to cut
        it (an embedder that fetches vectors ahead, the gateway's, fetches these)."""
        router = self.routers[self.language_of(message)]
        return list(dict.fromkeys([router.query_text(message), *texts_to_embed(message, router)]))

    def split(self, message: str) -> Combined | None:
        """The message's case part and help-center question, when it holds both (see
        supportbot.actions.combined); None: one request or one question."""
        language = self.language_of(message)
        thresholds = self.combined.get(language)
        if thresholds is None:
            return None
        changes = (action.name for action in self.actions.actions if action.changes)
        return split(message, self.routers[language], thresholds, language, changes)

    async def run(self, turn: ActionTurn) -> StageResult:
        result = await self.handle(turn.message, turn.pending, turn.identity)
        for record in result.interactions:
            record.turn_id, record.session_id = turn.turn_id, turn.session_id
        return result

    async def handle(self, message: str, state: dict[str, Any] | None, identity: CustomerIdentity | None) -> StageResult:
        now = self.clock()
        language = self.language_of(message)
        route = self.routers[language].route(message)
        pending = states.restore(state)
        if states.reply_intent(message) == "other" and (combined := self.split(message)) is not None:
            # The case part is the request, whether or not an action waits; the help center
            # answers the other part (the turn's).
            case = await self._continue_or_start(combined.case, combined.decision, pending, identity, language, now)
            case.question = combined.question
            return case
        if pending is not None or states.reply_intent(message) == "yes":
            handled = await self._advance(pending, message, route, identity, language, now)
            if handled is not None:
                return handled
            pending = None
        if route.action is None:  # route.is_action, spelt so that the type checker sees it
            return StageResult("help_center", route=route, state=_keep(pending))
        return await self._start(message, route, identity, language, now)

    async def _advance(self, pending: states.PendingAction | None, message: str, route: RouteDecision,
                       identity: CustomerIdentity | None, language: str, now: float) -> StageResult | None:
        """What the message does to the action waiting in the session (or a yes to nothing); None:
        it asks for another action, which replaces the waiting one."""
        action = self.actions.action(pending.action) if pending else None
        transition = states.advance(pending, message, action=action, customer_id=identity.customer_id if identity else "",
                                    now=now, routed_action=route.action)
        return await self._continue(transition, message, identity, route, language)

    async def _continue_or_start(self, case: str, route: RouteDecision, pending: states.PendingAction | None,
                                 identity: CustomerIdentity | None, language: str, now: float) -> StageResult:
        """The case part of a combined message: it continues the waiting action as it would on its
        own ("L-104240 ..." answering "which order?", "no, L-104240" changing a proposal), or else
        starts the action it asks for, which sets the waiting one aside as another request
        would. Never the help center: the case part is a confident request."""
        if pending is not None:
            handled = await self._advance(pending, case, route, identity, language, now)
            if handled is not None and not handled.passthrough:
                return handled
        return await self._start(case, route, identity, language, now)

    async def _start(self, message: str, route: RouteDecision, identity: CustomerIdentity | None, language: str,
                     now: float) -> StageResult:
        """The action the router chose for `message`, started: run, asked about, or proposed."""
        assert route.action is not None
        action = self.actions.action(route.action)
        if identity is None:
            result = await self.executor.run(action.name, {}, None, language=language)
            return StageResult("error", result.text, route=route, action=action.name, result=result)
        fresh = states.start(action, identity.customer_id, language, now, ttl_s=self.ttl_s, identity_source=identity.source)
        slots = fill_by_pattern(action, message)
        slots = await fill_by_generator(action, message, slots, self.generate)
        fresh.slots.update(slots.values)
        if slots.ambiguous:
            name, values = next(iter(slots.ambiguous.items()))
            options = [Option(value, value) for value in values]
            return self._ask(fresh, action, name, options, route)
        return await self._next(fresh, action, identity, route)

    async def _continue(self, transition: states.Transition, message: str, identity: CustomerIdentity | None,
                        route: RouteDecision, language: str) -> StageResult | None:
        pending = transition.pending
        kind = transition.kind
        if kind in ("error", "expired"):
            assert transition.error is not None
            said = _SAID.get(transition.error.code)
            text = said.get(language, said["en"]) if said else str(transition.error)
            return StageResult("error", text, route=route, state=_keep(pending) if kind == "error" else None)
        if kind == "cancelled":
            return StageResult("result", _said("cancelled", pending.language if pending else language), route=route,
                               action=pending.action if pending else "")
        if kind == "switched" or pending is None:
            return None
        action = self.actions.action(pending.action)
        if kind in ("changed", "reproposed"):
            return self._confirm(pending, action, route)
        if kind == "run":
            return await self._execute(pending, action, identity, route)
        if kind in ("filled", "still_missing"):
            assert identity is not None
            return await self._next(pending, action, identity, route)
        # unrelated: the help center answers; the pending action waits (suspended or collecting).
        if route.is_action and route.action != pending.action:
            return None
        return StageResult("help_center", route=route, state=_keep(pending))

    async def _next(self, pending: states.PendingAction, action: Action, identity: CustomerIdentity,
                    route: RouteDecision) -> StageResult:
        missing = [name for name, p in action.parameters.items() if p.required and name not in pending.slots]
        if missing:
            name = missing[0]
            parameter = action.parameters[name]
            options: list[Option] = []
            reads: list[ActionResult] = []
            if parameter.candidates_from:
                source = self.actions.action(parameter.candidates_from)
                listed = await self.executor.run(source.name, {}, identity, language=pending.language)
                reads.append(listed)
                if not listed.ok:
                    return StageResult("error", listed.text, route=route, action=action.name, result=listed, reads=[listed])
                options = candidates(parameter, listed.records, source.response.id_field, pending.language)
                if not options:
                    record = action.response.record
                    return StageResult("result", _said("no_candidates", pending.language).format(record=record),
                                       route=route, action=action.name, reads=[listed])
                if len(options) == 1:
                    # One record fits: take it (a change still reads it back for a yes).
                    pending.slots[name] = options[0].value
                    following = await self._next(pending, action, identity, route)
                    following.reads.insert(0, listed)
                    return following
            asked = self._ask(pending, action, name, options, route)
            asked.reads.extend(reads)
            return asked
        for name, parameter in action.parameters.items():
            if not parameter.required:
                pending.slots.setdefault(name, None)
        if action.changes:
            return self._confirm(states.propose(pending, self.clock(), ttl_s=self.ttl_s), action, route)
        return await self._execute(pending, action, identity, route)

    def _ask(self, pending: states.PendingAction, action: Action, name: str, options: list[Option],
             route: RouteDecision) -> StageResult:
        pending.status = states.Status.COLLECTING
        pending.offer(name, options)
        question = clarifying_question(name, action.parameters[name], options, pending.language)
        return StageResult("clarify", question.text, options=question.options, route=route, action=action.name,
                           state=pending.to_dict())

    def _confirm(self, pending: states.PendingAction, action: Action, route: RouteDecision) -> StageResult:
        text = confirmation_text(action, {k: v for k, v in pending.slots.items() if v is not None}, pending.language)
        return StageResult("confirm", text, route=route, action=action.name, state=pending.to_dict())

    async def approve(self, state: dict[str, Any] | None, proposal_id: str, approver: str) -> StageResult:
        """An agent's approval of the change the bot proposed, standing in for the customer's yes
        (the proposal named by `proposal_id`, supportbot.actions.case): it runs once, for the
        customer the proposal was made for (the identity the session authenticated then, never
        one the agent or the model names), recorded as confirmed by `approver`. Raises
        ConfirmationError, changing nothing, when nothing is proposed, it was confirmed already,
        it expired, or it is not the proposal named (the customer changed it meanwhile)."""
        now = self.clock()
        pending = states.restore(state)
        action = self._declared(pending.action) if pending is not None else None
        if pending is None or action is None or not action.changes or pending.status in (
                states.Status.COLLECTING, states.Status.CANCELLED):
            raise states.ConfirmationError("never_proposed", "Nothing in this conversation is waiting for approval.")
        if pending.status == states.Status.CONFIRMED:
            by = f" by {pending.confirmed_by}" if pending.confirmed_by else ""
            raise states.ConfirmationError("already_confirmed", f"This change was already confirmed{by}; it is not done a second time.")
        if pending.status == states.Status.EXPIRED or pending.expired(now):
            raise states.ConfirmationError(
                "expired", "The proposal expired before it was approved, so nothing was changed: the customer has to ask again.")
        if proposal_id != proposal_id_of(pending):
            raise states.ConfirmationError(
                "changed", "The proposal changed since it was shown (the customer answered meanwhile): look at it again before approving.")
        # Suspended (the customer asked something else meanwhile) or waiting: the agent approves
        # the change as it was read back, values and all.
        pending.status = states.Status.AWAITING
        states.confirm(pending, pending.customer_id, now, by=approver)
        # A proposal stored before its identity's source was kept runs as "session".
        known = pending.identity_source in get_args(IdentitySource)
        identity = CustomerIdentity(pending.customer_id, cast(IdentitySource, pending.identity_source) if known else "session")
        return await self._execute(pending, action, identity, None)

    def may_draft(self, message: str, state: dict[str, Any] | None, identity: CustomerIdentity | None) -> bool:
        """Whether `draft` would act on this message (no side effects): a customer authenticated,
        nothing live in the conversation's pending state (a question asked, a change waiting, one
        run: the conversation already holds its case), no yes and no refusal ("no, don't cancel
        it"), and a message routed to an action."""
        return self._draftable_route(message, state, identity) is not None

    def _draftable_route(self, message: str, state: dict[str, Any] | None,
                         identity: CustomerIdentity | None) -> RouteDecision | None:
        if identity is None or states.reply_intent(message) == "yes" or states.refuses(message):
            return None
        live = states.restore(state)
        if live is not None and live.status not in (states.Status.CANCELLED, states.Status.EXPIRED) \
                and not live.expired(self.clock()):
            return None
        route = self.routers[self.language_of(message)].route(message)
        return route if route.is_action else None

    async def draft(self, message: str, state: dict[str, Any] | None, identity: CustomerIdentity | None) -> StageResult | None:
        """What an agent's drafts can offer for the customer's message (agent assist), for the
        customer the conversation authenticated; None unless `may_draft`. A lookup is run (it
        reads, changes nothing) and its cited reply is the draft; a question's options are
        offered as the draft; a change with all its values is proposed to the agent only (kept
        suspended and drafted: the agent's approval runs it, the customer's yes reads it back
        first), never run here."""
        route = self._draftable_route(message, state, identity)
        if route is None or identity is None:
            return None
        drafted = await self._start(message, route, identity, self.language_of(message), self.clock())
        pending = states.restore(drafted.state)
        if drafted.kind == "confirm" and pending is not None:
            pending.status, pending.drafted = states.Status.SUSPENDED, True
            drafted.state = pending.to_dict()
        elif drafted.kind == "clarify":
            drafted.state = None  # the agent asks, if they like; the answer reaches them, not the bot
        return drafted

    def _declared(self, name: str) -> Action | None:
        try:
            return self.actions.action(name)
        except KeyError:
            return None  # the actions file changed since it was proposed

    async def _execute(self, pending: states.PendingAction, action: Action, identity: CustomerIdentity | None,
                       route: RouteDecision | None) -> StageResult:
        result = await self.executor.run(action.name, dict(pending.slots), identity,
                                         pending=pending if action.changes else None, language=pending.language)
        record = ActionInteraction.of(result, action, pending.slots, identity, pending)
        # A confirmed change that ran, or may have (the API did not say: "unknown"), stays in the
        # session until it expires, so a second "yes" is told it ran already instead of being
        # taken as a new request. One that surely did not run (the API unreachable, or it said
        # no) is dropped: the customer may ask again, and a "yes" is not answered as if it ran.
        may_have_run = result.ok or result.outcome == "unknown"
        kept = pending.to_dict() if action.changes and pending.status == states.Status.CONFIRMED and may_have_run else None
        return StageResult("result" if result.ok else "error", result.text, citations=result.citations, route=route,
                           action=action.name, result=result, state=kept, interactions=[record], reads=[result])


def _keep(pending: states.PendingAction | None) -> dict[str, Any] | None:
    if pending is None or pending.status in (states.Status.CANCELLED, states.Status.EXPIRED):
        return None
    return pending.to_dict()
