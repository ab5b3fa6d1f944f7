"""One contract for both vector stores (services/retriever/stores.py): Qdrant's engine in-process
(qdrant-edge-py) and qdrant-client (its in-memory local mode stands in for a server). Each test
does the same thing to both on synthetic vectors and asserts they answer alike, as qdrant-client's
own `tests/congruence_tests/` do for its local mode and the server."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.retriever.stores import (
    DENSE,
    MULTILINGUAL,
    EdgeStore,
    QdrantServerStore,
    QueryPlan,
    SearchModeName,
    StoredPoint,
    VectorStore,
    point_id,
)

pytestmark = pytest.mark.unit

DIMENSION = 8
MULTILINGUAL_DIMENSION = 4
VOCABULARY = 50
COLLECTION = "kb"


def synthetic_points(documents: int, chunks: int, *, seed: int, content_hash: str = "v1", multilingual: bool = False) -> list[StoredPoint]:
    """`chunks` points per document, with random dense and sparse vectors and the payload fields
    the knowledge base writes (document_id, content_hash, version, embedding_model, metadata)."""
    rng = random.Random(seed)
    points = []
    for d in range(documents):
        document_id = f"doc-{d}"
        for c in range(chunks):
            indices = sorted(rng.sample(range(VOCABULARY), 5))
            points.append(StoredPoint(
                id=point_id(f"{document_id}#{c}", content_hash),
                dense=[rng.uniform(-1, 1) for _ in range(DIMENSION)],
                sparse=(indices, [rng.uniform(0.1, 2.0) for _ in indices]),
                payload={
                    "document_id": document_id, "chunk_id": f"{document_id}#{c}", "title": f"Document {d}",
                    "content_hash": content_hash, "version": 1, "embedding_model": "synthetic",
                    "metadata": {"product": "a" if d % 2 else "b"},
                },
                multilingual=[rng.uniform(-1, 1) for _ in range(MULTILINGUAL_DIMENSION)] if multilingual else None,
            ))
    return points


def both_stores(root: Path) -> Iterator[dict[str, VectorStore]]:
    both: dict[str, VectorStore] = {"edge": EdgeStore(root / "edge"), "server": QdrantServerStore(location=":memory:")}
    yield both
    for store in both.values():
        store.close()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, VectorStore]]:
    yield from both_stores(tmp_path)


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, VectorStore]]:
    """Both stores with the same 18 points, shared by the query tests (which only read)."""
    for stores in both_stores(tmp_path_factory.mktemp("searchable")):
        filled(stores, synthetic_points(6, 3, seed=8))
        yield stores


def answers(stores: dict[str, VectorStore], call: Callable[[VectorStore], Any]) -> dict[str, Any]:
    return {backend: call(store) for backend, store in stores.items()}


def congruent(stores: dict[str, VectorStore], call: Callable[[VectorStore], Any]) -> Any:
    """`call`'s answer, the same from both stores (else the test fails with both answers)."""
    edge, server = answers(stores, call).values()
    assert edge == server
    return edge


def filled(stores: dict[str, VectorStore], points: list[StoredPoint], multilingual: bool = False) -> None:
    for store in stores.values():
        store.ensure_collection(COLLECTION, DIMENSION, MULTILINGUAL_DIMENSION if multilingual else None)
        store.upsert(COLLECTION, points)
        store.optimize(COLLECTION)


def test_collections_are_created_once_listed_and_dropped(stores: dict[str, VectorStore]) -> None:
    assert congruent(stores, lambda s: (s.collections(), s.has_collection(COLLECTION))) == ([], False)
    filled(stores, synthetic_points(2, 2, seed=1))
    for store in stores.values():
        store.ensure_collection(COLLECTION, DIMENSION)  # a second time changes nothing
        store.ensure_collection("other", DIMENSION)
    assert congruent(stores, lambda s: s.collections()) == [COLLECTION, "other"]
    assert congruent(stores, lambda s: s.count_points(COLLECTION)) == 4
    for store in stores.values():
        store.drop_collection("other")
    assert congruent(stores, lambda s: (s.collections(), s.has_collection("other"))) == ([COLLECTION], False)


@pytest.mark.parametrize("multilingual", [False, True])
def test_named_vectors_are_known(stores: dict[str, VectorStore], multilingual: bool) -> None:
    filled(stores, synthetic_points(1, 1, seed=2, multilingual=multilingual), multilingual)
    vectors = congruent(stores, lambda s: {v: s.has_vector(COLLECTION, v) for v in (DENSE, MULTILINGUAL, "absent")})
    assert vectors == {DENSE: True, MULTILINGUAL: multilingual, "absent": False}


def test_scrolled_points_are_the_points_upserted(stores: dict[str, VectorStore]) -> None:
    points = synthetic_points(3, 4, seed=3, multilingual=True)
    filled(stores, points, multilingual=True)

    def scrolled(store: VectorStore) -> dict[str, StoredPoint]:
        return {p.id: p for p in store.scroll_points(COLLECTION, batch=5)}

    edge, server = answers(stores, scrolled).values()
    assert set(edge) == set(server) == {p.id for p in points}
    for point in points:
        assert edge[point.id].payload == server[point.id].payload == point.payload
        # Vectors come back as float32 from the engine, float64 from qdrant-client's local mode;
        # cosine vectors are stored normalised by both.
        assert edge[point.id].sparse[0] == server[point.id].sparse[0] == point.sparse[0]
        assert edge[point.id].sparse[1] == pytest.approx(server[point.id].sparse[1], abs=1e-6)
        assert edge[point.id].dense == pytest.approx(server[point.id].dense, abs=1e-6)
        assert edge[point.id].multilingual == pytest.approx(server[point.id].multilingual, abs=1e-6)


def test_points_and_documents_are_counted_alike_after_upserts_and_deletes(stores: dict[str, VectorStore]) -> None:
    filled(stores, synthetic_points(4, 3, seed=4))
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION))) == (12, 4)
    assert congruent(stores, lambda s: s.delete_document(COLLECTION, "doc-1")) == 3
    assert congruent(stores, lambda s: s.delete_document(COLLECTION, "doc-1")) == 0
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION))) == (9, 3)
    for store in stores.values():
        store.optimize(COLLECTION)
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION))) == (9, 3)


def test_an_empty_collection_counts_nothing(stores: dict[str, VectorStore]) -> None:
    filled(stores, [])
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION))) == (0, 0)
    assert congruent(stores, lambda s: (s.collection_model(COLLECTION), s.document_version(COLLECTION, "doc-0"))) == (None, None)


def test_a_new_version_replaces_the_old_one(stores: dict[str, VectorStore]) -> None:
    filled(stores, synthetic_points(2, 2, seed=5, content_hash="v1"))
    newer = [p for p in synthetic_points(2, 3, seed=6, content_hash="v2") if p.payload["document_id"] == "doc-0"]
    for point in newer:
        point.payload["version"] = 2
    for store in stores.values():
        store.upsert(COLLECTION, newer)
    assert congruent(stores, lambda s: s.delete_document(COLLECTION, "doc-0", keep_hash="v2")) == 2
    version = congruent(stores, lambda s: s.document_version(COLLECTION, "doc-0"))
    assert (version.content_hash, version.number) == ("v2", 2)
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION))) == (5, 2)
    assert congruent(stores, lambda s: s.collection_model(COLLECTION)) == "synthetic"
    assert congruent(stores, lambda s: s.document_version(COLLECTION, "absent")) is None


def plans(seed: int) -> Iterator[QueryPlan]:
    rng = random.Random(seed)
    modes: tuple[SearchModeName, ...] = ("dense", "sparse", "hybrid")
    for mode in modes:
        for mmr_lambda in (None, 0.5):
            for filter_ in ({}, {"product": "a"}, {"document_id": "doc-2"}):
                indices = sorted(rng.sample(range(VOCABULARY), 6))
                yield QueryPlan(
                    dense=[rng.uniform(-1, 1) for _ in range(DIMENSION)],
                    sparse=(indices, [1.0] * len(indices)),
                    mode=mode, limit=5, filter=filter_, mmr_lambda=mmr_lambda,
                )


@pytest.mark.parametrize("plan", list(plans(7)), ids=lambda p: f"{p.mode}-mmr{p.mmr_lambda}-{'-'.join(p.filter.values()) or 'all'}")
def test_queries_find_the_same_points_in_the_same_order(searchable: dict[str, VectorStore], plan: QueryPlan) -> None:
    def found(store: VectorStore) -> list[tuple[str, float]]:
        return [(hit.payload["chunk_id"], round(hit.score, 4)) for hit in store.query(COLLECTION, plan)]

    hits = congruent(searchable, found)
    assert 0 < len(hits) <= plan.limit
    assert all(plan.filter.get("document_id", chunk.split("#")[0]) == chunk.split("#")[0] for chunk, _ in hits)


def test_a_term_no_point_holds_finds_nothing(searchable: dict[str, VectorStore]) -> None:
    """How the knowledge base tells a word the collection never uses (KnowledgeBase.unknown_terms):
    a sparse query of its term alone, no dense vector, finds no point; a held term finds one."""
    def probe(index: int, filter_: dict[str, str]) -> int:
        plan = QueryPlan(dense=[], sparse=([index], [1.0]), mode="sparse", limit=1, filter=filter_, mmr_lambda=None)
        return congruent(searchable, lambda s: len(s.query(COLLECTION, plan)))

    held = synthetic_points(6, 3, seed=8)[0].sparse[0][0]
    assert probe(held, {}) == 1
    assert probe(VOCABULARY + 1, {}) == 0
    assert probe(held, {"document_id": "no-such-document"}) == 0


def test_hits_carry_the_searched_vector(stores: dict[str, VectorStore]) -> None:
    points = synthetic_points(2, 2, seed=9, multilingual=True)
    filled(stores, points, multilingual=True)
    for using, dimension in ((DENSE, DIMENSION), (MULTILINGUAL, MULTILINGUAL_DIMENSION)):
        plan = QueryPlan(dense=[0.5] * dimension, sparse=([1], [1.0]), mode="dense", limit=4, filter={}, mmr_lambda=None, using=using)
        edge, server = answers(stores, lambda s, plan=plan: s.query(COLLECTION, plan)).values()
        assert [len(hit.dense_vector or []) for hit in edge] == [dimension] * 4
        assert [h.dense_vector for h in edge] == [pytest.approx(h.dense_vector, abs=1e-6) for h in server]


def test_replacing_a_collection_keeps_the_replacement_s_points(stores: dict[str, VectorStore]) -> None:
    filled(stores, synthetic_points(2, 2, seed=10))
    replacement = synthetic_points(3, 1, seed=11, multilingual=True)
    for store in stores.values():
        store.ensure_collection("rebuild", DIMENSION, MULTILINGUAL_DIMENSION)
        store.upsert("rebuild", replacement)
        store.replace_collection(COLLECTION, "rebuild")
    assert congruent(stores, lambda s: s.collections()) == [COLLECTION]
    assert congruent(stores, lambda s: sorted(p.id for p in s.scroll_points(COLLECTION))) == sorted(p.id for p in replacement)
    assert congruent(stores, lambda s: (s.count_points(COLLECTION), s.count_documents(COLLECTION), s.has_vector(COLLECTION, MULTILINGUAL))) == (3, 3, True)

