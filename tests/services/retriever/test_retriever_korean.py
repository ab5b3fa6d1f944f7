"""Korean and mixed-language collections in the retriever, with the real models: the model a
collection records, Korean BM25, cross-lingual search, and the question's language first."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.retriever.embedding import MULTILINGUAL_USE, SparseEmbedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import EdgeStore
from supportbot.client import documents_from_paths
from supportbot.sample import HELPCENTER, KOREAN_HELPCENTER

pytestmark = pytest.mark.integration

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def make_kb(tmp_path: Path, embedders, **settings) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    config = RetrieverSettings(data_dir=tmp_path, **settings)
    return KnowledgeBase(config, EdgeStore(config.resolved_index_path()), embedders.get(""), SparseEmbedder(), embedders)


def ingest_folder(kb: KnowledgeBase, collection: str, folder: Path, prefix: str = "") -> None:
    for path, document in documents_from_paths([folder]):
        outcome = kb.ingest(collection, DocumentInput(content=document.content, source_path=str(path), document_id=prefix + path.stem))
        assert outcome.status == "added", outcome.error
    kb.finish_ingest(collection)


def top_documents(kb: KnowledgeBase, query: str, collection: str, **options) -> list[str]:  # type: ignore[no-untyped-def]
    return list(dict.fromkeys(h.chunk["document_id"] for h in kb.search(query, collection=collection, **options).hits))


def test_a_korean_collection_gets_the_multilingual_model_and_answers_korean_questions(tmp_path, embedders) -> None:  # type: ignore[no-untyped-def]
    kb = make_kb(tmp_path, embedders)
    ingest_folder(kb, "ko", KOREAN_HELPCENTER)
    ingest_folder(kb, "en", HELPCENTER)
    assert kb.model_of("ko") == MULTILINGUAL_USE and kb.model_of("en") == MINILM
    assert {row[0]: row[3] for row in kb.stats()} == {"en": MINILM, "ko": MULTILINGUAL_USE}
    # The example: no result at all before.
    assert top_documents(kb, "비밀번호를 잊어버렸어요", "ko")[0] == "reset-password"
    assert top_documents(kb, "비밀번호를 잊어버렸어요", "ko", mode="sparse")[0] == "reset-password"
    assert top_documents(kb, "환불 언제 들어와요?", "ko")[0] == "refund-timing"
    chunk = kb.search("환불", collection="ko").hits[0].chunk
    assert chunk["language"] == "ko" and chunk["embedding_model"] == MULTILINGUAL_USE
    # The recorded model is used after a restart, whatever the default is now.
    kb.store.close()
    reopened = make_kb(tmp_path, embedders)
    assert reopened.model_of("ko") == MULTILINGUAL_USE
    assert top_documents(reopened, "2단계 인증 설정", "ko")[0] == "two-factor-authentication"


def test_a_collection_refuses_a_second_model(tmp_path, embedders) -> None:  # type: ignore[no-untyped-def]
    kb = make_kb(tmp_path, embedders)
    ingest_folder(kb, "kb", KOREAN_HELPCENTER / "account")
    kb.store.close()
    conflicting = make_kb(tmp_path, embedders, collection_models={"kb": MINILM})
    outcome = conflicting.ingest("kb", DocumentInput(content=b"# New\n\nNew text.", source_path="new.md"))
    assert outcome.status == "failed" and MULTILINGUAL_USE in outcome.error and "new collection" in outcome.error
    assert conflicting.stats("kb")[0][1] == len(list((KOREAN_HELPCENTER / "account").glob("*.md")))  # nothing lost


def test_cross_lingual_and_the_questions_language_first(tmp_path, embedders) -> None:  # type: ignore[no-untyped-def]
    kb = make_kb(tmp_path, embedders, collection_models={"mixed": MULTILINGUAL_USE, "english-use": MULTILINGUAL_USE})
    ingest_folder(kb, "mixed", HELPCENTER, "en/")
    ingest_folder(kb, "mixed", KOREAN_HELPCENTER, "ko/")
    english = top_documents(kb, "How do I reset my password?", "mixed")
    korean = top_documents(kb, "비밀번호를 어떻게 재설정하나요?", "mixed")
    assert english[0] == "en/reset-password" and korean[0] == "ko/reset-password"
    for question, own, other in (("How long until I see my refund?", "en/", "ko/"), ("환불은 언제 받나요?", "ko/", "en/")):
        ranked = top_documents(kb, question, "mixed", top_k=10)
        assert own + "refund-timing" in ranked
        if other + "refund-timing" in ranked:
            assert ranked.index(own + "refund-timing") < ranked.index(other + "refund-timing")
    # Korean over English only: found without translation.
    ingest_folder(kb, "english-use", HELPCENTER)
    assert "reset-password" in top_documents(kb, "비밀번호를 잊어버렸어요", "english-use", score_threshold=-1)[:5]


def test_documents_whose_language_cannot_be_told_are_ingested(tmp_path, embedders) -> None:  # type: ignore[no-untyped-def]
    kb = make_kb(tmp_path, embedders)
    for name, content in (("emoji.md", "# 🙂\n\n🙂🙂 👍 ✅"), ("numbers.md", "# 2026\n\n1234-5678 99.9%"),
                          ("fullwidth.md", "# ＬＵＭＩＯ\n\nＰＡＳＳＷＯＲＤ ＲＥＳＥＴ １２３"),
                          ("jamo.md", "# ㅋㅋ\n\nㅋㅋㅋ ㅠㅠ ㅎㅎ")):
        outcome = kb.ingest("odd", DocumentInput(content=content.encode(), source_path=name))
        assert outcome.status == "added", (name, outcome.error)
    assert kb.model_of("odd") == MINILM  # the first document told nothing: the default model
    languages = {h.chunk["document_id"]: h.chunk["language"] for h in kb.search("password", collection="odd", top_k=10, score_threshold=-1).hits}
    assert languages["emoji"] == "und" and languages["fullwidth"] == "en" and languages["jamo"] == "ko"
    assert top_documents(kb, "ｐａｓｓｗｏｒｄ", "odd", mode="sparse")[0] == "fullwidth"


def test_a_partly_translated_help_center_gets_the_model_of_most_of_its_pages(tmp_path, embedders) -> None:  # type: ignore[no-untyped-def]
    """A real Korean help center's first page is often a navigation-only index, and some pages
    are still English: neither decides the model; most of the first pages do."""
    kb = make_kb(tmp_path, embedders)
    navigation = ("<html><body><nav><ul>" + "".join(f'<li><a href="p{i}.html">Chapter {i}</a></li>' for i in range(12))
                  + "</ul></nav></body></html>").encode()
    untranslated = b"# Keyboard shortcuts\n\nPress Ctrl+Z to undo the last step and Ctrl+Y to redo it."
    korean = [path.read_bytes() for path in sorted(KOREAN_HELPCENTER.rglob("*.md"))[:4]]
    documents = [DocumentInput(content=navigation, source_path="index.html"), DocumentInput(content=untranslated, source_path="keys.md"),
                 *(DocumentInput(content=content, source_path=f"ko-{i}.md") for i, content in enumerate(korean))]
    outcomes = list(kb.ingest_many("manual", documents))
    assert [o.status for o in outcomes].count("failed") == 1 and outcomes[0].status == "failed"  # the index: nothing to index
    assert kb.model_of("manual") == MULTILINGUAL_USE
    # A collection left empty by a first page that failed (sent alone) is made anew for the
    # model the next page's language picks, not left with the default model.
    assert kb.ingest("sent-one-by-one", documents[0]).status == "failed"
    assert kb.ingest("sent-one-by-one", documents[2]).status == "added"
    assert kb.model_of("sent-one-by-one") == MULTILINGUAL_USE
    assert top_documents(kb, "환불", "sent-one-by-one", score_threshold=-1)
