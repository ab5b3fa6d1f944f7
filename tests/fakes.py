"""Scripted stand-ins for the retriever and the generator: the gateway's logic runs on them
without a model (tests/services/gateway/test_gateway_turns.py, tests/services/web/test_web.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from supportbot.v1 import common_pb2, generator_pb2, retriever_pb2

RESET = common_pb2.Source(
    chunk_id="helpcenter/reset-password#0", document_id="reset-password", title="Reset your password",
    url="https://help.example/reset", score=1.0, dense_score=0.7, content_hash="reset-v1", document_version=1,
    text="On the sign-in screen, tap **Forgot password?** and enter the e-mail address on your account. "
         "We send a reset link that is valid for 60 minutes.",
)
REFUNDS = common_pb2.Source(
    chunk_id="helpcenter/refund-timing#1", document_id="refund-timing", title="When will I get my refund?",
    score=0.5, dense_score=0.3, text="Card refunds take 5-10 business days after approval.",
    content_hash="refunds-v1", document_version=1,
)


def rpc_error(code: grpc.StatusCode, details: str = "scripted") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def embedding_of(text: str, dimension: int = 64) -> list[float]:
    """A stand-in embedding: the same words (case and punctuation aside) give the same unit
    vector, other texts nearly orthogonal ones (tests that need two texts close give them one
    vector on purpose)."""
    import hashlib
    import re

    import numpy as np

    words = " ".join(re.findall(r"\w+", text.lower()))
    seed = int.from_bytes(hashlib.sha256(words.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimension)
    return [float(x) for x in vector / np.linalg.norm(vector)]


class FakeRetriever:
    def __init__(self) -> None:
        self.results: list[common_pb2.Source] = [RESET, REFUNDS]
        self.error: grpc.StatusCode | None = None
        self.queries: list[str] = []
        # Queries embedded as another text's embedding (paraphrases, for the answer cache).
        self.same_embedding: dict[str, str] = {}

    async def Search(self, request: retriever_pb2.SearchRequest, timeout: float) -> retriever_pb2.SearchResponse:  # noqa: N802
        self.queries.append(request.query)
        if self.error is not None:
            raise rpc_error(self.error)
        if len(request.query) > 2000:  # the retriever's own limit
            raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "query is over the limit of 2000 characters")
        embedding = embedding_of(self.same_embedding.get(request.query, request.query)) if request.include_query_embedding else []
        return retriever_pb2.SearchResponse(
            results=self.results, collection=request.collection, query_embedding=embedding, embedding_model="fake-embedder"
        )


class FakeGenerator:
    """Streams the scripted text in small pieces, then a result; or fails."""

    def __init__(self) -> None:
        self.text = "Tap Forgot password? on the sign-in screen [1]. The link is valid for 60 minutes."
        self.finish = common_pb2.FINISH_REASON_END_OF_TURN
        self.error: grpc.StatusCode | None = None
        self.fail_after: int | None = None  # deltas sent before the stream breaks
        self.requests: list[generator_pb2.GenerateRequest] = []

    def Generate(self, request: generator_pb2.GenerateRequest, timeout: float) -> AsyncIterator[generator_pb2.GenerateResponse]:  # noqa: N802
        self.requests.append(request)

        async def stream() -> AsyncIterator[generator_pb2.GenerateResponse]:
            if self.error is not None:
                raise rpc_error(self.error)
            for start in range(0, len(self.text), 7):
                if self.fail_after is not None and start // 7 == self.fail_after:
                    raise rpc_error(grpc.StatusCode.UNAVAILABLE, "the generator went away")
                yield generator_pb2.GenerateResponse(delta=generator_pb2.TextDelta(text=self.text[start : start + 7]))
                await asyncio.sleep(0)
            yield generator_pb2.GenerateResponse(result=generator_pb2.GenerateResult(
                text=self.text, finish_reason=self.finish, completion_tokens=len(self.text.split()),
            ))

        return stream()


@asynccontextmanager
async def keyed_gateway(servicer) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """The chat servicer on a real gRPC server that checks tests/conftest.py's TEST_KEYS with
    the gateway's own roles; yields its address."""
    from services.gateway.server import METHOD_ROLES, PEOPLE
    from supportbot.core.auth import AuthInterceptor, KeyRing, Principal
    from supportbot.core.errors import ErrorMappingInterceptor
    from supportbot.v1 import chat_pb2_grpc
    from tests.conftest import TEST_KEYS

    # A publishable key's visitors share one customer id, as the keys file gives them
    # (supportbot.core.auth.KeyEntry), so the widget's session is theirs to go on with.
    keys = KeyRing({
        entry["key"]: Principal(entry["name"], entry["role"],
                                entry.get("customer_id", "") or (f"widget:{entry['name']}" if entry["role"] == "publishable" else ""),
                                tuple(entry.get("collections", ())))
        for entry in TEST_KEYS.values()
    })
    server = grpc.aio.server(interceptors=[AuthInterceptor(keys, METHOD_ROLES, PEOPLE), ErrorMappingInterceptor()])
    chat_pb2_grpc.add_ChatServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


class WordEmbedder:
    """An embedder without a model: the same words give the same unit vector (embedding_of);
    it records what it was asked to embed."""

    model_name = "test-words"
    dimension = 64
    max_seq_length = 256

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        import numpy as np

        self.embedded.extend(texts)
        return np.asarray([embedding_of(t) for t in texts], dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        return embedding_of(text)


def word_knowledge_base(data_dir):  # type: ignore[no-untyped-def]
    """A KnowledgeBase on the real embedded Qdrant engine whose collection "kb" uses WordEmbedder."""
    from services.retriever.embedding import Embedders, SparseEmbedder
    from services.retriever.knowledge_base import KnowledgeBase
    from services.retriever.settings import RetrieverSettings
    from services.retriever.stores import EdgeStore

    embedder = WordEmbedder()
    settings = RetrieverSettings(data_dir=data_dir, collection_models={"kb": embedder.model_name})
    return KnowledgeBase(settings, EdgeStore(settings.resolved_index_path()), embedder, SparseEmbedder(), Embedders(loaded=[embedder]))
