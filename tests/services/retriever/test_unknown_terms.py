"""Words the help center never uses: the retriever's Search reports the question's content words
that no passage of the collection is indexed by (its BM25 vocabulary; Korean by morphology), each
with the returned passages' word closest in meaning; the gateway carries them from the wire to
the answerability decision, which weighs a word by how far from anything the passages say it is
and names it in its reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.gateway import convert
from services.gateway.answering import AnswerComposer
from services.gateway.domain import AnswerMode, AnswerPath, ChatRequest
from services.gateway.pipeline.context import TurnContext
from services.gateway.settings import GatewaySettings
from services.retriever.embedding import SparseEmbedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.server import RetrieverServicer
from supportbot.answers.answerability import (
    UnknownTerm,
    assess,
    unknown_in_question,
    unknown_penalty,
)
from supportbot.answers.grounding import Evidence, Passage
from supportbot.v1 import common_pb2, retriever_pb2
from tests.fakes import word_knowledge_base

pytestmark = pytest.mark.unit

RESET = b"""# Reset your password

Tap Forgot password on the sign-in screen. We send a reset link to your email within 5 minutes.
"""
SUBSCRIPTION = b"""# Cancel your subscription

Open Account, then Subscription, and choose Cancel. Your plan stays active until the end of the month.
"""
KOREAN = "# 비밀번호 재설정\n\n로그인 화면에서 비밀번호 찾기를 누르세요. 이메일로 재설정 링크를 보내 드립니다.\n".encode()
# A partly translated page: the product's name stays in English.
PARTLY_TRANSLATED = "# 도형 색 바꾸기\n\nLibreOffice Draw에서 도형을 선택하고 영역 색을 고릅니다. 도형 크기도 바꿀 수 있습니다.\n".encode()


@pytest.fixture()
def help_center(tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = word_knowledge_base(tmp_path)
    for name, content in (("reset.md", RESET), ("subscription.md", SUBSCRIPTION), ("reset-ko.md", KOREAN),
                          ("shapes-ko.md", PARTLY_TRANSLATED)):
        kb.ingest("kb", DocumentInput(content=content, source_path=name))
    kb.finish_ingest("kb")
    yield kb
    kb.store.close()


def test_content_words_are_read_as_bm25_indexes_them() -> None:
    sparse = SparseEmbedder()
    english = [word for word, _ in sparse.word_terms("How do I cancel my Netflix subscription?")]
    assert english == ["cancel", "netflix", "subscription"]  # stop words have no BM25 term
    korean = [word for word, _ in sparse.word_terms("넷플릭스 구독을 취소하려면?")]
    assert korean[:3] == ["넷플릭스", "구독", "취소"]  # particles and endings off


def test_words_no_passage_uses_are_unknown(help_center: KnowledgeBase) -> None:
    assert help_center.unknown_terms("kb", "How do I cancel my Netflix subscription?") == ["netflix"]
    # Inflections meet their stem; a typo is unknown (the decision must tolerate it).
    assert help_center.unknown_terms("kb", "I forgot my passwords") == []
    assert help_center.unknown_terms("kb", "I forgot my pasword") == ["pasword"]
    # Korean by morphology: "비밀번호를" meets "비밀번호"; the unknown name is reported whole.
    assert help_center.unknown_terms("kb", "비밀번호를 재설정하려면") == []
    assert help_center.unknown_terms("kb", "넷플릭스 비밀번호를 재설정하려면") == ["넷플릭스"]
    # Only the passages a filter selects count as the vocabulary.
    assert help_center.unknown_terms("kb", "cancel my subscription", {"document_id": "reset"}) == ["cancel", "subscription"]


def test_search_reports_them_and_the_gateway_reads_them_off_the_wire(help_center: KnowledgeBase) -> None:
    query = "how do I cancel my Netflix subscription"
    outcome = help_center.search(query, collection="kb", score_threshold=-1)
    [netflix] = outcome.unknown_terms
    assert netflix.term == "netflix"
    # Its closest word among the returned passages' words, by the query's embedder (here one
    # whose vectors are hashes of the words, so every other word is about as far).
    vocabulary = {w for hit in outcome.hits for w, _ in help_center.sparse.word_terms(f"{hit.chunk['title']} {hit.chunk['text']}")}
    assert netflix.nearest_word in vocabulary and -1 <= netflix.nearest_similarity < 0.9
    request = retriever_pb2.SearchRequest(query=query, collection="kb", score_threshold=-1)
    response = asyncio.run(RetrieverServicer(help_center).Search(request, None))  # type: ignore[arg-type]
    assert [t.term for t in response.unknown_terms] == ["netflix"]
    assert convert.search_result(response).unknown_terms == [
        UnknownTerm("netflix", netflix.nearest_word, pytest.approx(netflix.nearest_similarity, abs=1e-6))  # type: ignore[arg-type]
    ]


def test_a_korean_spelling_of_an_english_word_of_the_collection_is_that_word(help_center: KnowledgeBase) -> None:
    # "리브레오피스" is no word of the collection, which writes "LibreOffice": its nearest word is
    # that one, as close as a word can be, so answerability does not count it against an answer
    # (whole, or in the pieces the analyzer cuts an unknown name into: 리브레 + 오피스).
    outcome = help_center.search("포토샵 없이 리브레오피스에서 도형 색 바꾸려면? 넷플릭스도 돼요?", collection="kb", score_threshold=-1)
    found = {t.term: t for t in outcome.unknown_terms}
    name = [t for term, t in found.items() if term in "리브레오피스"]
    assert name and all(t.nearest_word == "libreoffice" and t.nearest_similarity == 1.0 for t in name)
    # A name the collection never writes in any script stays unknown, compared by meaning.
    assert found["넷플릭스"].nearest_similarity < 0.9 and found["포토샵"].nearest_similarity < 0.9
    # A word the collection learns later is read again (its Latin words follow its points).
    help_center.ingest("kb", DocumentInput(content=b"# Streaming\n\nNetflix is not part of the plan.\n", source_path="n.md"))
    again = {t.term: t for t in help_center.search("넷플릭스 도형?", collection="kb", score_threshold=-1).unknown_terms}
    assert again["넷플릭스"].nearest_word == "netflix" and again["넷플릭스"].nearest_similarity == 1.0


def test_a_new_version_with_as_many_chunks_is_read_again(help_center: KnowledgeBase) -> None:
    assert {t.term: t for t in help_center.search("리브레오피스 도형?", collection="kb", score_threshold=-1).unknown_terms}
    # The same page, one chunk as before, now naming another product.
    renamed = PARTLY_TRANSLATED.replace(b"LibreOffice Draw", b"OpenOffice Draw")
    help_center.ingest("kb", DocumentInput(content=renamed, source_path="shapes-ko.md"))
    help_center.finish_ingest("kb")
    found = {t.term: t for t in help_center.search("오픈오피스 도형?", collection="kb", score_threshold=-1).unknown_terms}
    name = [t for term, t in found.items() if term in "오픈오피스"]
    assert name and all(t.nearest_word == "openoffice" and t.nearest_similarity == 1.0 for t in name)


def test_a_verb_stem_is_no_loanword(help_center: KnowledgeBase) -> None:
    # "빨갛" (of "빨간") has the consonants of "black"; only nouns are read as loanwords.
    help_center.ingest("kb", DocumentInput(content=b"# Colors\n\nText can be black or white.\n", source_path="c.md"))
    outcome = help_center.search("빨간 도형은요?", collection="kb", score_threshold=-1)
    assert all(t.nearest_similarity < 1.0 for t in outcome.unknown_terms)


SUBSCRIPTION_PASSAGE = "Open Account, then Subscription, and choose Cancel. Your plan stays active until the end of the month."
NETFLIX = UnknownTerm("netflix", "subscription", 0.2)  # nothing the passages say is close


def test_an_unknown_word_with_nothing_close_counts_against_an_answer() -> None:
    close = Evidence([Passage("Cancel your subscription", SUBSCRIPTION_PASSAGE, dense_score=0.6)])
    question = "how do I cancel my Netflix subscription?"
    assert assess(question, close, unknown_terms=[NETFLIX], unknown_term_weight=0).answerable  # close in meaning
    declined = assess(question, close, unknown_terms=[NETFLIX], unknown_term_weight=3, unknown_term_closeness=0.45)
    assert not declined.answerable and declined.unknown_terms == ("netflix",)
    assert "never uses: netflix" in declined.reason
    # A word the help center says otherwise (a typo, a synonym) has a close word: no penalty.
    typo = UnknownTerm("subscripton", "subscription", 0.8)
    kept = assess("how do I cancel my subscripton", close, unknown_terms=[typo], unknown_term_weight=3, unknown_term_closeness=0.45)
    assert kept.answerable and kept.unknown_terms == ("subscripton",)
    assert unknown_penalty([typo], 0.45) == 0 and unknown_penalty([NETFLIX], 0.45) == pytest.approx(0.25)


def test_only_the_questions_own_words_without_digits_count() -> None:
    # A follow-up is searched with the question it follows; that question's words are not its own.
    korean_word, parent = UnknownTerm("korean"), UnknownTerm("netflix")
    assert unknown_in_question("and in Korean?", [parent, korean_word]) == (korean_word,)
    netflix, refund = UnknownTerm("넷플릭스"), UnknownTerm("환불")
    assert unknown_in_question("넷플릭스 구독을 취소하려면?", [netflix, refund]) == (netflix,)
    # A code or a model number is no topic the embedder can place.
    assert unknown_in_question("how do I set up 2FA on Windows 11", [UnknownTerm("2fa"), UnknownTerm("11")]) == ()


def test_the_composer_weighs_the_turns_unknown_words() -> None:
    source = common_pb2.Source(document_id="subscription", title="Cancel your subscription", text=SUBSCRIPTION_PASSAGE,
                               dense_score=0.6, score=0.03)
    question = "how do I cancel my Netflix subscription?"

    def answer(weight: float) -> TurnContext:
        composer = AnswerComposer(GatewaySettings(answerability_unknown_term_weight=weight), None)  # type: ignore[arg-type]
        turn = TurnContext(ChatRequest(question), question, AnswerMode.EXTRACTIVE, sources=[source], unknown_terms=[NETFLIX])

        async def run() -> None:
            async for _ in composer.stream(turn):
                pass

        asyncio.run(run())
        return turn

    assert answer(0.0).answer.path == AnswerPath.EXTRACTIVE
    declined = answer(3.0).answer
    assert declined.path == AnswerPath.FIXED_REPLY and "netflix" in declined.fallback_reason
