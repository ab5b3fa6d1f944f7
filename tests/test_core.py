"""The shared server bootstrap: health, traces that cross a gRPC hop, request ids, auth."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from supportbot.core.auth import AuthInterceptor, KeyRing, Principal
from supportbot.core.channels import create_channel
from supportbot.core.logging import set_request_id
from supportbot.core.server import GrpcService
from supportbot.core.settings import ServiceSettings
from supportbot.core.telemetry import configure_tracing
from supportbot.v1 import retriever_pb2, retriever_pb2_grpc


class EchoRetriever(retriever_pb2_grpc.RetrieverServiceServicer):
    """Answers Stats with the request id and the caller's metadata it saw."""

    async def Stats(self, request, context):  # noqa: N802
        from supportbot.core.auth import current_principal
        from supportbot.core.logging import current_request_id

        principal = current_principal()
        return retriever_pb2.StatsResponse(
            embedding_model=current_request_id(), backend=principal.role if principal else "anonymous"
        )


async def start(interceptors=()) -> GrpcService:  # type: ignore[no-untyped-def]
    def register(server: grpc.aio.Server) -> list[str]:
        retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(EchoRetriever(), server)
        return ["supportbot.v1.RetrieverService"]

    service = GrpcService("test", ServiceSettings(port=0), register, interceptors=interceptors)
    await service.start()
    return service


async def test_health_request_id_and_trace_context_cross_the_hop() -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = await start()
    channel = create_channel(f"127.0.0.1:{service.bound_port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        response = await health.Check(health_pb2.HealthCheckRequest(service="supportbot.v1.RetrieverService"))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        set_request_id("req-42")
        stats = await retriever_pb2_grpc.RetrieverServiceStub(channel).Stats(retriever_pb2.StatsRequest())
        assert stats.embedding_model == "req-42"
    finally:
        await channel.close()
        await service.stop()
    spans = [s for s in exporter.get_finished_spans() if s.name.endswith("RetrieverService/Stats")]
    kinds = {s.kind.name: s for s in spans}
    assert set(kinds) == {"CLIENT", "SERVER"}
    assert kinds["SERVER"].context.trace_id == kinds["CLIENT"].context.trace_id
    assert kinds["SERVER"].parent.span_id == kinds["CLIENT"].context.span_id


async def test_stopping_reports_not_serving_first() -> None:
    service = await start()
    address = f"127.0.0.1:{service.bound_port}"
    # An outside prober (a load balancer, Kubernetes) sees the drain...
    prober = grpc.aio.insecure_channel(address)
    # ...and our own channels, which watch the server's health, stop sending it calls.
    channel = create_channel(address)
    stats = retriever_pb2_grpc.RetrieverServiceStub(channel).Stats
    try:
        await stats(retriever_pb2.StatsRequest(), timeout=5)
        await service.health.enter_graceful_shutdown()
        response = await health_pb2_grpc.HealthStub(prober).Check(health_pb2.HealthCheckRequest())
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            for _ in range(50):  # the Watch stream reports the change within moments
                await stats(retriever_pb2.StatsRequest(), timeout=5)
                await asyncio.sleep(0.02)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await prober.close()
        await channel.close()
        await service.stop()


@pytest.mark.parametrize(
    ("metadata", "code", "role"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, None),
        ((("x-api-key", "nope"),), grpc.StatusCode.UNAUTHENTICATED, None),
        ((("x-api-key", "k-customer"),), grpc.StatusCode.PERMISSION_DENIED, None),
        ((("x-api-key", "k-admin"),), grpc.StatusCode.OK, "admin"),
    ],
)
async def test_auth_interceptor(metadata: tuple, code: grpc.StatusCode, role: str | None) -> None:
    keys = KeyRing({"k-customer": Principal("c", "customer", "c1"), "k-admin": Principal("a", "admin")})
    service = await start([AuthInterceptor(keys, {"Stats": ("admin",)})])
    channel = create_channel(f"127.0.0.1:{service.bound_port}", metadata=metadata)
    try:
        # Probes need no key.
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        call = retriever_pb2_grpc.RetrieverServiceStub(channel).Stats(retriever_pb2.StatsRequest())
        if code == grpc.StatusCode.OK:
            assert (await call).backend == role
        else:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() == code
    finally:
        await channel.close()
        await service.stop()
