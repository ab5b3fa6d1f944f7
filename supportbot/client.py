"""A typed Python client for supportbot's gRPC API (the gateway, and the retriever and generator
for admin work), with a streaming chat helper.

    async with SupportbotClient("127.0.0.1:50051", api_key="...") as client:
        async for event in client.chat("How do I reset my password?"):
            if event.kind == "delta":
                print(event.text, end="")
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

import grpc

from supportbot.core.auth import API_KEY_METADATA_KEY
from supportbot.core.channels import create_channel
from supportbot.core.documents import MIME_BY_SUFFIX, IngestStatus, document_id_for
from supportbot.core.settings import (
    DEFAULT_GATEWAY_ADDRESS,
    DEFAULT_GENERATOR_ADDRESS,
    DEFAULT_RETRIEVER_ADDRESS,
)
from supportbot.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    common_pb2,
    generator_pb2,
    generator_pb2_grpc,
    retriever_pb2,
    retriever_pb2_grpc,
)

T = TypeVar("T")


@dataclass
class IngestReport:
    """What one ingest did: documents by outcome, chunks written, why any failed, and enough to
    show progress (documents and chunks done, the server's time per stage)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    # (document id, its new version) of each changed document.
    updates: list[tuple[str, int]] = field(default_factory=list)
    # (old id, new id) of documents moved from the ids of collections built with file stems.
    migrated: list[tuple[str, str]] = field(default_factory=list)
    # The documents to go, when the caller knew (0: unknown).
    total: int = 0
    # Batches sent again after a transient failure (a connection closed, the server restarting).
    retries: int = 0
    # Of the unchanged: documents a call cut off before it answered had already stored (its
    # retry finds them unchanged).
    stored_before_retry: int = 0
    # The server's seconds per stage, summed over the ingest's calls.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    @property
    def done(self) -> int:
        return self.added + self.updated + self.unchanged + self.failed

    @property
    def elapsed(self) -> float:
        """Seconds so far, or from start to end once the ingest ended."""
        end = self.finished if self.finished is not None else time.perf_counter()
        return max(end - self.started, 1e-9)

    def count(self, response: retriever_pb2.IngestResponse) -> str:
        status = IngestStatus.from_pb(response.status).value
        setattr(self, status, getattr(self, status) + 1)
        self.chunks += response.chunks
        if status == "failed":
            self.failures.append((response.source_path or response.document_id, response.error))
        elif status == "updated":
            self.updates.append((response.document_id, response.version))
        if response.migrated_from:
            self.migrated.append((response.migrated_from, response.document_id))
        return status

    def summary(self) -> str:
        retried = f" ({self.stored_before_retry} of them stored by a call cut off before it answered)" if self.stored_before_retry else ""
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged{retried}, {self.failed} failed; "
            f"{self.chunks} chunks written in {self.elapsed:.0f} s"
        )


class IngestInterrupted(Exception):
    """An ingest stopped before its end (the retriever unreachable through every retry). What
    was stored stays: running the same ingest again skips it as unchanged and goes on."""

    def __init__(self, report: IngestReport, reason: str) -> None:
        super().__init__(reason)
        self.report = report
        self.reason = reason


# Failures worth sending a batch again for: the connection closed (a server's max connection age
# or a restart), a deadline, a server shedding load.
TRANSIENT_CODES = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
})


@dataclass(frozen=True)
class IngestBatching:
    """How a long ingest is cut: bounded batches, each its own call (shorter than any server's
    max connection age), each sent again after a transient failure, with backoff."""

    # About 750 chunks of help pages: tens of seconds of embedding a call, far inside any max
    # connection age, and enough for the retriever's pipeline to overlap parsing with embedding.
    documents: int = 128
    bytes: int = 16 * 1024 * 1024
    attempts: int = 6
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    call_timeout_s: float = 600.0


class ChatOptions(TypedDict, total=False):
    """The keywords of SupportbotClient.chat besides the message (what `ask` passes on)."""

    session_id: str
    collection: str
    channel: str
    answer_mode: int
    timeout: float | None
    bypass_answer_cache: bool


@dataclass
class ChatEvent:
    """One event of a chat turn: kind is "session", "sources", "delta" or "result"."""

    kind: str
    session_id: str = ""
    turn_id: str = ""
    text: str = ""
    sources: list[common_pb2.Source] = field(default_factory=list)
    result: chat_pb2.ChatResult | None = None


def gateway_address() -> str:
    return os.environ.get("SUPPORTBOT_GATEWAY_ADDRESS", DEFAULT_GATEWAY_ADDRESS)


def retriever_address() -> str:
    return os.environ.get("SUPPORTBOT_RETRIEVER_ADDRESS", DEFAULT_RETRIEVER_ADDRESS)


def generator_address() -> str:
    return os.environ.get("SUPPORTBOT_GENERATOR_ADDRESS", DEFAULT_GENERATOR_ADDRESS)


class SupportbotClient:
    def __init__(
        self,
        gateway: str | None = None,
        *,
        retriever: str | None = None,
        generator: str | None = None,
        api_key: str | None = None,
        root_certificates: Path | None = None,
    ) -> None:
        certificates = root_certificates.read_bytes() if root_certificates else None
        self._gateway_address = gateway or gateway_address()
        self._retriever_address = retriever or retriever_address()
        self._generator_address = generator or generator_address()
        self._certificates = certificates
        self.api_key = api_key if api_key is not None else os.environ.get("SUPPORTBOT_API_KEY", "")
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, address: str) -> grpc.aio.Channel:
        """Every call on it carries the API key, stubs used directly included."""
        if address not in self._channels:
            self._channels[address] = create_channel(address, root_certificates=self._certificates, metadata=self.metadata)
        return self._channels[address]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((API_KEY_METADATA_KEY, self.api_key),) if self.api_key else ()

    @property
    def chat_stub(self) -> chat_pb2_grpc.ChatServiceStub:
        return chat_pb2_grpc.ChatServiceStub(self._channel(self._gateway_address))

    @property
    def retriever_stub(self) -> retriever_pb2_grpc.RetrieverServiceStub:
        return retriever_pb2_grpc.RetrieverServiceStub(self._channel(self._retriever_address))

    @property
    def generator_stub(self) -> generator_pb2_grpc.GeneratorServiceStub:
        return generator_pb2_grpc.GeneratorServiceStub(self._channel(self._generator_address))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)  # grpc-stubs make grace required; None is grpcio's default
        self._channels.clear()

    async def __aenter__(self) -> SupportbotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- chat -------------------------------------------------------------------------------
    async def chat(
        self, message: str, *, session_id: str = "", collection: str = "", channel: str = "api",
        answer_mode: int = chat_pb2.ANSWER_MODE_UNSPECIFIED, timeout: float | None = 300, bypass_answer_cache: bool = False,
    ) -> AsyncIterator[ChatEvent]:
        request = chat_pb2.ChatRequest(
            session_id=session_id, message=message, collection=collection, channel=channel,
            # protobuf takes any int for an enum field (AnswerMode.Value returns one); protoc's
            # .pyi accepts only the enum's own type.
            answer_mode=answer_mode,  # type: ignore[arg-type]
            bypass_answer_cache=bypass_answer_cache,
        )
        call = self.chat_stub.Chat(request, timeout=timeout)
        async for response in call:
            kind = response.WhichOneof("event")
            if kind == "session":
                yield ChatEvent("session", session_id=response.session.session_id, turn_id=response.session.turn_id)
            elif kind == "sources":
                yield ChatEvent("sources", sources=list(response.sources.sources))
            elif kind == "delta":
                yield ChatEvent("delta", text=response.delta.text)
            elif kind == "result":
                yield ChatEvent("result", turn_id=response.result.turn_id, text=response.result.answer, result=response.result)

    async def ask(
        self, message: str, **kwargs: Unpack[ChatOptions]
    ) -> tuple[str, chat_pb2.ChatResult, list[common_pb2.Source]]:
        """One whole turn: (session id, final result, sources)."""
        session_id, result, sources = "", None, []
        async for event in self.chat(message, **kwargs):
            if event.kind == "session":
                session_id = event.session_id
            elif event.kind == "sources":
                sources = event.sources
            elif event.kind == "result":
                result = event.result
        assert result is not None, "the gateway ended the turn without a result"
        return session_id, result, sources

    # -- retriever --------------------------------------------------------------------------
    async def search(
        self, query: str, *, collection: str = "", top_k: int = 0, filter: dict[str, str] | None = None,
        mode: int = retriever_pb2.SEARCH_MODE_HYBRID, mmr: bool = False, score_threshold: float = 0.0,
    ) -> retriever_pb2.SearchResponse:
        # The service stubs (*_pb2_grpc.py) are untyped: their replies are typed where received.
        response: retriever_pb2.SearchResponse = await self.retriever_stub.Search(
            retriever_pb2.SearchRequest(
                query=query, collection=collection, top_k=top_k, filter=filter or {},
                mode=mode,  # type: ignore[arg-type]  # an int, as for answer_mode in chat
                mmr=mmr, score_threshold=score_threshold,
            ),
            timeout=60,
        )
        return response

    async def ingest(
        self, documents: Iterable[retriever_pb2.Document], *, collection: str = ""
    ) -> AsyncIterator[retriever_pb2.IngestResponse]:
        """One Ingest call with every document (short ingests; long ones: ingest_documents)."""
        async def requests() -> AsyncIterator[retriever_pb2.IngestRequest]:
            for document in documents:
                yield retriever_pb2.IngestRequest(collection=collection, document=document)

        async for response in self.retriever_stub.Ingest(requests()):
            yield response

    async def ingest_documents(
        self,
        documents: Iterable[retriever_pb2.Document] | AsyncIterable[retriever_pb2.Document],
        *,
        collection: str = "",
        total: int = 0,
        on_document: Callable[[IngestReport], None] = lambda _: None,
        batching: IngestBatching = IngestBatching(),
    ) -> IngestReport:
        """The entry point for any number of documents (files, web pages): read one batch at a
        time from `documents` (a generator that reads each document when asked keeps memory
        bounded), each batch one call, sent again without the documents already answered when
        the call fails for a transient reason. `on_document` sees the report after each
        document. Raises IngestInterrupted when a batch fails through every retry; running the
        same ingest again resumes (stored documents come back unchanged)."""
        report = IngestReport(total=total)
        batch: list[retriever_pb2.Document] = []
        size = 0
        try:
            async for document in _aiter(documents):
                if batch and (len(batch) >= batching.documents or size + len(document.content) > batching.bytes):
                    await self._send_batch(batch, collection, True, report, on_document, batching)
                    batch, size = [], 0
                batch.append(document)
                size += len(document.content)
            if batch:
                await self._send_batch(batch, collection, False, report, on_document, batching)
        finally:
            report.finished = time.perf_counter()
        return report

    async def _send_batch(
        self, batch: list[retriever_pb2.Document], collection: str, more_batches: bool, report: IngestReport,
        on_document: Callable[[IngestReport], None], batching: IngestBatching,
    ) -> None:
        remaining = list(batch)
        failures = 0
        tried: set[int] = set()  # documents (by id()) sent in a call that was cut off
        # Documents per call: halved after a failure that answered none, so a batch too slow to
        # finish within the server's connection lifetime still gets through, in smaller calls.
        per_call = len(remaining)
        while remaining:
            sending = remaining[:per_call]
            requests = [
                retriever_pb2.IngestRequest(
                    collection=collection, document=d, more_batches=more_batches or len(sending) < len(remaining)
                )
                for d in sending
            ]
            stage_seconds: dict[str, float] = {}
            try:
                async for response in self.retriever_stub.Ingest(_astream(requests), timeout=batching.call_timeout_s):
                    answered = _remove_answered(remaining, response)
                    stage_seconds = dict(response.stage_seconds)
                    if report.count(response) == "unchanged" and answered is not None and id(answered) in tried:
                        report.stored_before_retry += 1
                    failures = 0  # progress: a connection that lives minutes still gets through
                    on_document(report)
                unanswered = [d for d in sending if any(d is r for r in remaining)]
                if unanswered:
                    raise _ServerDropped(f"UNAVAILABLE: the retriever answered no outcome for {len(unanswered)} documents")
            except (grpc.aio.AioRpcError, _ServerDropped) as error:
                if isinstance(error, grpc.aio.AioRpcError) and error.code() not in TRANSIENT_CODES:
                    raise
                reason = f"{error.code().name}: {error.details()}" if isinstance(error, grpc.aio.AioRpcError) else str(error)
                tried.update(id(d) for d in sending)
                failures += 1
                if failures >= batching.attempts:
                    raise IngestInterrupted(report, reason) from error
                per_call = max(1, per_call // 2) if failures > 1 else per_call
                report.retries += 1
                await asyncio.sleep(min(batching.max_backoff_s, batching.backoff_s * 2 ** (failures - 1)))
            finally:
                _add_stages(report, stage_seconds)

    async def ingest_paths(
        self, paths: Iterable[Path], *, collection: str = "", on_document: Callable[[IngestReport], None] = lambda _: None,
        batching: IngestBatching = IngestBatching(),
    ) -> IngestReport:
        """Ingests files and folders, read from disk one batch at a time; `on_document` sees the
        report after each document."""
        paths = list(paths)
        return await self.ingest_documents(
            iter_documents(paths), collection=collection, total=count_documents(paths), on_document=on_document,
            batching=batching,
        )

    async def stats(self, collection: str = "") -> retriever_pb2.StatsResponse:
        response: retriever_pb2.StatsResponse = await self.retriever_stub.Stats(
            retriever_pb2.StatsRequest(collection=collection), timeout=30
        )
        return response

    async def delete_documents(self, document_ids: list[str], *, collection: str = "") -> retriever_pb2.DeleteDocumentsResponse:
        response: retriever_pb2.DeleteDocumentsResponse = await self.retriever_stub.DeleteDocuments(
            retriever_pb2.DeleteDocumentsRequest(collection=collection, document_ids=document_ids),
            timeout=60,
        )
        return response

    # -- generator --------------------------------------------------------------------------
    async def generator_info(self) -> generator_pb2.InfoResponse:
        response: generator_pb2.InfoResponse = await self.generator_stub.Info(generator_pb2.InfoRequest(), timeout=30)
        return response


class _ServerDropped(Exception):
    pass


def _remove_answered(
    remaining: list[retriever_pb2.Document], response: retriever_pb2.IngestResponse
) -> retriever_pb2.Document | None:
    """Drops the document an outcome answers (by its path, else its id) from those to send again."""
    for i, document in enumerate(remaining):
        if (response.source_path and document.source_path == response.source_path) or (
            not document.source_path and document.document_id == response.document_id
        ):
            return remaining.pop(i)
    return None


def _add_stages(report: IngestReport, stage_seconds: dict[str, float]) -> None:
    for stage, seconds in stage_seconds.items():
        report.stage_seconds[stage] = report.stage_seconds.get(stage, 0.0) + seconds


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _astream(requests: list[retriever_pb2.IngestRequest]) -> AsyncIterator[retriever_pb2.IngestRequest]:
    for request in requests:
        yield request


def files_to_ingest(paths: Iterable[Path]) -> Iterator[tuple[Path, Path | None]]:
    """Each file with the folder it was found in (None: given by itself), supported files of
    folders in sorted order."""
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MIME_BY_SUFFIX):
                yield file, path
        else:
            yield path, None


def count_documents(paths: Iterable[Path]) -> int:
    return sum(1 for _ in files_to_ingest(paths))


def iter_documents(paths: Iterable[Path]) -> Iterator[retriever_pb2.Document]:
    """Files and the supported files inside folders, each read when it is asked for, with its id:
    the path relative to the folder given, without extension (a file given alone: its stem)."""
    for file, root in files_to_ingest(paths):
        yield retriever_pb2.Document(
            document_id=document_id_for(file, root), source_path=str(file), content=file.read_bytes()
        )


def documents_from_paths(paths: Iterable[Path]) -> list[tuple[Path, retriever_pb2.Document]]:
    """Files, and the supported files inside folders, as Documents keyed by their path."""
    return [(Path(document.source_path), document) for document in iter_documents(paths)]


async def ingest_quietly(paths: Iterable[Path], collection: str, address: str, api_key: str) -> IngestReport:
    """One ingest through a client of its own (the stack's sample, tests, benchmarks)."""
    async with SupportbotClient(retriever=address, api_key=api_key) as client:
        return await client.ingest_paths(paths, collection=collection)
