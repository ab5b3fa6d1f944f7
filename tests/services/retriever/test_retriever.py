"""The same retrieval suite against both Qdrant deployments: the in-process engine
(qdrant-edge-py) and qdrant-client (its local mode stands in for a server here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.retriever.embedding import SparseEmbedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import EdgeStore, QdrantServerStore
from supportbot.core.errors import InvalidArgument, NotFound
from supportbot.evaluation.retrieval import mean, score_ranking
from supportbot.sample import HELPCENTER, conversational_query, load_golden_set

pytestmark = pytest.mark.integration  # the real embedding model
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

REFUNDS = b"""---
title: Refunds
url: https://help.example/refunds
product: store
---
# Refunds

## Timing
Refunds reach your card 5-7 business days after approval.

## Gift cards
Gift card refunds are instant.
"""
SHIPPING = b"<html><body><h1>Shipping</h1><h2>Express</h2><p>Express delivery takes 1-2 business days.</p></body></html>"


def make_kb(backend: str, tmp_path: Path, dense_embedder) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    settings = RetrieverSettings(data_dir=tmp_path, backend=backend)
    store = EdgeStore(settings.resolved_index_path()) if backend == "edge" else QdrantServerStore(location=":memory:")
    return KnowledgeBase(settings, store, dense_embedder, SparseEmbedder())


@pytest.fixture(params=["edge", "server"])
def kb(request, tmp_path: Path, dense_embedder):  # type: ignore[no-untyped-def]
    knowledge_base = make_kb(request.param, tmp_path, dense_embedder)
    yield knowledge_base
    knowledge_base.store.close()


def ingest(kb: KnowledgeBase, content: bytes, name: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    return kb.ingest("", DocumentInput(content=content, source_path=name, **kwargs)).status


def test_ingest_is_idempotent_and_replaces_changed_documents(kb: KnowledgeBase) -> None:
    assert ingest(kb, REFUNDS, "refunds.md") == "added"
    assert ingest(kb, REFUNDS, "refunds.md") == "unchanged"
    assert kb.stats() == [("helpcenter", 1, 2, MINILM)]
    changed = REFUNDS.replace(b"5-7 business days", b"3 business days")
    assert ingest(kb, changed, "refunds.md") == "updated"
    assert kb.stats() == [("helpcenter", 1, 2, MINILM)]
    texts = [h.chunk["text"] for h in kb.search("refund to my card", score_threshold=-1).hits]
    assert any("3 business days" in t for t in texts) and not any("5-7" in t for t in texts)


def test_changed_documents_get_a_new_version(kb: KnowledgeBase) -> None:
    def version(content: bytes) -> tuple[str, int]:
        outcome = kb.ingest("", DocumentInput(content=content, source_path="refunds.md"))
        return outcome.status, outcome.version

    assert version(REFUNDS) == ("added", 1)
    assert version(REFUNDS) == ("unchanged", 1)
    changed = REFUNDS.replace(b"5-7 business days", b"3 business days")
    assert version(changed) == ("updated", 2)
    assert version(REFUNDS) == ("updated", 3)  # going back is a change too
    hits = kb.search("refund to my card", score_threshold=-1).hits
    assert {h.chunk["version"] for h in hits} == {3}
    assert kb.store.document_version("helpcenter", "refunds").number == 3
    assert kb.ingest("", DocumentInput(content=b"\xff\xfe", source_path="bad.pdf")).version == 0


def test_search_can_return_the_query_embedding(kb: KnowledgeBase) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    outcome = kb.search("refund to my card")
    assert len(outcome.query_embedding) == kb.dense.dimension
    assert outcome.query_embedding == kb.dense.embed_query("refund to my card")


def test_failed_document_is_reported_and_nothing_stored_is_lost(kb: KnowledgeBase) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    outcome = kb.ingest("", DocumentInput(content=b"\xff\xfe", source_path="refunds.md"))
    assert outcome.status == "failed" and "UTF-8" in outcome.error
    assert ingest(kb, SHIPPING, "shipping.html") == "added"
    assert kb.stats() == [("helpcenter", 2, 3, MINILM)]


def test_search_results_carry_chunk_metadata(kb: KnowledgeBase) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    ingest(kb, SHIPPING, "shipping.html")
    kb.finish_ingest("")
    for mode in ("hybrid", "dense", "sparse"):
        top = kb.search("how many days for express delivery", mode=mode).hits[0]
        assert top.chunk["document_id"] == "shipping", mode
        assert top.chunk["heading_path"] == ["Express"] and top.chunk["title"] == "Shipping"
        assert top.chunk["chunk_id"] == "helpcenter/shipping#0" and top.dense_score > 0.3


def test_filters_threshold_and_mmr(kb: KnowledgeBase) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    ingest(kb, SHIPPING, "shipping.html")
    hits = kb.search("delivery and refunds", filter={"product": "store"}, score_threshold=-1).hits
    assert hits and {h.chunk["document_id"] for h in hits} == {"refunds"}
    assert kb.search("delivery and refunds", filter={"document_id": "shipping"}, score_threshold=-1).hits[0].chunk["document_id"] == "shipping"
    assert kb.search("what is the weather on mars", score_threshold=0.9).hits == []
    diverse = kb.search("refunds", mmr=True, top_k=3, score_threshold=-1).hits
    assert len({h.chunk["chunk_id"] for h in diverse}) == len(diverse) >= 2


def test_delete_documents(kb: KnowledgeBase) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    ingest(kb, SHIPPING, "shipping.html")
    assert kb.delete_documents("", ["refunds", "never-ingested"]) == (1, 2)
    assert kb.stats() == [("helpcenter", 1, 1, MINILM)]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"query": ""}, InvalidArgument, "query is empty"),
        ({"query": "x" * 5000}, InvalidArgument, "over the limit"),
        ({"query": "x", "top_k": 1000}, InvalidArgument, "top_k must be between"),
        ({"query": "x", "collection": "Bad Name!"}, InvalidArgument, "collection name"),
        ({"query": "x", "collection": "nope"}, NotFound, "does not exist"),
        ({"query": "x", "filter": {"bad key": "v"}}, InvalidArgument, "filter key"),
        # NaN compares false with everything: it used to switch the threshold off silently.
        ({"query": "x", "score_threshold": float("nan")}, InvalidArgument, "score_threshold"),
        ({"query": "x", "score_threshold": 7.0}, InvalidArgument, "score_threshold"),
    ],
)
def test_bad_search_input(kb: KnowledgeBase, kwargs: dict, error: type, message: str) -> None:
    ingest(kb, REFUNDS, "refunds.md")
    kwargs = dict(kwargs)  # parameters are shared by both backends
    query = kwargs.pop("query")
    with pytest.raises(error, match=message):
        kb.search(query, **kwargs)


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_golden_set_retrieval_quality(backend: str, tmp_path: Path, dense_embedder) -> None:  # type: ignore[no-untyped-def]
    from supportbot.client import documents_from_paths

    kb = make_kb(backend, tmp_path, dense_embedder)
    documents = documents_from_paths([HELPCENTER])
    for path, document in documents:
        assert kb.ingest("", DocumentInput(content=document.content, source_path=str(path), document_id=document.document_id)).status == "added"
    kb.finish_ingest("")
    assert kb.stats()[0][1] == len(documents) == 41
    golden = load_golden_set()
    by_id = {item["id"]: item for item in golden}
    hits, mrrs = [], []
    for item in golden:
        if not item["answerable"]:
            continue
        ranked = [h.chunk["document_id"] for h in kb.search(conversational_query(item, by_id), top_k=10).hits]
        relevant = set(item["relevant_document_ids"])
        hits.append(score_ranking(ranked, relevant, 5).hit_rate)
        mrrs.append(score_ranking(ranked, relevant, 10).mrr)
    assert mean(hits) >= 0.9 and mean(mrrs) >= 0.75
    kb.store.close()


def test_edge_index_persists_across_restarts(tmp_path: Path, dense_embedder) -> None:  # type: ignore[no-untyped-def]
    kb = make_kb("edge", tmp_path, dense_embedder)
    ingest(kb, REFUNDS, "refunds.md")
    kb.finish_ingest("")
    kb.store.close()
    reopened = make_kb("edge", tmp_path, dense_embedder)
    assert reopened.stats() == [("helpcenter", 1, 2, MINILM)]
    assert ingest(reopened, REFUNDS, "refunds.md") == "unchanged"
    reopened.store.close()


def test_repeated_questions_skip_the_embedding_model(dense_embedder) -> None:  # type: ignore[no-untyped-def]
    before = dense_embedder.cache_info()
    first = dense_embedder.embed_query("a question nobody asked before 7f3a")
    second = dense_embedder.embed_query("a question nobody asked before 7f3a")
    after = dense_embedder.cache_info()
    assert first == second and after.hits == before.hits + 1 and after.misses == before.misses + 1
