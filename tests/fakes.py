"""Scripted stand-ins for the retriever and the generator: the gateway's logic runs on them
without a model (tests/test_gateway_turns.py, tests/test_web.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

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
