"""Prometheus metrics for gRPC servers, exported on each service's HTTP metrics port."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

access_log = logging.getLogger("supportbot.access")

RPC_HANDLED = Counter(
    "supportbot_grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["service", "method", "code"],
)
RPC_LATENCY = Histogram(
    "supportbot_grpc_server_handling_seconds",
    "Time from an RPC's start to its last response message.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    if port:
        start_http_server(port, addr=host)


def _split_method(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service.rsplit(".", 1)[-1], method


def _code_of(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    if isinstance(error, grpc.aio.AbortError) or error is None:
        # None until a handler sets one (grpc-stubs declares a StatusCode).
        code: grpc.StatusCode | None = context.code()
        if code is None:
            return "OK" if error is None else "UNKNOWN"
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    if isinstance(error, (GeneratorExit, Exception)) and "Cancelled" in type(error).__name__:
        return "CANCELLED"
    return "UNKNOWN"


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC, unary and streaming alike."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith("/grpc."):
            return handler
        service, method = _split_method(handler_call_details.method)

        def observe(context: Any, started: float, error: BaseException | None) -> None:
            seconds = time.perf_counter() - started
            code = _code_of(context, error)
            RPC_LATENCY.labels(service, method).observe(seconds)
            RPC_HANDLED.labels(service, method, code).inc()
            access_log.info("rpc", extra={"method": f"{service}/{method}", "code": code, "ms": round(seconds * 1000, 2)})

        if handler.response_streaming:
            behaviour: Any = handler.unary_stream or handler.stream_stream

            async def streaming(request_or_iterator: Any, context: Any) -> AsyncIterator[Any]:
                started, error = time.perf_counter(), None
                try:
                    async for response in behaviour(request_or_iterator, context):
                        yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    observe(context, started, error)

            wrapped: Callable[[Any, Any], Any] = streaming
        else:
            behaviour = handler.unary_unary or handler.stream_unary

            async def unary(request_or_iterator: Any, context: Any) -> Any:
                started, error = time.perf_counter(), None
                try:
                    return await behaviour(request_or_iterator, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    observe(context, started, error)

            wrapped = unary

        return handler._replace(  # type: ignore[attr-defined,no-any-return]  # a named tuple; grpc-stubs says a plain class
            unary_unary=wrapped if handler.unary_unary else None,
            unary_stream=wrapped if handler.unary_stream else None,
            stream_unary=wrapped if handler.stream_unary else None,
            stream_stream=wrapped if handler.stream_stream else None,
        )
