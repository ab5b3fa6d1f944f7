"""The answer stage of a chat turn: from the retrieved sources to the text the customer reads,
in one of three modes (see chat.proto's AnswerMode). Model-free parts live in
`supportbot.answers`; this module drives the generator and decides the path.

    composer = AnswerComposer(settings, generator_stub)
    answer = Answer()
    async for text in composer.stream(question, sources, answer, mode=chat_pb2.ANSWER_MODE_VERIFIED):
        print(text, end="")          # sentence by sentence, each verified and cited
    answer.path, answer.citations    # ANSWER_PATH_VERIFIED, [Citation(index=1, ...)]
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

import grpc

from services.gateway.settings import GatewaySettings
from supportbot.answers.citations import citations_for
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
from supportbot.v1 import chat_pb2, common_pb2, generator_pb2, generator_pb2_grpc

log = logging.getLogger(__name__)
TRACER = tracer(__name__)


@dataclass
class Answer:
    """What the answer stage produced, filled in as it streams."""

    text: str = ""
    citations: list[common_pb2.Citation] = field(default_factory=list)
    path: int = chat_pb2.ANSWER_PATH_UNSPECIFIED
    grounded: bool = False
    finish: int = common_pb2.FINISH_REASON_NOT_GENERATED
    completion_tokens: int = 0
    first_text_at: float = 0.0
    sentences_kept: int = 0
    sentences_dropped: int = 0
    fallback_reason: str = ""
    # The text as it was streamed, piece by piece (the answer cache streams it again so).
    pieces: list[str] = field(default_factory=list)
    # The customer's language: fixed replies and the model's answer follow it.
    language: str = "en"

    def add(self, text: str) -> str:
        if not self.first_text_at:
            self.first_text_at = time.perf_counter()
        self.text += text
        self.pieces.append(text)
        return text


class AnswerComposer:
    def __init__(self, settings: GatewaySettings, generator: generator_pb2_grpc.GeneratorServiceStub) -> None:
        self.settings = settings
        self.generator = generator

    def fixed(self, answer: Answer, text: str, reason: str = "") -> str:
        """A fixed reply (not covered, unavailable, handoff): never grounded, never cited."""
        answer.path, answer.grounded, answer.fallback_reason = chat_pb2.ANSWER_PATH_FIXED_REPLY, False, reason
        answer.citations = []
        return answer.add(text)

    async def stream(
        self,
        question: str,
        sources: Sequence[common_pb2.Source],
        answer: Answer,
        *,
        mode: int,
        context_question: str = "",
        history: Sequence[common_pb2.ConversationMessage] = (),
        request_id: str = "",
        language: str = "en",
    ) -> AsyncIterator[str]:
        answer.language = language
        evidence = Evidence(sources)
        if mode == chat_pb2.ANSWER_MODE_EXTRACTIVE:
            for text in self.extractive(question, context_question, evidence, sources, answer, chat_pb2.ANSWER_PATH_EXTRACTIVE):
                yield text
            return
        request = generator_pb2.GenerateRequest(
            question=question, sources=sources, history=history, max_tokens=self.settings.max_answer_tokens,
            repetition_penalty=self.settings.answer_repetition_penalty, request_id=request_id, language=language,
        )
        generate = self._generative if mode == chat_pb2.ANSWER_MODE_GENERATIVE else self._verified
        async with aclosing(generate(request, question, context_question, evidence, sources, answer)) as texts:
            async for text in texts:
                yield text

    def quote(self, question: str, evidence: Evidence, context_question: str = "") -> ComposedAnswer:
        """The source sentences that answer the question (none when none is relevant enough)."""
        return extractive_answer(
            question, evidence, context=context_question, min_relevance=self.settings.extractive_min_relevance
        )

    def extractive(self, question, context_question, evidence, sources, answer, path, reason=""):  # type: ignore[no-untyped-def]
        composed = self.quote(question, evidence, context_question)
        if not composed.sentences:
            yield self.fixed(answer, self.settings.reply("ungrounded", answer.language), reason or "no source sentence answers the question")
            return
        answer.path, answer.grounded, answer.fallback_reason = path, True, reason
        answer.citations = citations_for(composed.sources, sources)
        for piece in pieces(composed.sentences):
            yield answer.add(piece)

    async def generate_text(self, request: generator_pb2.GenerateRequest) -> generator_pb2.GenerateResult:
        """A whole generation (agent assist); UNAVAILABLE when the generator cannot answer."""
        try:
            async for event in self.generator.Generate(request, timeout=self.settings.generation_timeout_s):
                if event.HasField("result"):
                    return event.result
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"the generator is not available right now ({exc.code().name}); try again") from exc
        raise Unavailable("the generator ended without an answer; try again")

    async def _generate(self, request: generator_pb2.GenerateRequest, answer: Answer) -> AsyncIterator[str]:
        """The generator's deltas; its result fills `answer`'s finish, tokens and citations."""
        # Not the current span: a generator closed early (the customer left) ends in another
        # context, where detaching a current span fails.
        span = TRACER.start_span("generation")
        try:
            stream = self.generator.Generate(request, timeout=self.settings.generation_timeout_s)
            async for event in stream:
                if event.HasField("delta"):
                    yield event.delta.text
                else:
                    answer.finish = event.result.finish_reason
                    answer.completion_tokens = event.result.completion_tokens
                    answer.citations = list(event.result.citations)
        finally:
            span.set_attribute("supportbot.completion_tokens", answer.completion_tokens)
            span.end()

    async def _generative(self, request, question, context_question, evidence, sources, answer):  # type: ignore[no-untyped-def]
        try:
            async with aclosing(self._generate(request, answer)) as deltas:
                async for delta in deltas:
                    yield answer.add(delta)
        except grpc.aio.AioRpcError as exc:
            log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
            reason = f"the generator failed ({exc.code().name})"
            if not answer.text:
                yield self.fixed(answer, self.settings.reply("unavailable", answer.language), reason)
                return
            # Cut off mid-answer: say so, rather than leave half a sentence standing as if whole.
            yield answer.add("\n\n" + self.settings.reply("interrupted", answer.language))
            answer.path, answer.grounded, answer.fallback_reason = chat_pb2.ANSWER_PATH_GENERATED, False, reason
            return
        answer.text = answer.text.strip()
        if not answer.text:
            yield self.fixed(answer, self.settings.reply("ungrounded", answer.language), "the model wrote nothing")
            return
        # Shown as written, but only called grounded when the sources support some of it (an
        # answer that ignored its sources, as an injected "ignore your sources" asks, is not).
        verifier = verify(evidence, answer.text, threshold=self.settings.support_threshold,
                          truncated=answer.finish == common_pb2.FINISH_REASON_LENGTH)
        answer.sentences_kept, answer.sentences_dropped = len(verifier.kept), verifier.dropped
        answer.path, answer.grounded = chat_pb2.ANSWER_PATH_GENERATED, bool(verifier.kept)
        if not answer.grounded:
            answer.fallback_reason = "no sentence of the generated answer is supported by the sources"

    async def _verified(self, request, question, context_question, evidence, sources, answer):  # type: ignore[no-untyped-def]
        verifier = StreamingVerifier(evidence, threshold=self.settings.support_threshold)
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
            for piece in show(verifier.finish(truncated=answer.finish == common_pb2.FINISH_REASON_LENGTH)):
                yield piece
        except grpc.aio.AioRpcError as exc:
            log.warning("generation failed", extra={"code": exc.code().name, "details": exc.details()})
            failure = f"the generator failed ({exc.code().name})"
        answer.sentences_kept, answer.sentences_dropped = len(verifier.kept), verifier.dropped
        if shown:
            answer.path, answer.grounded = chat_pb2.ANSWER_PATH_VERIFIED, True
            answer.citations = citations_for((n for s in shown for n in s.sources), sources)
            if answer.finish == common_pb2.FINISH_REASON_REPETITION:
                answer.fallback_reason = "the generation began repeating itself; the verified sentences before it are kept"
            return
        if not failure:
            failure = (
                "the generation repeated itself before any supported sentence"
                if answer.finish == common_pb2.FINISH_REASON_REPETITION
                else "no generated sentence was supported by the sources"
            )
        for text in self.extractive(question, context_question, evidence, sources, answer,
                                     chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK, failure):
            yield text
