"""A typed Python client for supportbot's gRPC API (the gateway, and the retriever and generator
for admin work), with a streaming chat helper.

    async with SupportbotClient("127.0.0.1:50051", api_key="...") as client:
        async for event in client.chat("How do I reset my password?"):
            if event.kind == "delta":
                print(event.text, end="")
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from supportbot.core.auth import API_KEY_METADATA_KEY
from supportbot.core.channels import create_channel
from supportbot.core.documents import MIME_BY_SUFFIX
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

_INGEST_STATUS_NAMES = {
    retriever_pb2.INGEST_STATUS_ADDED: "added",
    retriever_pb2.INGEST_STATUS_UPDATED: "updated",
    retriever_pb2.INGEST_STATUS_UNCHANGED: "unchanged",
    retriever_pb2.INGEST_STATUS_FAILED: "failed",
}


@dataclass
class IngestReport:
    """What one ingest did: documents by outcome, chunks written, and why any failed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    # (document id, its new version) of each changed document.
    updates: list[tuple[str, int]] = field(default_factory=list)

    def count(self, response: retriever_pb2.IngestResponse) -> str:
        status = _INGEST_STATUS_NAMES.get(response.status, "failed")
        setattr(self, status, getattr(self, status) + 1)
        self.chunks += response.chunks
        if status == "failed":
            self.failures.append((response.source_path, response.error))
        elif status == "updated":
            self.updates.append((response.document_id, response.version))
        return status


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
            await channel.close()
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
            session_id=session_id, message=message, collection=collection, channel=channel, answer_mode=answer_mode,
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

    async def ask(self, message: str, **kwargs: object) -> tuple[str, chat_pb2.ChatResult, list[common_pb2.Source]]:
        """One whole turn: (session id, final result, sources)."""
        session_id, result, sources = "", None, []
        async for event in self.chat(message, **kwargs):  # type: ignore[arg-type]
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
        return await self.retriever_stub.Search(
            retriever_pb2.SearchRequest(
                query=query, collection=collection, top_k=top_k, filter=filter or {}, mode=mode, mmr=mmr,
                score_threshold=score_threshold,
            ),
            timeout=60,
        )

    async def ingest(
        self, documents: Iterable[retriever_pb2.Document], *, collection: str = ""
    ) -> AsyncIterator[retriever_pb2.IngestResponse]:
        async def requests() -> AsyncIterator[retriever_pb2.IngestRequest]:
            for document in documents:
                yield retriever_pb2.IngestRequest(collection=collection, document=document)

        async for response in self.retriever_stub.Ingest(requests()):
            yield response

    async def ingest_paths(
        self, paths: Iterable[Path], *, collection: str = "", on_document: Callable[[IngestReport], None] = lambda _: None
    ) -> IngestReport:
        """Ingests files and folders; `on_document` sees the report after each document."""
        report = IngestReport()
        documents = documents_from_paths(paths)
        async for response in self.ingest((d for _, d in documents), collection=collection):
            report.count(response)
            on_document(report)
        return report

    async def stats(self, collection: str = "") -> retriever_pb2.StatsResponse:
        return await self.retriever_stub.Stats(retriever_pb2.StatsRequest(collection=collection), timeout=30)

    async def delete_documents(self, document_ids: list[str], *, collection: str = "") -> retriever_pb2.DeleteDocumentsResponse:
        return await self.retriever_stub.DeleteDocuments(
            retriever_pb2.DeleteDocumentsRequest(collection=collection, document_ids=document_ids),
            timeout=60,
        )

    # -- generator --------------------------------------------------------------------------
    async def generator_info(self) -> generator_pb2.InfoResponse:
        return await self.generator_stub.Info(generator_pb2.InfoRequest(), timeout=30)


def documents_from_paths(paths: Iterable[Path]) -> list[tuple[Path, retriever_pb2.Document]]:
    """Files, and the supported files inside folders, as Documents keyed by their path."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MIME_BY_SUFFIX))
        else:
            files.append(path)
    return [
        (file, retriever_pb2.Document(source_path=str(file), content=file.read_bytes()))
        for file in files
    ]


async def ingest_quietly(paths: Iterable[Path], collection: str, address: str, api_key: str) -> IngestReport:
    """One ingest through a client of its own (the stack's sample, tests, benchmarks)."""
    async with SupportbotClient(retriever=address, api_key=api_key) as client:
        return await client.ingest_paths(paths, collection=collection)
