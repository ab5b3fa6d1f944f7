"""One schema, two Qdrant deployments: Qdrant's engine in-process (qdrant-edge-py, one shard per
collection on disk) and a Qdrant server or cluster through qdrant-client.

Both store a named dense vector ("dense", cosine) and a named sparse vector ("bm25", with the IDF
modifier); a collection whose dense model is English-only also stores a multilingual vector
("multilingual", cosine) on the same point, so questions in other languages find its passages.
Both answer a hybrid query as one Qdrant query: two prefetches fused with
reciprocal-rank fusion, optionally re-ranked with Qdrant's MMR."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

DENSE = "dense"
SPARSE = "bm25"
MULTILINGUAL = "multilingual"
SearchModeName = Literal["hybrid", "dense", "sparse"]


def point_id(chunk_id: str, content_hash: str) -> str:
    """Points of a new document version get new ids, so the old version stays searchable until
    the new one is fully written."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{chunk_id}@{content_hash}"))


@dataclass(frozen=True)
class DocumentVersion:
    """What identifies the stored version of a document: its content hash, and a number that goes
    up by one each time a changed document is ingested again (chunks stored before versions were
    recorded count as version 1)."""

    content_hash: str
    number: int
    # The path or URL the document came from ("": stored before sources were recorded).
    source: str = ""
    url: str = ""
    # The hash of what the client sent, before parsing ("": stored before it was recorded).
    input_hash: str = ""

    @classmethod
    def of(cls, payload: dict[str, Any]) -> DocumentVersion:
        return cls(
            str(payload.get("content_hash", "")), int(payload.get("version") or 1),
            str(payload.get("source") or ""), str(payload.get("url") or ""), str(payload.get("input_hash") or ""),
        )


@dataclass
class StoredPoint:
    id: str
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    payload: dict[str, Any]
    # The multilingual vector, in collections that keep one beside the primary.
    multilingual: list[float] | None = None

    def vectors(self) -> dict[str, Any]:
        return {DENSE: self.dense} | ({MULTILINGUAL: self.multilingual} if self.multilingual is not None else {})


@dataclass
class Hit:
    payload: dict[str, Any]
    score: float
    dense_vector: list[float] | None


@dataclass
class QueryPlan:
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    mode: SearchModeName
    limit: int
    filter: dict[str, str]
    mmr_lambda: float | None
    # Reciprocal-rank fusion weights of the dense and the sparse list.
    fusion_weights: tuple[float, float] = (1.0, 1.0)
    rrf_k: int = 60
    candidate_factor: int = 4
    # The dense vector searched: the primary, or the multilingual one for a question in a
    # language the primary model does not read.
    using: str = DENSE

    @property
    def candidates(self) -> int:
        return self.limit * self.candidate_factor


class VectorStore(Protocol):
    backend: str

    def collections(self) -> list[str]: ...
    def has_collection(self, name: str) -> bool: ...
    def ensure_collection(self, name: str, dimension: int, multilingual_dimension: int | None = None) -> None: ...
    def has_vector(self, name: str, vector: str) -> bool: ...
    def scroll_points(self, name: str, batch: int = 256) -> Iterator[StoredPoint]: ...
    def replace_collection(self, name: str, replacement: str) -> None: ...
    def drop_collection(self, name: str) -> None: ...
    def upsert(self, name: str, points: list[StoredPoint]) -> None: ...
    def document_version(self, name: str, document_id: str) -> DocumentVersion | None: ...
    def collection_model(self, name: str) -> str | None: ...
    def delete_document(self, name: str, document_id: str, keep_hash: str | None = None) -> int: ...
    def count_points(self, name: str) -> int: ...
    def count_documents(self, name: str) -> int: ...
    def query(self, name: str, plan: QueryPlan) -> list[Hit]: ...
    def optimize(self, name: str) -> None: ...
    def close(self) -> None: ...


def payload_key(key: str) -> str:
    """Filter keys name chunk fields (document_id, title, url) or ingestion metadata."""
    return key if key in {"document_id", "title", "url", "collection"} else f"metadata.{key}"


class EdgeStore:
    """Qdrant's engine in-process: one EdgeShard per collection under `root`."""

    backend = "edge"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, Any] = {}
        self._vectors: dict[str, set[str]] = {}
        self._absent: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        for path in sorted(self.root.iterdir()):
            if path.is_dir():
                self._open(path.name)

    def _open(self, name: str) -> Any:
        from qdrant_edge import EdgeShard

        shard = EdgeShard.load(str(self.root / name))
        self._shards[name] = shard
        return shard

    def _shard(self, name: str) -> Any:
        with self._lock:
            return self._shards[name]

    def collections(self) -> list[str]:
        with self._lock:
            return sorted(self._shards)

    def has_collection(self, name: str) -> bool:
        with self._lock:
            return name in self._shards

    def ensure_collection(self, name: str, dimension: int, multilingual_dimension: int | None = None) -> None:
        import qdrant_edge as q

        with self._lock:
            if name in self._shards:
                return
            path = self.root / name
            if path.exists():
                shutil.rmtree(path)
            vectors = {DENSE: q.EdgeVectorParams(size=dimension, distance=q.Distance.Cosine)}
            if multilingual_dimension:
                vectors[MULTILINGUAL] = q.EdgeVectorParams(size=multilingual_dimension, distance=q.Distance.Cosine)
            config = q.EdgeConfig(
                vectors=vectors,
                sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
                hnsw_config=q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
            )
            shard = q.EdgeShard.create(str(path), config)
            shard.update(q.UpdateOperation.create_field_index("document_id", q.PayloadSchemaType.Keyword))
            self._shards[name] = shard
            self._vectors[name] = set(vectors)

    def has_vector(self, name: str, vector: str) -> bool:
        """The shard tells its vectors by no call of its own: a query of the named vector
        answers, or fails when the shard has none of that name (learnt once per collection)."""
        import qdrant_edge as q

        with self._lock:
            known = self._vectors.setdefault(name, set())
            if vector not in known and (name, vector) not in self._absent:
                try:
                    self._shards[name].query(q.QueryRequest(limit=1, query=q.Query.Nearest([0.0], using=vector)))
                    known.add(vector)
                except Exception as error:  # noqa: BLE001 (the engine raises one type for every failure)
                    if "dimension" in str(error).lower():
                        known.add(vector)  # the vector exists; the probe had the wrong size on purpose
                    else:
                        self._absent.add((name, vector))
            return vector in known

    def scroll_points(self, name: str, batch: int = 256) -> Iterator[StoredPoint]:
        """Every point with its vectors and payload, `batch` at a time."""
        import qdrant_edge as q

        offset = None
        while True:
            records, offset = self._shard(name).scroll(
                q.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
            )
            for record in records:
                yield _stored_point(str(record.id), record.vector, record.payload)
            if offset is None or not records:
                return

    def drop_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self.root / name, ignore_errors=True)

    def replace_collection(self, name: str, replacement: str) -> None:
        """`replacement`'s points become `name`'s (its shard directory takes the other's place)."""
        with self._lock:
            for shard in (self._shards.pop(name), self._shards.pop(replacement)):
                shard.flush()
                shard.close()
            shutil.rmtree(self.root / name)
            (self.root / replacement).rename(self.root / name)
            self._open(name)
            self._vectors.pop(name, None)
            self._vectors.pop(replacement, None)
            self._absent = {(n, v) for n, v in self._absent if n not in (name, replacement)}

    def upsert(self, name: str, points: list[StoredPoint]) -> None:
        import qdrant_edge as q

        if not points:
            return  # nothing to write (qdrant-client refuses an empty update)
        edge_points = [
            q.Point(p.id, {**p.vectors(), SPARSE: q.SparseVector(list(p.sparse[0]), list(p.sparse[1]))}, p.payload)
            for p in points
        ]
        shard = self._shard(name)
        shard.update(q.UpdateOperation.upsert_points(edge_points))
        shard.flush()

    def _document_filter(self, document_id: str, keep_hash: str | None = None) -> Any:
        import qdrant_edge as q

        must_not: list[Any] | None = [q.FieldCondition("content_hash", match=q.MatchValue(keep_hash))] if keep_hash else None
        return q.Filter(
            must=[q.FieldCondition("document_id", match=q.MatchValue(document_id))], must_not=must_not
        )

    def document_version(self, name: str, document_id: str) -> DocumentVersion | None:
        import qdrant_edge as q

        records, _ = self._shard(name).scroll(
            q.ScrollRequest(limit=1, filter=self._document_filter(document_id), with_payload=True)
        )
        return DocumentVersion.of(records[0].payload) if records else None

    def collection_model(self, name: str) -> str | None:
        """The embedding model its points record ("" for points from before models were
        recorded; None when it holds no point)."""
        import qdrant_edge as q

        records, _ = self._shard(name).scroll(q.ScrollRequest(limit=1, with_payload=True))
        return str(records[0].payload.get("embedding_model") or "") if records else None

    def delete_document(self, name: str, document_id: str, keep_hash: str | None = None) -> int:
        import qdrant_edge as q

        shard = self._shard(name)
        selector = self._document_filter(document_id, keep_hash)
        count = int(shard.count(q.CountRequest(filter=selector, exact=True)))
        if count:
            shard.update(q.UpdateOperation.delete_points_by_filter(selector))
            shard.flush()
        return count

    def count_points(self, name: str) -> int:
        import qdrant_edge as q

        return int(self._shard(name).count(q.CountRequest(exact=True)))

    def count_documents(self, name: str) -> int:
        import qdrant_edge as q

        response = self._shard(name).facet(q.FacetRequest("document_id", limit=1_000_000, exact=True))
        return _present_values(response.hits)

    def _filter(self, conditions: dict[str, str]) -> Any:
        import qdrant_edge as q

        if not conditions:
            return None
        return q.Filter(
            must=[q.FieldCondition(payload_key(k), match=q.MatchValue(v)) for k, v in conditions.items()]
        )

    def query(self, name: str, plan: QueryPlan) -> list[Hit]:
        import qdrant_edge as q

        dense = q.Query.Nearest(plan.dense, using=plan.using)
        sparse = q.Query.Nearest(q.SparseVector(*plan.sparse), using=SPARSE)
        filter_ = self._filter(plan.filter)
        # The engine's query kinds (Query, Fusion, Mmr) share no base class.
        prefetches: list[q.Prefetch] | None
        scoring: Any
        if plan.mode == "hybrid":
            candidates = [
                q.Prefetch(limit=plan.candidates, query=dense, filter=filter_),
                q.Prefetch(limit=plan.candidates, query=sparse, filter=filter_),
            ]
            # The engine's stubs leave Fusion.Rrf out of the query types Prefetch takes.
            fused: Any = q.Fusion.Rrf(k=plan.rrf_k, weights=list(plan.fusion_weights))
            if plan.mmr_lambda is None:
                prefetches, scoring = candidates, fused
            else:
                prefetches = [q.Prefetch(limit=plan.candidates, query=fused, prefetches=candidates)]
                scoring = q.Mmr(plan.dense, plan.mmr_lambda, plan.candidates, using=plan.using)
        elif plan.mode == "dense" and plan.mmr_lambda is not None:
            prefetches, scoring = None, q.Mmr(plan.dense, plan.mmr_lambda, plan.candidates, using=plan.using)
        else:
            prefetches, scoring = None, dense if plan.mode == "dense" else sparse
        request = q.QueryRequest(
            limit=plan.limit,
            query=scoring,
            prefetches=prefetches,
            filter=filter_,
            with_payload=True,
            with_vector=[plan.using],
        )
        return [
            Hit(point.payload or {}, float(point.score), _named_vector(point.vector, plan.using))
            for point in self._shard(name).query(request)
        ]

    def optimize(self, name: str) -> None:
        self._shard(name).optimize()

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()


def _present_values(hits: Iterable[Any]) -> int:
    """Facet values that still have points: a deleted document lingers in the keyword index with
    a zero count (the engine keeps it even after optimizing; a server runs the same engine)."""
    return sum(1 for hit in hits if hit.count > 0)


def _stored_point(point_id_: str, vectors: Any, payload: Any) -> StoredPoint:
    vectors = vectors if isinstance(vectors, dict) else {}
    sparse = vectors.get(SPARSE)
    multilingual = vectors.get(MULTILINGUAL)
    return StoredPoint(
        id=point_id_,
        dense=list(vectors.get(DENSE) or []),
        sparse=(list(sparse.indices), list(sparse.values)) if sparse is not None else ([], []),
        payload=dict(payload or {}),
        multilingual=list(multilingual) if multilingual is not None else None,
    )


def _named_vector(vector: Any, name: str) -> list[float] | None:
    if isinstance(vector, dict):
        value = vector.get(name)
        return list(value) if value is not None else None
    return None


class QdrantServerStore:
    """A Qdrant server or cluster through qdrant-client (also its in-process local mode)."""

    backend = "server"

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = True,
        location: str | None = None,
        shard_number: int = 1,
        replication_factor: int = 1,
        write_consistency_factor: int = 1,
    ) -> None:
        from qdrant_client import QdrantClient

        # Local mode keeps no payload indexes (it filters by scanning).
        self.local = bool(location)
        if location == ":memory:":
            self.client = QdrantClient(location=":memory:")
        elif location:
            self.client = QdrantClient(path=location)
        else:
            self.client = QdrantClient(url=url, api_key=api_key, prefer_grpc=prefer_grpc)
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.write_consistency_factor = write_consistency_factor

    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def ensure_collection(self, name: str, dimension: int, multilingual_dimension: int | None = None) -> None:
        from qdrant_client import models as m

        if self.client.collection_exists(name):
            return
        vectors = {DENSE: m.VectorParams(size=dimension, distance=m.Distance.COSINE)}
        if multilingual_dimension:
            vectors[MULTILINGUAL] = m.VectorParams(size=multilingual_dimension, distance=m.Distance.COSINE)
        self.client.create_collection(
            name,
            vectors_config=vectors,
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            shard_number=self.shard_number,
            replication_factor=self.replication_factor,
            write_consistency_factor=self.write_consistency_factor,
        )
        if not self.local:
            self.client.create_payload_index(name, "document_id", m.PayloadSchemaType.KEYWORD)

    def has_vector(self, name: str, vector: str) -> bool:
        vectors = self.client.get_collection(name).config.params.vectors
        return isinstance(vectors, dict) and vector in vectors

    def scroll_points(self, name: str, batch: int = 256) -> Iterator[StoredPoint]:
        offset = None
        while True:
            records, offset = self.client.scroll(name, offset=offset, limit=batch, with_payload=True, with_vectors=True)
            for record in records:
                yield _stored_point(str(record.id), record.vector, record.payload)
            if offset is None or not records:
                return

    def drop_collection(self, name: str) -> None:
        self.client.delete_collection(name)

    def replace_collection(self, name: str, replacement: str) -> None:
        """A server renames no collection: `name` is created again with `replacement`'s vectors
        and its points copied over."""
        vectors = self.client.get_collection(replacement).config.params.vectors
        assert isinstance(vectors, dict)
        self.client.delete_collection(name)
        self.ensure_collection(name, vectors[DENSE].size, vectors[MULTILINGUAL].size if MULTILINGUAL in vectors else None)
        batch: list[StoredPoint] = []
        for point in self.scroll_points(replacement):
            batch.append(point)
            if len(batch) == 256:
                self.upsert(name, batch)
                batch = []
        if batch:
            self.upsert(name, batch)
        self.client.delete_collection(replacement)

    def upsert(self, name: str, points: list[StoredPoint]) -> None:
        from qdrant_client import models as m

        if not points:
            return  # qdrant-client refuses an empty update ("Empty update request")
        self.client.upsert(
            name,
            points=[
                m.PointStruct(
                    id=p.id,
                    vector={**p.vectors(), SPARSE: m.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def _document_filter(self, document_id: str, keep_hash: str | None = None) -> Any:
        from qdrant_client import models as m

        return m.Filter(
            must=[m.FieldCondition(key="document_id", match=m.MatchValue(value=document_id))],
            must_not=[m.FieldCondition(key="content_hash", match=m.MatchValue(value=keep_hash))]
            if keep_hash
            else None,
        )

    def document_version(self, name: str, document_id: str) -> DocumentVersion | None:
        records, _ = self.client.scroll(
            name, scroll_filter=self._document_filter(document_id), limit=1, with_payload=True
        )
        return DocumentVersion.of(records[0].payload or {}) if records else None

    def collection_model(self, name: str) -> str | None:
        records, _ = self.client.scroll(name, limit=1, with_payload=True)
        return str((records[0].payload or {}).get("embedding_model") or "") if records else None

    def delete_document(self, name: str, document_id: str, keep_hash: str | None = None) -> int:
        from qdrant_client import models as m

        selector = self._document_filter(document_id, keep_hash)
        count = self.client.count(name, count_filter=selector, exact=True).count
        if count:
            self.client.delete(name, points_selector=m.FilterSelector(filter=selector), wait=True)
        return count

    def count_points(self, name: str) -> int:
        return self.client.count(name, exact=True).count

    def count_documents(self, name: str) -> int:
        response = self.client.facet(name, key="document_id", limit=1_000_000, exact=True)
        return _present_values(response.hits)

    def _filter(self, conditions: dict[str, str]) -> Any:
        from qdrant_client import models as m

        if not conditions:
            return None
        return m.Filter(
            must=[m.FieldCondition(key=payload_key(k), match=m.MatchValue(value=v)) for k, v in conditions.items()]
        )

    def query(self, name: str, plan: QueryPlan) -> list[Hit]:
        from qdrant_client import models as m

        sparse = m.SparseVector(indices=plan.sparse[0], values=plan.sparse[1])
        filter_ = self._filter(plan.filter)
        mmr = (
            m.NearestQuery(nearest=plan.dense, mmr=m.Mmr(diversity=1 - plan.mmr_lambda, candidates_limit=plan.candidates))
            if plan.mmr_lambda is not None
            else None
        )
        prefetch: Any = None
        using: str | None = None
        # qdrant-client's query kinds (RrfQuery, NearestQuery, a vector) share no base class.
        query: Any
        if plan.mode == "hybrid":
            candidates = [
                m.Prefetch(query=plan.dense, using=plan.using, limit=plan.candidates, filter=filter_),
                m.Prefetch(query=sparse, using=SPARSE, limit=plan.candidates, filter=filter_),
            ]
            if mmr is None:
                prefetch, query = candidates, m.RrfQuery(rrf=m.Rrf(k=plan.rrf_k, weights=list(plan.fusion_weights)))
            else:
                prefetch = [m.Prefetch(prefetch=candidates, query=m.RrfQuery(rrf=m.Rrf(k=plan.rrf_k, weights=list(plan.fusion_weights))), limit=plan.candidates)]
                query, using = mmr, plan.using
        elif plan.mode == "dense":
            query, using = (mmr or plan.dense), plan.using
        else:
            query, using = sparse, SPARSE
        response = self.client.query_points(
            name,
            query=query,
            using=using,
            prefetch=prefetch,
            query_filter=filter_,
            limit=plan.limit,
            with_payload=True,
            with_vectors=[plan.using],
        )
        return [
            Hit(point.payload or {}, float(point.score), _named_vector(point.vector, plan.using))
            for point in response.points
        ]

    def optimize(self, name: str) -> None:
        """A Qdrant server builds its HNSW index in the background by itself."""

    def close(self) -> None:
        self.client.close()
