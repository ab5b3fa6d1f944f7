"""Agent assist sees the case (issue 24): the records a conversation's account actions read, cited,
and the change the bot proposed and waits on, which an agent approves in the customer's place.

The approval runs under the session's lock, as a customer's turn does, so it and the customer's
own "yes" (or a second approval) take turns and the change runs once. It runs for the customer
the proposal was made for, the identity the session authenticated then
(`supportbot.actions.stage.ActionStage.approve`); nothing in the request names a customer. The
outcome joins the conversation as the agent's turn (`approved_by`), which the customer's page
shows; an action that failed adds no turn (the agent tells the customer in their own words) and
goes back to the agent with the reason."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import grpc

from services.gateway.conversations import Conversations, agent_name, announce, ensure_open
from services.gateway.convert import status_event, turn_event
from services.gateway.domain import ActionReply
from services.gateway.pipeline.act import Act, record_citations
from services.gateway.pipeline.session_stage import authorize
from services.gateway.sessions import SessionRecord, TurnRecord, new_turn_id
from supportbot.actions.case import CaseRecord, Proposal, case_records, proposal_of, remember
from supportbot.actions.pending import ConfirmationError
from supportbot.actions.stage import ActionStage
from supportbot.answers.sources import Citation
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.errors import Aborted, FailedPrecondition, InvalidArgument, Unavailable

_PROPOSAL_ID = re.compile(r"^p_[0-9a-f]{24}$")


@dataclass(frozen=True)
class Approval:
    """What an approval did: the turn it added (None when the action failed), the action's
    reply and its text."""

    turn: TurnRecord | None
    reply: ActionReply
    answer: str


def unanswered_message(session: SessionRecord) -> str:
    """The customer's latest message when the bot has not answered it (written to the agent, or
    not answered yet); "" otherwise: what the bot answered, its own action handled."""
    for turn in reversed(session.turns):
        if turn.role == Speaker.ASSISTANT:
            return ""
        if turn.role == Speaker.CUSTOMER:
            return turn.content
    return ""


@dataclass(frozen=True)
class DraftReply:
    """A draft from the customer's account: its text and the records it cites."""

    text: str
    citations: list[Citation]


@dataclass(frozen=True)
class ActionDraft:
    """What the customer's own account offers the agent's drafts: a reply, and the change
    proposed for approval."""

    reply: DraftReply | None
    proposal: Proposal | None


class CaseDesk:
    def __init__(self, conversations: Conversations, act: Act | None) -> None:
        self.conversations = conversations
        self.sessions = conversations.sessions
        self.act = act

    async def _stage(self) -> ActionStage:
        if self.act is None:
            raise FailedPrecondition("account actions are not configured on this gateway (SUPPORTBOT_ACTIONS_FILE)")
        try:
            return await self.act.stage()
        except grpc.aio.AioRpcError as exc:  # its routers are built on the retriever's embeddings
            raise Unavailable("account actions are not ready yet (the retriever cannot be reached): try again in a moment") from exc

    async def case(self, session_id: str) -> tuple[list[CaseRecord], Proposal | None]:
        """The records the conversation's actions read, and the change proposed (None: none)."""
        session = await self.conversations.load(session_id)
        return case_records(session.case_records), await self._proposal(session)

    async def draft(self, session_id: str) -> ActionDraft:
        """What the agent's drafts offer from the customer's account (see ActionStage.draft) for
        the customer's latest message, when the bot has not answered it (they wrote it to the
        agent): a lookup's cited reply or a question's options as a draft, and the change asked
        for proposed for the agent's approval. The proposal already in the conversation is shown
        either way. Nothing without actions configured, for a closed conversation, without an
        authenticated customer, or while the retriever cannot embed (the help center's drafts
        still come). The session is locked, and written, only when an action is drafted."""
        if self.act is None:
            return ActionDraft(None, None)
        session = await self.conversations.load(session_id)
        message = unanswered_message(session)
        stage = await self.act.routed(message) if message and session.status != SessionStatus.CLOSED else None
        if stage is None:
            try:
                return ActionDraft(None, await self._proposal(session))
            except Unavailable:  # the help center's drafts still come
                return ActionDraft(None, None)
        if not stage.may_draft(message, session.pending_action, session.account_identity()):
            return ActionDraft(None, proposal_of(session.pending_action, stage.actions, stage.clock()))
        async with self.sessions.locked(session_id) as session:
            authorize(session)
            ensure_open(session)
            # Read again under the lock: the customer may have written (or said no) meanwhile.
            out = None
            if unanswered_message(session) == message:
                out = await stage.draft(message, session.pending_action, session.account_identity())
            if out is not None:
                if out.state is not None:
                    session.pending_action = out.state
                session.case_records = remember(session.case_records, out.reads, stage.actions, stage.clock())
            proposal = proposal_of(session.pending_action, stage.actions, stage.clock())
        if out is None:
            return ActionDraft(None, proposal)
        for run in out.interactions:  # the lookups the draft ran, as the bot's turns log theirs
            run.session_id = session.session_id
            await self.conversations.interactions.append(run)
        if out.kind in ("confirm", "error"):  # proposed to the agent; or nothing worth sending
            return ActionDraft(None, proposal)
        return ActionDraft(DraftReply(out.text, record_citations(out.citations)), proposal)

    async def _proposal(self, session: SessionRecord) -> Proposal | None:
        """The change proposed in the conversation (None: none). UNAVAILABLE while the actions'
        routers cannot be built."""
        if not session.pending_action or self.act is None:
            return None
        stage = await self._stage()
        return proposal_of(session.pending_action, stage.actions, stage.clock())

    async def approve(self, session_id: str, proposal_id: str) -> Approval:
        """Runs the proposed change for the conversation's customer, approved by the calling
        agent. FAILED_PRECONDITION when nothing waits, it ran already or it expired;
        ABORTED when the proposal is not the one named (the customer changed it meanwhile)."""
        if not proposal_id:
            raise InvalidArgument("proposal_id is empty: send the proposal_id that GetSessionCase shows")
        if not _PROPOSAL_ID.fullmatch(proposal_id):
            raise InvalidArgument(f"malformed proposal_id {proposal_id[:80]!r}: send the one GetSessionCase shows")
        name = agent_name()
        limits = self.conversations.settings.limits
        added: TurnRecord | None = None
        async with self.sessions.locked(session_id) as session:
            authorize(session)  # first: another collection's agent learns nothing of this gateway
            ensure_open(session)
            stage = await self._stage()
            before = session.status
            # Room for the outcome, checked before anything runs (a refusal changes nothing).
            session.make_room("", max_messages=limits.max_session_messages, max_chars=limits.max_session_chars)
            try:
                out = await stage.approve(session.pending_action, proposal_id, f"agent:{name}")
            except ConfirmationError as exc:
                raise (Aborted if exc.code == "changed" else FailedPrecondition)(str(exc)) from exc
            session.pending_action = out.state
            session.case_records = remember(session.case_records, out.reads, stage.actions, stage.clock())
            if out.kind == "result":
                added = TurnRecord(
                    new_turn_id(), Speaker.AGENT, out.text, time.time(),
                    citations=[citation.as_record() for citation in record_citations(out.citations)],
                    grounded=bool(out.citations), approved_by=name,
                )
                session.turns.append(added)
                session.status = SessionStatus.WITH_AGENT
                session.assigned_agent = session.assigned_agent or name
        if added is not None:
            await self.sessions.publish(session.session_id, turn_event(added))
        if session.status != before:
            await self.sessions.publish(session.session_id, status_event(session.status))
            await announce(self.conversations.outbox, before, session)
        for run in out.interactions:  # the action run (confirmed_by agent:<name>), KIND "action"
            run.turn_id, run.session_id = added.turn_id if added else "", session.session_id
            await self.conversations.interactions.append(run)
        return Approval(added, ActionReply(action=out.action, kind=out.kind, records=tuple(out.citations)), out.text)
