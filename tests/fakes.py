"""Scripted stand-ins for the retriever and the generator: the gateway's logic runs on them
without a model (tests/test_gateway_turns.py, tests/test_web.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from supportbot.v1 import common_pb2, generator_pb2, retriever_pb2

RESET = common_pb2.Source(
    chunk_id="helpcenter/reset-password#0", document_id="reset-password", title="Reset your password",
    url="https://help.example/reset", score=1.0, dense_score=0.7,
    text="On the sign-in screen, tap **Forgot password?** and enter the e-mail address on your account. "
         "We send a reset link that is valid for 60 minutes.",
)
REFUNDS = common_pb2.Source(
    chunk_id="helpcenter/refund-timing#1", document_id="refund-timing", title="When will I get my refund?",
    score=0.5, dense_score=0.3, text="Card refunds take 5-10 business days after approval.",
)


def rpc_error(code: grpc.StatusCode, details: str = "scripted") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeRetriever:
    def __init__(self) -> None:
        self.results: list[common_pb2.Source] = [RESET, REFUNDS]
        self.error: grpc.StatusCode | None = None
        self.queries: list[str] = []

    async def Search(self, request: retriever_pb2.SearchRequest, timeout: float) -> retriever_pb2.SearchResponse:  # noqa: N802
        self.queries.append(request.query)
        if self.error is not None:
            raise rpc_error(self.error)
        if len(request.query) > 2000:  # the retriever's own limit
            raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "query is over the limit of 2000 characters")
        return retriever_pb2.SearchResponse(results=self.results, collection=request.collection)


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
