"""The one way every supportbot service runs its grpc.aio server: health checking, reflection,
request ids, Prometheus metrics and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from supportbot.core.errors import ErrorMappingInterceptor, ServiceError
from supportbot.core.logging import REQUEST_ID_METADATA_KEY, configure_logging, set_request_id
from supportbot.core.metrics import MetricsInterceptor, start_metrics_server
from supportbot.core.settings import ServiceSettings
from supportbot.core.telemetry import configure_tracing, server_interceptors

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

log = logging.getLogger(__name__)


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Binds the caller's x-request-id (or a new one) to the context of the handler, so logs and
    downstream calls carry it."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        incoming = dict(handler_call_details.invocation_metadata or ())
        request_id = incoming.get(REQUEST_ID_METADATA_KEY)
        set_request_id(request_id if isinstance(request_id, str) else None)
        return await continuation(handler_call_details)


def server_options(settings: ServiceSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # Clients re-resolve DNS only when a connection ends, so connections are given a maximum
        # age: replicas added by an autoscaler then receive traffic within that time.
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_s * 1000)),
    ]


def _add_port(server: grpc.aio.Server, settings: ServiceSettings) -> int:
    if settings.tls_cert_file and settings.tls_key_file:
        credentials = grpc.ssl_server_credentials(
            [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())]
        )
        return server.add_secure_port(settings.address, credentials)
    return server.add_insecure_port(settings.address)


class GrpcService:
    """A started grpc.aio server with health and reflection; `run` serves until SIGTERM/SIGINT.

    `register` adds the servicers and returns their full service names (for health and
    reflection). `on_stop` runs after the server has drained, to release engines and stores.
    `translate_error` maps a dependency's exceptions to statuses (ErrorMappingInterceptor).
    """

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        register: Callable[[grpc.aio.Server], Iterable[str]],
        on_stop: Callable[[], Awaitable[None]] | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        translate_error: Callable[[Exception], ServiceError | None] = lambda error: None,
    ) -> None:
        self.name = name
        self.translate_error = translate_error
        self.interceptors = list(interceptors)
        self.settings = settings
        self.register = register
        self.on_stop = on_stop
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # grpc-stubs has no grpc_health.v1.health.aio
        self.server: grpc.aio.Server | None = None
        self.bound_port = 0
        self.service_names: list[str] = []
        self._stopping = asyncio.Event()

    async def start(self) -> int:
        server = grpc.aio.server(
            interceptors=[
                *server_interceptors(), RequestIdInterceptor(), MetricsInterceptor(), *self.interceptors,
                ErrorMappingInterceptor(translate=self.translate_error),
            ],
            options=server_options(self.settings),
        )
        self.service_names = list(self.register(server))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        self.bound_port = _add_port(server, self.settings)
        if not self.bound_port:
            raise RuntimeError(f"{self.name}: cannot listen on {self.settings.address}")
        start_metrics_server(self.settings.metrics_port, self.settings.host)
        await server.start()
        for service_name in ["", *self.service_names]:
            await self.health.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        self.server = server
        log.info(
            "serving",
            extra={
                "address": f"{self.settings.host}:{self.bound_port}",
                "metrics_port": self.settings.metrics_port,
            },
        )
        return self.bound_port

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Stops taking new RPCs, lets in-flight ones finish within the grace period."""
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        log.info("draining", extra={"grace_period_s": self.settings.grace_period_s})
        await self.server.stop(self.settings.grace_period_s)
        self.server = None
        if self.on_stop is not None:
            await self.on_stop()
        log.info("stopped")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self._stopping.wait()
        await self.stop()


def run_service(
    name: str,
    settings: SettingsT,
    build: Callable[[SettingsT], Awaitable[GrpcService]],
) -> None:
    """Entry point body of each service's `main`: logging, then serve until stopped."""
    configure_logging(name, settings.log_level, settings.log_json)
    configure_tracing(name)

    async def main() -> None:
        service = await build(settings)
        await service.run()

    asyncio.run(main())
