"""The answer stage: the text the customer reads. A cached answer streamed again, a fixed reply
when nothing was found (or the retriever is down), else the composer's answer in the turn's mode
(answering.py), led by a note when it quotes sources in another language than the customer's."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from services.gateway.answering import AnswerComposer
from services.gateway.domain import AnswerPath, AnswerText, FinishReason, TurnEvent
from services.gateway.pipeline.context import TurnContext
from services.gateway.settings import GatewaySettings
from supportbot.answers.sources import Citation, Source
from supportbot.core.language import LANGUAGES, detect_language


def source_languages(sources: Sequence[Source], cited: Sequence[Citation]) -> list[str]:
    """The languages of the sources an answer cites (of all retrieved ones when it cites none
    yet): each source's language as told at ingest, else as read from its text."""
    chunks = {c.chunk_id for c in cited}
    quoted = [s for s in sources if s.chunk_id in chunks] or list(sources)
    languages = [s.language if s.language in LANGUAGES else detect_language(s.text) for s in quoted]
    return [language for language in languages if language in LANGUAGES]


class AnswerQuestion:
    name = "answer"

    def __init__(self, settings: GatewaySettings, composer: AnswerComposer) -> None:
        self.settings = settings
        self.composer = composer

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        if (entry := turn.reused_from) is not None and turn.cached is not None:
            answer = turn.answer
            answer.path, answer.grounded, answer.citations = AnswerPath(entry.path), True, turn.cached.citations
            answer.finish, answer.sentences_kept = FinishReason(entry.finish), entry.sentences_kept
            for piece in turn.cached.pieces:
                yield AnswerText(answer.add(piece))
            return
        if turn.retrieval_failed or not turn.sources:
            reply, reason = (
                (self.settings.fixed_replies.reply("unavailable", turn.language), "the retriever is unavailable") if turn.retrieval_failed
                else (self.settings.fixed_replies.reply("ungrounded", turn.language), "no source matched the question")
            )
            yield AnswerText(self.composer.fixed(turn.answer, reply, reason))
            return
        texts = self.composer.stream(turn)
        noted = False
        async with aclosing(texts):
            async for text in texts:
                if not noted:
                    noted = True
                    note = self.source_note(turn)
                    if note:
                        yield AnswerText(note)
                yield AnswerText(text)

    def source_note(self, turn: TurnContext) -> str:
        """Before an answer that quotes the help center in another language than the customer
        wrote in, a line saying so in the customer's language ("From our English help center:");
        it becomes the answer's first piece, so every channel shows it and the cache keeps it."""
        answer = turn.answer
        if not answer.grounded and answer.path == AnswerPath.FIXED_REPLY:
            return ""
        note = self.settings.fixed_replies.source_note(turn.language, source_languages(turn.sources, answer.citations))
        if not note:
            return ""
        # Before the text already added: the note leads what is stored and what the cache replays
        # (after an action's reply to the case part of the message, when there is one).
        piece, lead = note + "\n\n", turn.case_reply
        answer.text = lead + piece + answer.text[len(lead):]
        answer.pieces.insert(1 if lead else 0, piece)
        return piece
