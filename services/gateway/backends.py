"""The retriever and the generator as the gateway's stages call them: in the gateway's own
types, converted to and from the wire in convert.py. Errors stay gRPC's (`grpc.aio.AioRpcError`):
each stage decides what a failed call means for its turn."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Protocol

from services.gateway import convert
from services.gateway.domain import GenerationRequest, GenerationResult, SearchResult
from supportbot.core.telemetry import tracer

TRACER = tracer(__name__)


class RetrieverStub(Protocol):
    def Search(self, request: Any, timeout: float) -> Any: ...  # noqa: N802 (gRPC method name)


class EmbedStub(Protocol):
    def Embed(self, request: Any, timeout: float) -> Any: ...  # noqa: N802 (gRPC method name)


class GeneratorStub(Protocol):
    def Generate(self, request: Any, timeout: float) -> Any: ...  # noqa: N802 (gRPC method name)


class Retriever:
    def __init__(self, stub: RetrieverStub, top_k: int, timeout_s: float) -> None:
        self.stub = stub
        self.top_k = top_k
        self.timeout_s = timeout_s

    async def search(self, query: str, collection: str, *, include_query_embedding: bool = False) -> SearchResult:
        with TRACER.start_as_current_span("retrieval"):
            request = convert.search_request(query, collection, self.top_k, include_query_embedding)
            return convert.search_result(await self.stub.Search(request, timeout=self.timeout_s))


class Embeddings:
    """The retriever's dense models for short texts (account-action routing), so the gateway
    loads no model of its own: the primary (English) or the multilingual one."""

    def __init__(self, stub: EmbedStub, timeout_s: float) -> None:
        self.stub = stub
        self.timeout_s = timeout_s

    async def embed(self, texts: list[str], *, multilingual: bool, timeout_s: float | None = None) -> list[list[float]]:
        """`timeout_s`: a deadline other than the per-turn one (a one-time build of many texts)."""
        with TRACER.start_as_current_span("embed"):
            request = convert.embed_request(texts, multilingual)
            response = await self.stub.Embed(request, timeout=timeout_s or self.timeout_s)
            return convert.embed_vectors(response)


class Generator:
    def __init__(self, stub: GeneratorStub, timeout_s: float) -> None:
        self.stub = stub
        self.timeout_s = timeout_s

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str | GenerationResult, None]:
        """The generation's text as it streams, then how it ended."""
        responses = self.stub.Generate(convert.generate_request(request), timeout=self.timeout_s)
        async with aclosing(convert.generation_events(responses)) as events:
            async for event in events:
                yield event
