"""Language detection and Korean morphology, without a model beyond Kiwi's own."""

from __future__ import annotations

import pytest

from supportbot.core.language import detect_language, korean_search_terms, korean_terms, loanword_of


@pytest.mark.parametrize(("text", "language"), [
    ("비밀번호를 잊어버렸어요", "ko"),
    ("How do I reset my password?", "en"),
    ("Lumio 허브 펌웨어 업데이트가 안 돼요", "ko"),  # mixed script, Korean sentence
    ("My Lumio hub shows 오프라인", "en"),  # mixed script, English sentence
    ("ㅠㅠ 환불 언제 돼요", "ko"),  # compatibility jamo
    ("Lumio Plus 얼마예요?", "ko"),
    ("ＰＡＳＳＷＯＲＤ　ＲＥＳＥＴ", "en"),  # full-width Latin
    ("🙂🙂🙂", "und"),  # emoji only
    ("12345 !!!", "und"),
    ("", "und"),
])
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_korean_terms_drop_particles_endings_and_loose_jamo() -> None:
    assert korean_terms("비밀번호를 잊어버렸어요") == ["비밀", "번호", "잊"]
    laughing = korean_terms("ㅋㅋㅋ 환불 언제 돼요 ㅠㅠ")
    assert laughing[0] == "환불" and not any(set(term) & set("ㅋㅠ큐") for term in laughing)
    assert korean_terms("PayPal로 결제했어요") == ["paypal", "결제"]
    assert korean_terms("ＰａｙＰａｌ로") == ["paypal"]  # full-width folded first
    assert "펌웨어" in korean_terms("Lumio 허브의 펌웨어를 업데이트하는 방법")  # a product word kept whole


def test_search_terms_meet_however_the_compound_was_split() -> None:
    question = set(korean_search_terms("비밀번호를 잊어버렸어요"))
    passage = set(korean_search_terms("비밀번호 재설정 링크를 보내 드립니다"))
    assert {"비밀번호", "비밀", "번호"} <= question & passage
    assert korean_search_terms("🙂") == [] and korean_search_terms("") == []


def test_the_questions_language_goes_first_among_equally_relevant_passages() -> None:
    from services.retriever.knowledge_base import SearchHit, prefer_language

    def hit(document: str, language: str, dense: float) -> SearchHit:
        return SearchHit({"document_id": document, "language": language}, 1.0, dense)

    hits = [hit("ko/2fa", "ko", 0.26), hit("en/energy", "en", -0.01), hit("en/2fa", "en", 0.25), hit("und/table", "und", 0.2)]
    assert [h.chunk["document_id"] for h in prefer_language(hits, "en", 0.1)] == ["en/2fa", "ko/2fa", "en/energy", "und/table"]
    # Clearly more relevant in the other language: it stays first; one language only: untouched.
    far = [hit("ko/2fa", "ko", 0.60), hit("en/2fa", "en", 0.25)]
    assert prefer_language(far, "en", 0.1) == far
    assert prefer_language(hits[1:], "en", 0.1) == hits[1:] and prefer_language(hits, "und", 0.1) == hits


@pytest.mark.parametrize(
    ("hangul", "latin"),
    [("리브레오피스", "LibreOffice"), ("리브레오피스에서", "libreoffice"), ("드로우", "Draw"), ("포토샵", "Photoshop"),
     ("김프", "GIMP"), ("엑셀", "Excel"), ("인터넷", "internet"), ("이미지", "image"), ("넷플릭스", "Netflix")],
)
def test_a_loanword_meets_the_english_word_it_spells(hangul: str, latin: str) -> None:
    assert loanword_of(hangul, latin)


@pytest.mark.parametrize(
    ("hangul", "latin"),
    [("넷플릭스", "subscription"), ("버그", "page"), ("레이어", "layer"), ("셀", "cell"), ("비밀번호", "password"),
     ("리브레오피스", "2fa")],
)
def test_words_that_only_share_a_few_sounds_do_not(hangul: str, latin: str) -> None:
    # One syllable or one consonant ("셀", "레이어") would match too many English words by chance;
    # a soft g inside a word is J ("page" is 페이지, not 버그).
    assert not loanword_of(hangul, latin)
