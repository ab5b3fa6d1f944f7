"""Agent assist: suggested replies and conversation summaries, grounded the way customer answers
are. A draft is either the model's reply verified sentence by sentence against the sources
(unsupported sentences and template holes dropped) or the source sentences quoted; each cites
the article it rests on. A summary is the model's, verified against the conversation, or one
composed from the conversation itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.gateway import handoff
from services.gateway.answering import AnswerComposer
from services.gateway.domain import (
    AnswerMode,
    AnswerPath,
    ChatRequest,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Message,
)
from services.gateway.handoff import asks_for_person
from services.gateway.pipeline.context import Route, TurnContext
from services.gateway.pipeline.rewrite import conversation_history, standalone_question
from services.gateway.sessions import SessionRecord
from supportbot.answers.citations import article_citations
from supportbot.answers.compose import CitedArticle, StreamingVerifier, render, verify
from supportbot.answers.grounding import Evidence, Passage
from supportbot.answers.sources import Citation, Source
from supportbot.conversation import Speaker
from supportbot.core.language import ENGLISH, KOREAN, detect_language

_LABELS = {Speaker.CUSTOMER: "Customer", Speaker.ASSISTANT: "Assistant", Speaker.AGENT: "Agent"}
# Sampling temperatures of the drafts after the first (greedy) one, for variety.
_DRAFT_TEMPERATURES = (0.7, 0.85, 1.0, 1.15)
SUMMARY_MAX_TOKENS = 160
# The composed summary's phrases, per language (agents read the customer's language).
_SUMMARY_PHRASES = {
    ENGLISH: {
        "asked": "The customer asked: {}.", "answered_from": "The bot answered from: {}.",
        "not_answered": "The help center did not answer it.", "handed": "Handed to a person: {}.",
        "open": "Still open: {}", "empty": "The conversation is empty.", "quote": "\u201c{}\u201d", "and": "; ",
        "instruction": "",
    },
    KOREAN: {
        "asked": "고객 문의: {}.", "answered_from": "답변에 쓴 문서: {}.",
        "not_answered": "도움말 센터에 답이 없었습니다.", "handed": "상담원 연결: {}.",
        "open": "아직 해결되지 않음: {}", "empty": "대화 내용이 없습니다.", "quote": "\u201c{}\u201d", "and": "; ",
        "instruction": " Write the summary in Korean.",
    },
}
_HANDOFF_REASONS_KO = {
    handoff.ASKED_FOR_PERSON: "고객이 상담원을 요청함",
    handoff.COULD_NOT_ANSWER: "봇이 두 번 연속 답하지 못함",
    handoff.THUMBS_DOWN: "고객이 답변을 도움이 안 된다고 평가함",
}


def conversation_language(session: SessionRecord) -> str:
    """The customer's language over the conversation (English when nothing tells)."""
    said = " ".join(session.customer_messages())
    language = detect_language(said)
    return language if language in _SUMMARY_PHRASES else ENGLISH


def transcript(session: SessionRecord, last: int = 30) -> str:
    """The part of the conversation a summary covers."""
    lines = [f"{_LABELS[t.role]}: {t.content}" for t in session.turns if t.role in _LABELS]
    return "\n".join(lines[-last:])


@dataclass
class Draft:
    text: str
    path: AnswerPath
    # The cited articles, numbered as the draft's text numbers them.
    articles: list[CitedArticle] = field(default_factory=list)

    def citations(self, sources: Sequence[Source]) -> list[Citation]:
        return article_citations(self.articles, sources)

    def cited_sources(self, sources: Sequence[Source]) -> list[Source]:
        return [sources[a.source - 1] for a in self.articles if 1 <= a.source <= len(sources)]


def assist_context(session: SessionRecord, history_messages: int) -> TurnContext:
    """A turn's context for agent assist: the customer's last question for the help center, read
    after the conversation (the retrieve stage searches it), in the conversation's language."""
    question = handoff.last_real_question(session)
    turn = TurnContext(ChatRequest(question, session.session_id), question, AnswerMode.UNSPECIFIED, session=session)
    turn.route, turn.rewritten = Route.BOT, standalone_question(question, session) if question else ""
    turn.history = [m for m in conversation_history(session, history_messages) if m.content != question]
    turn.language = conversation_language(session)
    return turn


class Assistant:
    def __init__(self, composer: AnswerComposer) -> None:
        self.composer = composer
        self.settings = composer.settings

    async def drafts(self, turn: TurnContext, count: int) -> list[Draft]:
        """Up to `count` different grounded drafts for the turn's question (its message, with the
        sources the retrieve stage found): the greedy verified reply, the quoted sources, then
        sampled verified replies. Without sources, none: there is nothing to rest on."""
        if not turn.sources:
            return []
        evidence = Evidence(turn.sources)
        temperatures = [0.0, *_DRAFT_TEMPERATURES][: max(count - 1, 1)]
        generated = await asyncio.gather(*(self._verified_draft(turn, evidence, t) for t in temperatures))
        quoted = self.composer.quote(turn.message, evidence)
        extractive = Draft(quoted.text, AnswerPath.EXTRACTIVE, quoted.articles) if quoted.sentences else None
        ordered = [d for d in [generated[0], extractive, *generated[1:]] if d is not None]
        unique: dict[str, Draft] = {}
        for draft in ordered:
            unique.setdefault(draft.text, draft)
        return list(unique.values())[:count]

    async def _verified_draft(self, turn: TurnContext, evidence: Evidence, temperature: float) -> Draft | None:
        request = GenerationRequest(
            question=turn.message, sources=list(turn.sources), history=list(turn.history), temperature=temperature,
            language=turn.language, collection=turn.active_session.collection,
            max_tokens=self.settings.answers.suggestion_max_tokens, repetition_penalty=self.settings.answers.answer_repetition_penalty,
        )
        result = await self.composer.generate_text(request)
        verifier = self._verify(evidence, result)
        if not verifier.kept:
            return None
        kept = {n for s in verifier.kept for n in s.sources}
        return Draft(render(verifier.kept), AnswerPath.VERIFIED,
                     [a for a in verifier.numbering.articles if a.number in kept])

    async def summary(self, turn: TurnContext) -> tuple[str, AnswerPath]:
        """(summary, answer path) of the turn's session: the model's sentences that the
        conversation supports, else a summary composed from the conversation's own words."""
        session = turn.active_session
        conversation = transcript(session)
        language = conversation_language(session)
        request = GenerationRequest(
            messages=[
                Message(Speaker.SYSTEM, "You summarize customer-support conversations for the agent taking over."),
                Message(
                    Speaker.CUSTOMER,
                    "Summarize this conversation in two or three sentences: what the customer needs, "
                    f"what was already answered, and what is still open.{_SUMMARY_PHRASES[language]['instruction']}"
                    f"\n\n{conversation}",
                ),
            ],
            max_tokens=SUMMARY_MAX_TOKENS, repetition_penalty=self.settings.answers.answer_repetition_penalty,
            collection=session.collection,
        )
        result = await self.composer.generate_text(request)
        verifier = self._verify(Evidence([Passage("conversation", conversation)]), result)
        if verifier.kept:
            return " ".join(s.text for s in verifier.kept), AnswerPath.VERIFIED
        return extractive_summary(session, language), AnswerPath.EXTRACTIVE

    def _verify(self, evidence: Evidence, result: GenerationResult) -> StreamingVerifier:
        return verify(evidence, result.text, threshold=self.settings.answers.support_threshold,
                      truncated=result.finish == FinishReason.LENGTH)


def extractive_summary(session: SessionRecord, language: str = ENGLISH) -> str:
    """What the customer asked, which articles the bot answered from, whether a person was asked
    for and what is still open, in the conversation's own words (and the customer's language)."""
    phrases = _SUMMARY_PHRASES.get(language, _SUMMARY_PHRASES[ENGLISH])
    asked = session.customer_messages()
    questions = [q for q in asked if not asks_for_person(q)]
    parts = []
    if questions:
        parts.append(phrases["asked"].format(phrases["and"].join(phrases["quote"].format(q) for q in questions[:3])))
    titles = list(dict.fromkeys(c["title"] for t in session.turns if t.role == Speaker.ASSISTANT for c in t.citations if c.get("title")))
    if titles:
        parts.append(phrases["answered_from"].format(", ".join(titles)))
    elif any(t.role == Speaker.ASSISTANT for t in session.turns):
        parts.append(phrases["not_answered"])
    if session.handoff_reason:
        reason = _HANDOFF_REASONS_KO.get(session.handoff_reason, session.handoff_reason) if language == KOREAN else session.handoff_reason
        parts.append(phrases["handed"].format(reason))
    last = session.turns[-1] if session.turns else None
    if last is not None and last.role == Speaker.CUSTOMER:
        parts.append(phrases["open"].format(phrases["quote"].format(last.content)))
    return " ".join(parts) or phrases["empty"]
