"""Language detection and Korean morphology, without a model beyond Kiwi's own."""

from __future__ import annotations

import pytest

from supportbot.core.language import detect_language, korean_search_terms, korean_terms


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
