"""RetrieverService over gRPC: validation errors become INVALID_ARGUMENT / NOT_FOUND, blocking
engine work runs in threads so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import grpc

from services.retriever.embedding import SparseEmbedder, load_embedder
from services.retriever.ingestion import DocumentInput, StageTimes
from services.retriever.knowledge_base import KnowledgeBase
from services.retriever.memory import set_mmap_threshold
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import DocumentVersion, EdgeStore, QdrantServerStore, VectorStore
from supportbot.answers.grounding import Highlight
from supportbot.core.auth import AuthInterceptor, KeyRing, Role, current_principal
from supportbot.core.documents import IngestStatus
from supportbot.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from supportbot.core.server import GrpcService
from supportbot.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc

log = logging.getLogger(__name__)
T = TypeVar("T")

# Customers reach the help center through the gateway only; searching is for the gateway's service
# key, agents (in their collections) and admins; changing the index is for admins.
METHOD_ROLES: dict[str, tuple[Role, ...]] = {
    "Search": ("service", "agent", "admin"),
    "Ingest": ("admin",),
    "DeleteDocuments": ("admin",),
    "Stats": ("admin",),
    # The gateway routes messages to account actions with the retriever's models.
    "Embed": ("service", "admin"),
}
# Embed is for short texts (messages, example requests), not documents.
MAX_EMBED_TEXTS = 512
MAX_EMBED_CHARS = 2000

SearchMode = Literal["hybrid", "dense", "sparse"]
_MODES: dict[int, SearchMode] = {
    retriever_pb2.SEARCH_MODE_UNSPECIFIED: "hybrid",
    retriever_pb2.SEARCH_MODE_HYBRID: "hybrid",
    retriever_pb2.SEARCH_MODE_DENSE: "dense",
    retriever_pb2.SEARCH_MODE_SPARSE: "sparse",
}


def source_message(payload: dict[str, Any], score: float, dense_score: float, highlights: Sequence[Highlight] = ()) -> common_pb2.Source:
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
        language=payload.get("language") or "und",
        highlights=[common_pb2.Highlight(text=h.text, score=h.score, start=h.start, end=h.end) for h in highlights],
    )


class RetrieverServicer(retriever_pb2_grpc.RetrieverServiceServicer):
    def __init__(self, knowledge_base: KnowledgeBase) -> None:
        self.kb = knowledge_base

    async def Search(  # noqa: N802 (gRPC method name)
        self, request: retriever_pb2.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> retriever_pb2.SearchResponse:
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
            highlights=request.include_highlights,
        )
        return retriever_pb2.SearchResponse(
            results=[source_message(h.chunk, h.score, h.dense_score, h.highlights) for h in outcome.hits],
            embed_ms=outcome.embed_ms,
            search_ms=outcome.search_ms,
            collection=outcome.collection,
            query_embedding=outcome.query_embedding if request.include_query_embedding else (),
            embedding_model=outcome.embedding_model,
            unknown_terms=[
                retriever_pb2.UnknownTerm(term=t.term, nearest_word=t.nearest_word, nearest_similarity=t.nearest_similarity)
                for t in outcome.unknown_terms
            ],
        )

    async def Ingest(  # noqa: N802 (gRPC method name)
        self, request_iterator: AsyncIterator[retriever_pb2.IngestRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[retriever_pb2.IngestResponse]:
        """Thin: takes the call's documents in bounded windows (one collection each) and streams
        each document's outcome back as the pipeline commits it."""
        times = StageTimes()
        seen: set[str] = set()
        more_batches = False
        try:
            async for collection, window, more in ingest_windows(request_iterator, self.kb, self.kb.settings):
                more_batches = more
                seen.add(collection)
                # Set when the call ends, cut off included: the pipeline then stops at its next
                # step rather than embed documents the client's retry sends again.
                stop = threading.Event()
                try:
                    async for outcome in iterate_in_thread(functools.partial(self.kb.ingest_many, collection, window, times, stop)):
                        if outcome.status == "failed":
                            log.warning("document not ingested", extra={"source_path": outcome.source_path, "reason": outcome.error})
                        yield retriever_pb2.IngestResponse(
                            document_id=outcome.document_id,
                            source_path=outcome.source_path,
                            status=IngestStatus(outcome.status).to_pb(),
                            chunks=outcome.chunks,
                            error=outcome.error,
                            collection=collection,
                            version=outcome.version,
                            migrated_from=outcome.migrated_from,
                            stage_seconds=times.snapshot(),
                        )
                finally:
                    stop.set()
        finally:
            # The index is built once, after the ingest's last batch.
            if not more_batches:
                for collection in seen & self.kb.unindexed:
                    await asyncio.to_thread(self.kb.finish_ingest, collection)

    async def DeleteDocuments(  # noqa: N802
        self, request: retriever_pb2.DeleteDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> retriever_pb2.DeleteDocumentsResponse:
        documents, chunks = await asyncio.to_thread(
            self.kb.delete_documents, request.collection, list(request.document_ids)
        )
        return retriever_pb2.DeleteDocumentsResponse(deleted_documents=documents, deleted_chunks=chunks)

    async def Stats(  # noqa: N802
        self, request: retriever_pb2.StatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> retriever_pb2.StatsResponse:
        rows = await asyncio.to_thread(self.kb.stats, request.collection)
        return retriever_pb2.StatsResponse(
            collections=[
                retriever_pb2.CollectionStats(name=n, documents=d, chunks=c, embedding_model=m) for n, d, c, m in rows
            ],
            embedding_model=self.kb.dense.model_name,
            embedding_dimension=self.kb.dense.dimension,
            backend=self.kb.store.backend,
        )


    async def Embed(  # noqa: N802
        self, request: retriever_pb2.EmbedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> retriever_pb2.EmbedResponse:
        texts = list(request.texts)
        if len(texts) > MAX_EMBED_TEXTS or any(len(text) > MAX_EMBED_CHARS for text in texts):
            raise InvalidArgument(f"embed at most {MAX_EMBED_TEXTS} texts of at most {MAX_EMBED_CHARS} characters each")
        if request.embedder == retriever_pb2.EMBEDDER_MULTILINGUAL:
            multilingual = await asyncio.to_thread(self.kb.multilingual)
            if multilingual is None:
                raise FailedPrecondition("no multilingual model is configured (SUPPORTBOT_RETRIEVER_MULTILINGUAL_EMBEDDING_MODEL)")
            embedder = multilingual
        else:
            embedder = self.kb.dense
        rows = (await asyncio.to_thread(embedder.embed_documents, texts)).tolist() if texts else []
        return retriever_pb2.EmbedResponse(vectors=[retriever_pb2.Vector(values=row) for row in rows], model=embedder.model_name)


async def ingest_windows(
    requests: AsyncIterator[retriever_pb2.IngestRequest], kb: KnowledgeBase, settings: RetrieverSettings
) -> AsyncIterator[tuple[str, list[DocumentInput], bool]]:
    """The call's documents in windows of at most ingest_call_window_documents (and bytes), each
    of one collection: however much a client sends in one call, the server holds one window."""
    window: list[DocumentInput] = []
    size = 0
    collection = ""
    more_batches = False
    async for request in requests:
        target = kb.collection_name(request.collection)
        if window and (target != collection or len(window) >= settings.ingest_call_window_documents
                       or size + len(request.document.content) > settings.ingest_call_window_bytes):
            yield collection, window, more_batches
            window, size = [], 0
        collection, more_batches = target, request.more_batches
        document = request.document
        window.append(DocumentInput(
            content=document.content, source_path=document.source_path, document_id=document.document_id,
            mime_type=document.mime_type, title=document.title, url=document.url, metadata=dict(document.metadata),
        ))
        size += len(document.content)
    if window:
        yield collection, window, more_batches


async def iterate_in_thread(produce: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """A blocking iterator run in a worker thread, its items handed to the event loop as they come."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def work() -> None:
        try:
            for item in produce():
                loop.call_soon_threadsafe(items.put_nowait, ("item", item))
        except BaseException as error:  # noqa: BLE001 (re-raised on the event loop)
            loop.call_soon_threadsafe(items.put_nowait, ("error", error))
        finally:
            loop.call_soon_threadsafe(items.put_nowait, ("done", None))

    worker = asyncio.ensure_future(asyncio.to_thread(work))
    while True:
        kind, value = await items.get()
        if kind == "done":
            break
        if kind == "error":
            raise value  # type: ignore[misc]
        yield value  # type: ignore[misc]
    await worker


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
    dense = load_embedder(
        settings.embedding_model, settings.embedding_batch_size, settings.query_cache_size, settings.embedding_batch_tokens
    )
    knowledge_base = KnowledgeBase(settings, build_store(settings), dense, SparseEmbedder())
    # Loaded before the service answers, not by the first ingest or the first Korean question.
    knowledge_base.multilingual_companion(dense)
    return knowledge_base


async def build_service(settings: RetrieverSettings) -> GrpcService:
    # Before the models load, so their first blocks already follow it.
    set_mmap_threshold(settings.malloc_mmap_threshold_bytes)
    knowledge_base = await asyncio.to_thread(build_knowledge_base, settings)

    def register(server: grpc.aio.Server) -> list[str]:
        retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(RetrieverServicer(knowledge_base), server)
        return [retriever_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name]

    async def on_stop() -> None:
        await asyncio.to_thread(knowledge_base.close_parse_processes)
        knowledge_base.store.close()

    interceptors = []
    if settings.api_keys_file is not None:
        interceptors.append(AuthInterceptor(KeyRing.load(settings.api_keys_file), METHOD_ROLES))
    return GrpcService("retriever", settings, register, on_stop, interceptors)
