"""Ingestion and search over a VectorStore, independent of which Qdrant deployment backs it."""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from services.retriever.chunking import Chunk, chunk_document, document_hash
from services.retriever.embedding import DenseEmbedder, Embedder, Embedders, SparseEmbedder
from services.retriever.parsing import DocumentError, parse_document
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import QueryPlan, SearchModeName, StoredPoint, VectorStore, point_id
from supportbot.core.errors import InvalidArgument, NotFound, check_collection_name, require_text
from supportbot.core.language import ENGLISH, LANGUAGES, UNDETERMINED, detect_language

_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


@dataclass
class DocumentInput:
    content: bytes
    source_path: str = ""
    document_id: str = ""
    mime_type: str = ""
    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class IngestOutcome:
    document_id: str
    status: str  # added, updated, unchanged, failed
    chunks: int = 0
    error: str = ""
    # The document's version once stored (see stores.DocumentVersion); 0 when it failed.
    version: int = 0


@dataclass
class SearchHit:
    chunk: dict
    score: float
    dense_score: float


@dataclass
class SearchOutcome:
    collection: str
    hits: list[SearchHit]
    embed_ms: float
    search_ms: float
    query_embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""


def prefer_language(hits: list[SearchHit], language: str, margin: float) -> list[SearchHit]:
    """In a collection of several languages, a passage in the question's language goes ahead of
    one in another language that is no more similar in meaning than `margin` (cosine) above it:
    an English question gets the English version of an article first, not its Korean translation
    that ranked a little higher."""
    def other(hit: SearchHit) -> bool:  # a passage in another language ("und": none to tell)
        return hit.chunk.get("language") not in (language, UNDETERMINED, None)

    if language not in LANGUAGES or not any(other(h) for h in hits):
        return hits
    ordered: list[SearchHit] = []
    for hit in hits:
        position = len(ordered)
        if hit.chunk.get("language") == language:
            passed = [i for i, earlier in enumerate(ordered) if other(earlier) and earlier.dense_score <= hit.dense_score + margin]
            position = passed[0] if passed else position
        ordered.insert(position, hit)
    return ordered


def derive_document_id(source_path: str) -> str:
    stem = PurePosixPath(source_path.replace("\\", "/")).stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return slug[:200] or "document"


class KnowledgeBase:
    def __init__(
        self,
        settings: RetrieverSettings,
        store: VectorStore,
        dense: DenseEmbedder | Embedder,
        sparse: SparseEmbedder,
        embedders: Embedders | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dense = dense  # the default model: English collections, and those built before models were recorded
        self.sparse = sparse
        self.embedders = embedders or Embedders(settings.embedding_batch_size, settings.query_cache_size, [dense])
        self._models: dict[str, str] = {}
        # Writers of one collection take turns, so a document's old and new versions never race.
        self._write_lock = threading.Lock()

    # -- validation -------------------------------------------------------------------------
    def collection_name(self, name: str) -> str:
        return check_collection_name(name or self.settings.default_collection)

    def existing_collection(self, name: str) -> str:
        name = self.collection_name(name)
        if not self.store.has_collection(name):
            known = ", ".join(self.store.collections()) or "none yet"
            raise NotFound(f"collection {name!r} does not exist (collections: {known})")
        return name

    # -- embedding models -------------------------------------------------------------------
    def model_of(self, collection: str) -> str | None:
        """The dense model that built the collection (None: it holds nothing yet). Collections
        from before models were recorded were built with the default model."""
        if collection not in self._models:
            recorded = self.store.collection_model(collection) if self.store.has_collection(collection) else None
            if recorded is None:
                return None
            self._models[collection] = recorded or self.dense.model_name
        return self._models[collection]

    def model_for_new(self, collection: str, language: str) -> str:
        """A new collection's model: the one configured for it, else by its first document's
        language (bench/retrieval_quality.py: the English model is best on English, the
        multilingual one on everything else)."""
        configured = self.settings.collection_models.get(collection)
        if configured:
            return configured
        if language in (ENGLISH, UNDETERMINED):
            return self.dense.model_name
        return self.settings.multilingual_embedding_model

    def embedder_for(self, collection: str) -> Embedder:
        return self.embedders.get(self.model_of(collection) or self.dense.model_name)

    # -- ingestion --------------------------------------------------------------------------
    def ingest(self, collection: str, document: DocumentInput) -> IngestOutcome:
        collection = self.collection_name(collection)
        document_id = document.document_id or derive_document_id(document.source_path)
        if not _DOCUMENT_ID.fullmatch(document_id):
            return IngestOutcome(document_id, "failed", error=f"invalid document id {document_id!r}")
        try:
            if len(document.content) > self.settings.max_document_bytes:
                raise DocumentError(
                    f"document is {len(document.content)} bytes, over the limit of "
                    f"{self.settings.max_document_bytes}"
                )
            parsed = parse_document(document.content, document.source_path, document.mime_type)
        except DocumentError as exc:
            return IngestOutcome(document_id, "failed", error=str(exc))
        title = document.title or parsed.title
        parsed.title = title
        metadata = {**parsed.metadata, **document.metadata}
        url = document.url or metadata.pop("url", "") or document.source_path
        content_hash = document_hash(document.content, title, url, metadata)

        with self._write_lock:
            model = self.model_of(collection)
            configured = self.settings.collection_models.get(collection)
            if model is not None and configured and configured != model:
                return IngestOutcome(document_id, "failed", error=(
                    f"collection {collection!r} holds embeddings of {model}, but SUPPORTBOT_RETRIEVER_COLLECTION_MODELS "
                    f"names {configured} for it; embeddings of two models do not compare: ingest into a new collection"
                ))
            if model is None:  # a new collection: its first document's language picks the model
                model = self.model_for_new(collection, detect_language(" ".join([title, *(s.text for s in parsed.sections)])[:4000]))
            embedder = self.embedders.get(model)
            self.store.ensure_collection(collection, embedder.dimension)
            previous = self.store.document_version(collection, document_id)
            if previous is not None and previous.content_hash == content_hash:
                return IngestOutcome(document_id, "unchanged", version=previous.number)
            version = previous.number + 1 if previous is not None else 1
            chunks = chunk_document(
                parsed,
                document_id=document_id,
                collection=collection,
                url=url,
                content_hash=content_hash,
                metadata=metadata,
                budget=min(self.settings.chunk_tokens, embedder.max_seq_length - 32),
                overlap=self.settings.chunk_overlap_tokens,
                count=embedder.count_tokens,
            )
            self.store.upsert(collection, self._points(chunks, version, embedder))
            self._models[collection] = embedder.model_name
            # Only once the new version is stored does the old one go.
            self.store.delete_document(collection, document_id, keep_hash=content_hash)
        return IngestOutcome(document_id, "added" if previous is None else "updated", len(chunks), version=version)

    def _points(self, chunks: list[Chunk], version: int, embedder: Embedder) -> list[StoredPoint]:
        texts = [chunk.embedding_text() for chunk in chunks]
        dense = embedder.embed_documents(texts)
        return [
            StoredPoint(
                id=point_id(chunk.chunk_id, chunk.content_hash),
                dense=vector.tolist(),
                sparse=self.sparse.embed_document(text),
                payload={
                    "chunk_id": chunk.chunk_id,
                    "document_id": chunk.document_id,
                    "ordinal": chunk.ordinal,
                    "title": chunk.title,
                    "heading_path": chunk.heading_path,
                    "url": chunk.url,
                    "collection": chunk.collection,
                    "text": chunk.text,
                    "content_hash": chunk.content_hash,
                    "version": version,
                    "embedding_model": embedder.model_name,
                    "language": detect_language(chunk.text),
                    "metadata": chunk.metadata,
                },
            )
            for chunk, vector, text in zip(chunks, dense, texts, strict=True)
        ]

    def finish_ingest(self, collection: str) -> None:
        """Builds the HNSW index once a batch is in, rather than after every document."""
        collection = self.collection_name(collection)
        if self.store.has_collection(collection):
            with self._write_lock:
                self.store.optimize(collection)

    def delete_documents(self, collection: str, document_ids: list[str]) -> tuple[int, int]:
        collection = self.existing_collection(collection)
        if not document_ids:
            raise InvalidArgument("document_ids is empty: name at least one document to delete")
        documents = chunks = 0
        with self._write_lock:
            for document_id in document_ids:
                removed = self.store.delete_document(collection, document_id)
                documents += 1 if removed else 0
                chunks += removed
        return documents, chunks

    # -- search -----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        collection: str = "",
        top_k: int = 0,
        score_threshold: float = 0.0,
        filter: dict[str, str] | None = None,
        mode: SearchModeName = "hybrid",
        mmr: bool = False,
        mmr_lambda: float = 0.0,
    ) -> SearchOutcome:
        query = require_text(query, field="query", limit=self.settings.max_query_chars, hint="send the customer's question")
        top_k = top_k or self.settings.default_top_k
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}")
        if not 0.0 <= mmr_lambda <= 1.0:
            raise InvalidArgument(f"mmr_lambda must be between 0 and 1, got {mmr_lambda}")
        for key, value in (filter or {}).items():
            if not _FILTER_KEY.fullmatch(key):
                raise InvalidArgument(f"filter key {key!r} is invalid: use letters, digits, '_' or '-'")
            if not value:
                raise InvalidArgument(f"filter value for {key!r} is empty")
        if not math.isfinite(score_threshold) or not -1.0 <= score_threshold <= 1.0:
            raise InvalidArgument(f"score_threshold must be a number between -1 and 1, got {score_threshold}")
        collection = self.existing_collection(collection)
        embedder = self.embedder_for(collection)
        threshold = self.settings.threshold_for(embedder.model_name) if score_threshold == 0 else score_threshold

        started = time.perf_counter()
        dense = embedder.embed_query(query)
        sparse = self.sparse.embed_query(query)
        embedded = time.perf_counter()
        plan = QueryPlan(
            dense=dense,
            sparse=sparse,
            mode=mode,
            limit=top_k,
            filter=dict(filter or {}),
            mmr_lambda=(mmr_lambda or 0.7) if mmr else None,
            fusion_weights=(self.settings.dense_weight, self.settings.sparse_weight),
            rrf_k=self.settings.rrf_k,
            candidate_factor=self.settings.candidate_factor,
        )
        raw = self.store.query(collection, plan)
        searched = time.perf_counter()
        query_vector = np.asarray(dense, dtype=np.float32)
        hits = []
        for hit in raw:
            cosine = float(np.dot(query_vector, hit.dense_vector)) if hit.dense_vector else 0.0
            if threshold >= 0 and cosine < threshold:
                continue
            hits.append(SearchHit(hit.payload, hit.score, cosine))
        # Reciprocal-rank fusion ties often (rank 1 + rank 2 scores the same as rank 2 + rank 1),
        # and the engine breaks ties arbitrarily. Here the passage BM25 ranked higher (the lower
        # cosine of the two) goes first, so the same question always gets the same order: on the
        # sample golden set that quotes more key facts than the closer match in meaning first
        # (0.831 vs 0.815 key-fact recall, extractive answers).
        if mode == "hybrid" and not mmr:
            hits.sort(key=lambda h: (-round(h.score, 9), h.dense_score, h.chunk.get("chunk_id", "")))
        hits = prefer_language(hits, detect_language(query), self.settings.language_margin)
        return SearchOutcome(
            collection, hits, (embedded - started) * 1000, (searched - embedded) * 1000, list(dense), embedder.model_name
        )

    def stats(self, collection: str = "") -> list[tuple[str, int, int, str]]:
        names = [self.existing_collection(collection)] if collection else self.store.collections()
        return [(n, self.store.count_documents(n), self.store.count_points(n), self.model_of(n) or "") for n in names]
