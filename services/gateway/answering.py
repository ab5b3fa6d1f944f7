"""The answer stage of a chat turn: from the retrieved sources to the text the customer reads,
in one of three modes (see chat.proto's AnswerMode). Model-free parts live in
`supportbot.answers`; this module drives the generator and decides the path.

    composer = AnswerComposer(settings, Generator(generator_stub, settings.generation_timeout_s))
    turn = TurnContext(ChatRequest(question), question, AnswerMode.VERIFIED, sources=sources)
    async for text in composer.stream(turn):
        print(text, end="")                    # sentence by sentence, each verified and cited
    turn.answer.path, turn.answer.citations    # AnswerPath.VERIFIED, [Citation(index=1, ...)]
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import aclosing

import grpc

from services.gateway.backends import Generator
from services.gateway.domain import (
    Answer,
    AnswerMode,
    AnswerPath,
    FinishReason,
    GenerationRequest,
    GenerationResult,
)
from services.gateway.pipeline.context import TurnContext
from services.gateway.settings import GatewaySettings
from supportbot.answers.answerability import Answerability, UnknownTerm, assess
from supportbot.answers.citations import article_citations
from supportbot.answers.compose import (
    AnswerSentence,
    ComposedAnswer,
    StreamingVerifier,
    extractive_answer,
    joiner,
    pieces,
    verify,
)
from supportbot.answers.grounding import Evidence
from supportbot.core.errors import Unavailable
from supportbot.core.telemetry import tracer

log = logging.getLogger(__name__)
TRACER = tracer(__name__)


class AnswerComposer:
    def __init__(self, settings: GatewaySettings, generator: Generator) -> None:
        self.settings = settings
        self.generator = generator

    def fixed(self, answer: Answer, text: str, reason: str = "") -> str:
        """A fixed reply (not covered, unavailable, handoff): never grounded, never cited."""
        answer.path, answer.grounded, answer.fallback_reason = AnswerPath.FIXED_REPLY, False, reason
        answer.citations = []
        return answer.add(text)

    async def stream(self, turn: TurnContext) -> AsyncGenerator[str, None]:
        """The answer to the turn's message from its sources, in the turn's mode, piece by piece;
        `turn.answer` says how it was made."""
        answer = turn.answer
        answer.language = turn.language
        evidence = Evidence(turn.sources)
        composed = self.quote(turn.question, evidence, turn.follows)
        decision = self.answerability(turn.question, evidence, composed, turn.follows, turn.unknown_terms)
        if not decision.answerable:
            # Decided before any generation: a question the help center does not cover gets
            # the "not covered" reply in every mode, never a confident quote or a model's guess.
            yield self.fixed(answer, self.settings.fixed_replies.reply("ungrounded", answer.language), decision.reason)
            return
        if turn.mode == AnswerMode.EXTRACTIVE:
            for text in self.extractive(turn, evidence, AnswerPath.EXTRACTIVE):
                yield text
            return
        request = GenerationRequest(
            question=turn.question, sources=list(turn.sources), history=list(turn.history),
            max_tokens=self.settings.answers.max_answer_tokens, repetition_penalty=self.settings.answers.answer_repetition_penalty,
            request_id=turn.turn_id, language=turn.language, collection=turn.active_session.collection,
        )
        generate = self._generative if turn.mode == AnswerMode.GENERATIVE else self._verified
        async with aclosing(generate(turn, evidence, request)) as texts:
            async for text in texts:
                yield text

    def quote(self, question: str, evidence: Evidence, context_question: str = "") -> ComposedAnswer:
        """The source sentences that answer the question (none when none is relevant enough)."""
        return extractive_answer(
            question, evidence, context=context_question, min_relevance=self.settings.answers.extractive_min_relevance
        )

    def answerability(
        self, question: str, evidence: Evidence, composed: ComposedAnswer, context_question: str = "",
        unknown_terms: Sequence[UnknownTerm] = (),
    ) -> Answerability:
        """Whether the sources answer the question at all (supportbot/answers/answerability.py);
        `unknown_terms`: the searched question's words the collection never uses (retriever)."""
        if not self.settings.answers.answerability_enabled:
            return Answerability(True, 1.0, 0.0, None, None)
        return assess(
            question, evidence, support=composed.relevance, context=context_question,
            thresholds=self.settings.answers.answerability_thresholds,
            unknown_terms=unknown_terms, unknown_term_weight=self.settings.answers.answerability_unknown_term_weight,
            unknown_term_closeness=self.settings.answers.answerability_unknown_term_closeness,
        )

    def extractive(self, turn: TurnContext, evidence: Evidence, path: AnswerPath, reason: str = "") -> Iterator[str]:
        """The source sentences that answer the turn's message, quoted and cited."""
        answer = turn.answer
        composed = self.quote(turn.question, evidence, turn.follows)
        if not composed.sentences:
            yield self.fixed(answer, self.settings.fixed_replies.reply("ungrounded", answer.language), reason or "no source sentence answers the question")
            return
        answer.path, answer.grounded, answer.fallback_reason = path, True, reason
        answer.citations = article_citations(composed.articles, turn.sources)
        for piece in pieces(composed.sentences):
            yield answer.add(piece)

    async def generate_text(self, request: GenerationRequest) -> GenerationResult:
        """A whole generation (agent assist); UNAVAILABLE when the generator cannot answer."""
        try:
            async with aclosing(self.generator.stream(request)) as events:
                async for event in events:
                    if isinstance(event, GenerationResult):
                        return event
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"the generator is not available right now ({exc.code().name}); try again") from exc
        raise Unavailable("the generator ended without an answer; try again")

    async def _generate(self, request: GenerationRequest, answer: Answer) -> AsyncGenerator[str, None]:
        """The generator's deltas; its result fills `answer`'s finish, tokens and citations."""
        # Not the current span: a generator closed early (the customer left) ends in another
        # context, where detaching a current span fails.
        span = TRACER.start_span("generation")
        try:
            async with aclosing(self.generator.stream(request)) as events:
                async for event in events:
                    if isinstance(event, str):
                        yield event
                    else:
                        answer.finish = event.finish
                        answer.completion_tokens = event.completion_tokens
                        answer.citations = list(event.citations)
                        answer.adapter = event.adapter
        finally:
            span.set_attribute("supportbot.completion_tokens", answer.completion_tokens)
            span.end()

    async def _generative(
        self, turn: TurnContext, evidence: Evidence, request: GenerationRequest
    ) -> AsyncGenerator[str, None]:
        answer = turn.answer
        try:
            async with aclosing(self._generate(request, answer)) as deltas:
                async for delta in deltas:
                    yield answer.add(delta)
        except grpc.aio.AioRpcError as exc:
            log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
            reason = f"the generator failed ({exc.code().name})"
            if not answer.text[len(turn.case_reply):]:
                yield self.fixed(answer, self.settings.fixed_replies.reply("unavailable", answer.language), reason)
                return
            # Cut off mid-answer: say so, rather than leave half a sentence standing as if whole.
            yield answer.add("\n\n" + self.settings.fixed_replies.reply("interrupted", answer.language))
            answer.path, answer.grounded, answer.fallback_reason = AnswerPath.GENERATED, False, reason
            return
        answer.text = answer.text.strip()
        written = answer.text[len(turn.case_reply):]  # after an action's reply to the case part, if any
        if not written.strip():
            yield self.fixed(answer, self.settings.fixed_replies.reply("ungrounded", answer.language), "the model wrote nothing")
            return
        # Shown as written, but only called grounded when the sources support some of it (an
        # answer that ignored its sources, as an injected "ignore your sources" asks, is not).
        verifier = verify(evidence, written, threshold=self.settings.answers.support_threshold,
                          truncated=answer.finish == FinishReason.LENGTH)
        answer.sentences_kept, answer.sentences_dropped = len(verifier.kept), verifier.dropped
        answer.path, answer.grounded = AnswerPath.GENERATED, bool(verifier.kept)
        if not answer.grounded:
            answer.fallback_reason = "no sentence of the generated answer is supported by the sources"

    async def _verified(
        self, turn: TurnContext, evidence: Evidence, request: GenerationRequest
    ) -> AsyncGenerator[str, None]:
        answer = turn.answer
        verifier = StreamingVerifier(evidence, threshold=self.settings.answers.support_threshold)
        shown: list[AnswerSentence] = []

        def show(sentences: list[AnswerSentence]) -> list[str]:
            texts = []
            for sentence in sentences:
                texts.append(answer.add(joiner(shown, sentence) + sentence.rendered()))
                shown.append(sentence)
            return texts

        failure = ""
        try:
            async with aclosing(self._generate(request, answer)) as deltas:
                async for delta in deltas:
                    for piece in show(verifier.feed(delta)):
                        yield piece
            for piece in show(verifier.finish(truncated=answer.finish == FinishReason.LENGTH)):
                yield piece
        except grpc.aio.AioRpcError as exc:
            log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
            failure = f"the generator failed ({exc.code().name})"
        answer.sentences_kept, answer.sentences_dropped = len(verifier.kept), verifier.dropped
        if shown:
            answer.path, answer.grounded = AnswerPath.VERIFIED, True
            shown_numbers = {n for s in shown for n in s.sources}
            shown_articles = (a for a in verifier.numbering.articles if a.number in shown_numbers)
            answer.citations = article_citations(shown_articles, turn.sources)
            if answer.finish == FinishReason.REPETITION:
                answer.fallback_reason = "the generation began repeating itself; the verified sentences before it are kept"
            return
        if not failure:
            failure = (
                "the generation repeated itself before any supported sentence"
                if answer.finish == FinishReason.REPETITION
                else "no generated sentence was supported by the sources"
            )
        for text in self.extractive(turn, evidence, AnswerPath.EXTRACTIVE_FALLBACK, failure):
            yield text
