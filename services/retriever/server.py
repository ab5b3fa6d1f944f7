"""RetrieverService over gRPC: validation errors become INVALID_ARGUMENT / NOT_FOUND, blocking
engine work runs in threads so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from services.retriever.embedding import SparseEmbedder, load_embedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import DocumentVersion, EdgeStore, QdrantServerStore, VectorStore
from supportbot.core.auth import AuthInterceptor, KeyRing, current_principal
from supportbot.core.errors import PermissionDenied
from supportbot.core.server import GrpcService
from supportbot.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc

log = logging.getLogger(__name__)

# Customers reach the help center through the gateway only; searching is for the gateway's service
# key, agents (in their collections) and admins; changing the index is for admins.
METHOD_ROLES = {
    "Search": ("service", "agent", "admin"),
    "Ingest": ("admin",),
    "DeleteDocuments": ("admin",),
    "Stats": ("admin",),
}

_MODES = {
    retriever_pb2.SEARCH_MODE_UNSPECIFIED: "hybrid",
    retriever_pb2.SEARCH_MODE_HYBRID: "hybrid",
    retriever_pb2.SEARCH_MODE_DENSE: "dense",
    retriever_pb2.SEARCH_MODE_SPARSE: "sparse",
}
_STATUS = {
    "added": retriever_pb2.INGEST_STATUS_ADDED,
    "updated": retriever_pb2.INGEST_STATUS_UPDATED,
    "unchanged": retriever_pb2.INGEST_STATUS_UNCHANGED,
    "failed": retriever_pb2.INGEST_STATUS_FAILED,
}


def source_message(payload: dict, score: float, dense_score: float) -> common_pb2.Source:
    return common_pb2.Source(
        chunk_id=payload.get("chunk_id", ""),
        document_id=payload.get("document_id", ""),
        title=payload.get("title", ""),
        heading_path=payload.get("heading_path", []),
        url=payload.get("url", ""),
        collection=payload.get("collection", ""),
        text=payload.get("text", ""),
        score=score,
        dense_score=dense_score,
        metadata={str(k): str(v) for k, v in (payload.get("metadata") or {}).items()},
        content_hash=payload.get("content_hash", ""),
        document_version=DocumentVersion.of(payload).number,
    )


class RetrieverServicer(retriever_pb2_grpc.RetrieverServiceServicer):
    def __init__(self, knowledge_base: KnowledgeBase) -> None:
        self.kb = knowledge_base

    async def Search(self, request, context):  # noqa: N802 (gRPC method name)
        principal = current_principal()
        collection = self.kb.collection_name(request.collection)
        if principal is not None and not principal.may_use_collection(collection, self.kb.collection_name("")):
            raise PermissionDenied(f"this key may not search collection {collection}")
        outcome = await asyncio.to_thread(
            self.kb.search,
            request.query,
            collection=request.collection,
            top_k=request.top_k,
            score_threshold=request.score_threshold,
            filter=dict(request.filter),
            mode=_MODES.get(request.mode, "hybrid"),
            mmr=request.mmr,
            mmr_lambda=request.mmr_lambda,
        )
        return retriever_pb2.SearchResponse(
            results=[source_message(h.chunk, h.score, h.dense_score) for h in outcome.hits],
            embed_ms=outcome.embed_ms,
            search_ms=outcome.search_ms,
            collection=outcome.collection,
            query_embedding=outcome.query_embedding if request.include_query_embedding else (),
            embedding_model=outcome.embedding_model,
        )

    async def Ingest(  # noqa: N802 (gRPC method name)
        self, request_iterator: AsyncIterator[retriever_pb2.IngestRequest], context
    ) -> AsyncIterator[retriever_pb2.IngestResponse]:
        touched: set[str] = set()
        try:
            async for request in request_iterator:
                document = request.document
                collection = self.kb.collection_name(request.collection)
                outcome = await asyncio.to_thread(
                    self.kb.ingest,
                    collection,
                    DocumentInput(
                        content=document.content,
                        source_path=document.source_path,
                        document_id=document.document_id,
                        mime_type=document.mime_type,
                        title=document.title,
                        url=document.url,
                        metadata=dict(document.metadata),
                    ),
                )
                if outcome.status in {"added", "updated"}:
                    touched.add(collection)
                if outcome.status == "failed":
                    log.warning(
                        "document not ingested",
                        extra={"source_path": document.source_path, "reason": outcome.error},
                    )
                yield retriever_pb2.IngestResponse(
                    document_id=outcome.document_id,
                    source_path=document.source_path,
                    status=_STATUS[outcome.status],
                    chunks=outcome.chunks,
                    error=outcome.error,
                    collection=collection,
                    version=outcome.version,
                )
        finally:
            for collection in touched:
                await asyncio.to_thread(self.kb.finish_ingest, collection)

    async def DeleteDocuments(self, request, context):  # noqa: N802
        documents, chunks = await asyncio.to_thread(
            self.kb.delete_documents, request.collection, list(request.document_ids)
        )
        return retriever_pb2.DeleteDocumentsResponse(deleted_documents=documents, deleted_chunks=chunks)

    async def Stats(self, request, context):  # noqa: N802
        rows = await asyncio.to_thread(self.kb.stats, request.collection)
        return retriever_pb2.StatsResponse(
            collections=[
                retriever_pb2.CollectionStats(name=n, documents=d, chunks=c, embedding_model=m) for n, d, c, m in rows
            ],
            embedding_model=self.kb.dense.model_name,
            embedding_dimension=self.kb.dense.dimension,
            backend=self.kb.store.backend,
        )


def build_store(settings: RetrieverSettings) -> VectorStore:
    if settings.backend == "edge":
        return EdgeStore(settings.resolved_index_path())
    return QdrantServerStore(
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key,
        prefer_grpc=settings.qdrant_prefer_grpc,
        location=settings.qdrant_location,
        shard_number=settings.shard_number,
        replication_factor=settings.replication_factor,
        write_consistency_factor=settings.write_consistency_factor,
    )


def build_knowledge_base(settings: RetrieverSettings) -> KnowledgeBase:
    dense = load_embedder(settings.embedding_model, settings.embedding_batch_size, settings.query_cache_size)
    return KnowledgeBase(settings, build_store(settings), dense, SparseEmbedder())


async def build_service(settings: RetrieverSettings) -> GrpcService:
    knowledge_base = await asyncio.to_thread(build_knowledge_base, settings)

    def register(server: grpc.aio.Server) -> list[str]:
        retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(RetrieverServicer(knowledge_base), server)
        return [retriever_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name]

    async def on_stop() -> None:
        knowledge_base.store.close()

    interceptors = []
    if settings.api_keys_file is not None:
        interceptors.append(AuthInterceptor(KeyRing.load(settings.api_keys_file), METHOD_ROLES))
    return GrpcService("retriever", settings, register, on_stop, interceptors)
