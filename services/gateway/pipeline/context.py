"""The context one turn carries through its stages (see `pipeline/__init__.py`): what the
request asked, and what each stage found, decided or said, filled stage by stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from services.gateway.answer_cache import CacheEntry, CacheLookup
from services.gateway.domain import (
    ActionReply,
    Answer,
    AnswerMode,
    AnswerPath,
    ChatRequest,
    FinishReason,
    Latencies,
    Message,
    TurnOutcome,
)
from services.gateway.sessions import SessionRecord, new_turn_id
from supportbot.actions.identity import CustomerIdentity
from supportbot.actions.replies import RecordCitation
from supportbot.answers.answerability import UnknownTerm
from supportbot.answers.sources import Source
from supportbot.core.language import ENGLISH


class Route(Enum):
    """Who answers this turn (the route stage decides)."""

    UNDECIDED = "undecided"
    BOT = "bot"  # search and answer
    HANDOFF = "handoff"  # the customer asked for a person: acknowledge and queue
    PERSON = "person"  # a person has the conversation: the bot stays quiet
    ACTION = "action"  # an account action answered (the act stage): no search, no model


@dataclass
class TurnContext:
    """Everything one turn knows, filled stage by stage. Agent assist (drafts) fills the same
    fields for the customer's last question."""

    request: ChatRequest
    message: str
    mode: AnswerMode
    started: float = field(default_factory=time.perf_counter)
    turn_id: str = field(default_factory=new_turn_id)
    session: SessionRecord | None = None
    route: Route = Route.UNDECIDED
    follows: str = ""  # the earlier question this one is read with, when it is a follow-up
    rewritten: str = ""  # the standalone question: what is searched
    history: list[Message] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    # The searched question's content words the collection never uses (the retriever's Search):
    # a signal that the help center does not cover it (supportbot/answers/answerability.py).
    unknown_terms: list[UnknownTerm] = field(default_factory=list)
    retrieval_failed: bool = False
    retrieval_error: str = ""  # the retriever's status name when it failed
    # The answer cache: whether this turn may use it, what the retriever embedded the question
    # as, and what the lookup found.
    cacheable: bool = False
    query_embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""
    cached: CacheLookup | None = None
    language: str = ENGLISH  # the customer's, from this message (or the conversation's last one)
    answer: Answer = field(default_factory=Answer)
    handoff: bool = False
    # The identify stage: the customer account actions run for (None: anonymous, no actions).
    identity: CustomerIdentity | None = None
    # The act stage: the account action's reply when one answered, and the action runs the
    # record stage writes to the interaction log (supportbot.actions.executor.ActionInteraction).
    action: ActionReply | None = None
    action_runs: list[Any] = field(default_factory=list)
    # A case question and a policy question in one message (supportbot.actions.combined): the
    # action's reply, streamed first; the records it rests on, which the cite_case stage numbers
    # after the help center's articles; and the part the help center answers as a question of
    # its own.
    case_reply: str = ""
    case_records: list[RecordCitation] = field(default_factory=list)
    help_question: str = ""
    stage_ms: dict[str, float] = field(default_factory=dict)
    outcome: TurnOutcome | None = None

    @property
    def active_session(self) -> SessionRecord:
        """The session, for the stages after open_session."""
        if self.session is None:
            raise RuntimeError("the session is opened before any later stage runs")
        return self.session

    @property
    def question(self) -> str:
        """What the help center answers: the message, or the policy part of a message whose case
        part an action answered."""
        return self.help_question or self.message

    def answer_policy_part(self, question: str, case_reply: str, records: list[RecordCitation]) -> None:
        """The action answered the case part with `case_reply` (already in the answer); the help
        center answers `question` as one of its own: searched on its own, not read after the
        conversation, and never from the answer cache (which holds whole questions' answers)."""
        self.help_question = self.rewritten = question
        self.follows = ""
        self.cacheable = False
        self.case_reply, self.case_records = case_reply, list(records)

    @property
    def reused_from(self) -> CacheEntry | None:
        """The cached answer this turn gives, when the lookup was a hit."""
        return self.cached.entry if self.cached is not None else None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def result_label(self) -> str:
        """For the metrics: how the turn ended for the customer."""
        if self.handoff:
            return "handed_off"
        if self.route == Route.ACTION:
            return "action"
        if self.retrieval_failed:
            return "unavailable"
        return "grounded" if self.answer.grounded else "ungrounded"

    def latencies(self) -> Latencies:
        first = (self.answer.first_text_at - self.started) * 1000 if self.answer.first_text_at else 0.0
        return Latencies(
            session_ms=self.stage_ms.get("session", 0.0), rewrite_ms=self.stage_ms.get("rewrite", 0.0),
            retrieval_ms=self.stage_ms.get("retrieval", 0.0), first_token_ms=first, total_ms=self.elapsed_ms(),
        )

    def quiet_outcome(self) -> TurnOutcome:
        """A turn a person answers: nothing generated, the session already handed off."""
        return TurnOutcome(
            turn_id=self.turn_id, answer_mode=self.mode, latencies=self.latencies(),
            finish=FinishReason.NOT_GENERATED, handoff=True,
        )

    def answered_outcome(self, text: str) -> TurnOutcome:
        """The outcome of a turn the bot answered (`text`: the answer as stored)."""
        answer, reused = self.answer, self.reused_from
        return TurnOutcome(
            turn_id=self.turn_id, answer_mode=self.mode, latencies=self.latencies(), finish=FinishReason(answer.finish),
            handoff=self.handoff, answer=text, citations=list(answer.citations), grounded=answer.grounded,
            completion_tokens=answer.completion_tokens, rewritten_question=self.rewritten,
            answer_path=AnswerPath(answer.path), sentences_kept=answer.sentences_kept,
            sentences_dropped=answer.sentences_dropped, fallback_reason=answer.fallback_reason,
            cached_from_turn_id=reused.entry_id if reused is not None else "", action=self.action,
            adapter=answer.adapter if answer.path in (AnswerPath.VERIFIED, AnswerPath.GENERATED) else "",
        )
