"""Search highlights: every result's sentences scored against the query with the collection's
own embedder (one embedding call for the sentences of all results, cached), with offsets into
the result's text; Source.language always filled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.retriever.knowledge_base import (
    DocumentInput,
    Highlight,
    KnowledgeBase,
    sentence_spans,
)
from services.retriever.server import source_message
from tests.fakes import embedding_of, word_knowledge_base

pytestmark = pytest.mark.unit

REFUNDS = b"""# Refunds

## Timing
Card refunds take 5-10 business days after approval. PayPal refunds arrive within 24 hours.
Gift card refunds are instant.

## How to ask for one
1. Open Orders and choose the order.
2. Click Request refund.
"""
KOREAN = "# 환불\n\n## 기간\n카드 환불은 승인 후 영업일 기준 5-10일이 걸립니다. 페이팔 환불은 24시간 안에 도착합니다.\n".encode()


@pytest.fixture()
def word_kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = word_knowledge_base(tmp_path)
    kb.ingest("kb", DocumentInput(content=REFUNDS, source_path="refunds.md"))
    kb.ingest("kb", DocumentInput(content=KOREAN, source_path="refunds-ko.md"))
    yield kb
    kb.store.close()


def test_every_result_carries_its_sentences_scored_against_the_query(word_kb: KnowledgeBase) -> None:
    query = "PayPal refunds arrive within 24 hours."
    outcome = word_kb.search(query, collection="kb", top_k=5, score_threshold=-1, highlights=True)
    assert outcome.hits and outcome.highlight_ms > 0
    vector = np.asarray(embedding_of(query))
    for hit in outcome.hits:
        text = hit.chunk["text"]
        assert hit.highlights, hit.chunk["chunk_id"]
        for highlight in hit.highlights:
            assert text[highlight.start:highlight.end] == highlight.text
            assert highlight.score == pytest.approx(float(vector @ np.asarray(embedding_of(highlight.text))), abs=1e-5)
        assert [h.start for h in hit.highlights] == sorted(h.start for h in hit.highlights)
    timing = next(h for h in outcome.hits if "PayPal" in h.chunk["text"])
    best = max(timing.highlights, key=lambda h: h.score)
    assert best.text == "PayPal refunds arrive within 24 hours." and best.score == pytest.approx(1.0, abs=1e-5)
    assert [h.text for h in timing.highlights] == [
        "Card refunds take 5-10 business days after approval.", "PayPal refunds arrive within 24 hours.", "Gift card refunds are instant.",
    ]


def test_sentences_of_all_results_are_embedded_once(word_kb: KnowledgeBase) -> None:
    embedder = word_kb.embedder_for("kb")
    embedder.embedded.clear()
    word_kb.search("refund timing", collection="kb", top_k=5, score_threshold=-1, highlights=True)
    first = list(embedder.embedded)
    assert first and len(first) == len(set(first))
    embedder.embedded.clear()
    again = word_kb.search("how long do refunds take", collection="kb", top_k=5, score_threshold=-1, highlights=True)
    sentences = {h.text for hit in again.hits for h in hit.highlights}
    assert sentences and not sentences & set(embedder.embedded)  # every sentence cached
    # What it did embed are single words: "long", which no passage uses, and the passages' words
    # it is compared with (KnowledgeBase.nearest_words), cached the same way.
    assert [t.term for t in again.unknown_terms] == ["long"] and all(" " not in t for t in embedder.embedded)


def test_without_the_option_no_sentence_is_embedded(word_kb: KnowledgeBase) -> None:
    embedder = word_kb.embedder_for("kb")
    embedder.embedded.clear()
    hits = word_kb.search("refund timing", collection="kb", top_k=5, score_threshold=-1).hits
    assert hits and all(h.highlights == [] for h in hits) and embedder.embedded == []


def test_korean_and_list_items_are_split_into_units() -> None:
    text = "카드 환불은 승인 후 영업일 기준 5-10일이 걸립니다. 페이팔 환불은 24시간 안에 도착합니다.\n1. Open Orders.\n2. Click Request refund."
    pieces = [text[a:b] for a, b in sentence_spans(text)]
    assert pieces == ["카드 환불은 승인 후 영업일 기준 5-10일이 걸립니다.", "페이팔 환불은 24시간 안에 도착합니다.",
                      "1. Open Orders.", "2. Click Request refund."]


def test_wrapped_sentences_keep_offsets_into_the_text() -> None:
    text = "Refunds take five\nbusiness days. Then\nthey arrive."
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["Refunds take five\nbusiness days.", "Then\nthey arrive."]


def test_source_message_fills_language_and_highlights(word_kb: KnowledgeBase) -> None:
    hit = word_kb.search("카드 환불", collection="kb", top_k=5, score_threshold=-1, highlights=True).hits
    korean = next(h for h in hit if "카드" in h.chunk["text"])
    message = source_message(korean.chunk, korean.score, korean.dense_score, korean.highlights)
    assert message.language == "ko"
    assert [(h.text, h.start, h.end) for h in message.highlights] == [(h.text, h.start, h.end) for h in korean.highlights]
    bare = source_message({"text": "x"}, 0.1, 0.1)
    assert bare.language == "und" and list(bare.highlights) == []
    assert Highlight("a", 0.5, 0, 1).score == 0.5
