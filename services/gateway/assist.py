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
from services.gateway.handoff import asks_for_person
from services.gateway.sessions import SessionRecord
from supportbot.answers.citations import citations_for
from supportbot.answers.compose import StreamingVerifier, render, verify
from supportbot.answers.grounding import Evidence, Passage
from supportbot.conversation import Speaker
from supportbot.core.language import ENGLISH, KOREAN, detect_language
from supportbot.v1 import chat_pb2, common_pb2, generator_pb2

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
    said = " ".join(t.content for t in session.turns if t.role == Speaker.CUSTOMER)
    language = detect_language(said)
    return language if language in _SUMMARY_PHRASES else ENGLISH


def transcript(session: SessionRecord, last: int = 30) -> str:
    """The part of the conversation a summary covers."""
    lines = [f"{_LABELS[t.role]}: {t.content}" for t in session.turns if t.role in _LABELS]
    return "\n".join(lines[-last:])


@dataclass
class Draft:
    text: str
    path: int
    source_numbers: list[int] = field(default_factory=list)

    def message(self, sources: Sequence[common_pb2.Source]) -> chat_pb2.SuggestedReply:
        citations = citations_for(self.source_numbers, sources)
        return chat_pb2.SuggestedReply(
            text=self.text, citations=citations, answer_path=self.path,
            sources=[sources[c.index - 1] for c in citations],
        )


class Assistant:
    def __init__(self, composer: AnswerComposer) -> None:
        self.composer = composer
        self.settings = composer.settings

    async def drafts(
        self, question: str, sources: Sequence[common_pb2.Source], history: Sequence[common_pb2.ConversationMessage], count: int,
        language: str = ENGLISH,
    ) -> list[Draft]:
        """Up to `count` different grounded drafts: the greedy verified reply, the quoted sources,
        then sampled verified replies. Without sources, none: there is nothing to rest on."""
        if not sources:
            return []
        evidence = Evidence(sources)
        temperatures = [0.0, *_DRAFT_TEMPERATURES][: max(count - 1, 1)]
        generated = await asyncio.gather(
            *(self._verified_draft(question, sources, history, evidence, t, language) for t in temperatures)
        )
        quoted = self.composer.quote(question, evidence)
        extractive = Draft(quoted.text, chat_pb2.ANSWER_PATH_EXTRACTIVE, quoted.sources) if quoted.sentences else None
        ordered = [d for d in [generated[0], extractive, *generated[1:]] if d is not None]
        unique: dict[str, Draft] = {}
        for draft in ordered:
            unique.setdefault(draft.text, draft)
        return list(unique.values())[:count]

    async def _verified_draft(self, question, sources, history, evidence, temperature, language) -> Draft | None:  # type: ignore[no-untyped-def]
        request = generator_pb2.GenerateRequest(
            question=question, sources=sources, history=history, temperature=temperature, language=language,
            max_tokens=self.settings.suggestion_max_tokens, repetition_penalty=self.settings.answer_repetition_penalty,
        )
        result = await self.composer.generate_text(request)
        verifier = self._verify(evidence, result)
        if not verifier.kept:
            return None
        return Draft(render(verifier.kept), chat_pb2.ANSWER_PATH_VERIFIED, [n for s in verifier.kept for n in s.sources])

    async def summary(self, session: SessionRecord) -> tuple[str, int]:
        """(summary, answer path): the model's sentences that the conversation supports, else a
        summary composed from the conversation's own words."""
        conversation = transcript(session)
        language = conversation_language(session)
        request = generator_pb2.GenerateRequest(
            messages=[
                common_pb2.ConversationMessage(
                    role=common_pb2.ROLE_SYSTEM,
                    content="You summarize customer-support conversations for the agent taking over.",
                ),
                common_pb2.ConversationMessage(
                    role=common_pb2.ROLE_CUSTOMER,
                    content="Summarize this conversation in two or three sentences: what the customer needs, "
                    f"what was already answered, and what is still open.{_SUMMARY_PHRASES[language]['instruction']}"
                    f"\n\n{conversation}",
                ),
            ],
            max_tokens=SUMMARY_MAX_TOKENS, repetition_penalty=self.settings.answer_repetition_penalty,
        )
        result = await self.composer.generate_text(request)
        verifier = self._verify(Evidence([Passage("conversation", conversation)]), result)
        if verifier.kept:
            return " ".join(s.text for s in verifier.kept), chat_pb2.ANSWER_PATH_VERIFIED
        return extractive_summary(session, language), chat_pb2.ANSWER_PATH_EXTRACTIVE


    def _verify(self, evidence: Evidence, result: generator_pb2.GenerateResult) -> StreamingVerifier:
        return verify(evidence, result.text, threshold=self.settings.support_threshold,
                      truncated=result.finish_reason == common_pb2.FINISH_REASON_LENGTH)


def extractive_summary(session: SessionRecord, language: str = ENGLISH) -> str:
    """What the customer asked, which articles the bot answered from, whether a person was asked
    for and what is still open, in the conversation's own words (and the customer's language)."""
    phrases = _SUMMARY_PHRASES.get(language, _SUMMARY_PHRASES[ENGLISH])
    asked = [t.content for t in session.turns if t.role == Speaker.CUSTOMER]
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
