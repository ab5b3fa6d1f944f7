"""Client channels between services (and from the CLI and UI): request-id propagation,
health-aware round-robin load balancing over DNS, and retries for idempotent calls.

A target of `dns:///retriever:50052` resolves to every replica behind a headless Kubernetes
Service (or a scaled compose service); gRPC connects to all of them and spreads calls, and
re-resolves when a connection drops."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

import grpc

from supportbot.core.logging import REQUEST_ID_METADATA_KEY, current_request_id
from supportbot.core.telemetry import client_interceptors


class _CallMetadata:
    """Adds the current request id, and any fixed metadata (an API key), to every call."""

    def __init__(self, fixed: Sequence[tuple[str, str]] = ()) -> None:
        self.fixed = tuple(fixed)

    def details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or ())
        present = {key for key, _ in metadata}
        request_id = current_request_id()
        if request_id and REQUEST_ID_METADATA_KEY not in present:
            metadata.append((REQUEST_ID_METADATA_KEY, request_id))
        metadata.extend((key, value) for key, value in self.fixed if key not in present)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata,  # type: ignore[arg-type]  # grpc.aio takes pairs; grpc-stubs wants Metadata
            details.credentials, details.wait_for_ready,
        )


# grpc.aio files an interceptor under the first call type it implements only, so each call type
# gets its own class.
class _UnaryUnary(_CallMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.details(client_call_details), request)


class _UnaryStream(_CallMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.details(client_call_details), request)


class _StreamUnary(_CallMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self.details(client_call_details), request_iterator)


class _StreamStream(_CallMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self.details(client_call_details), request_iterator)


def metadata_interceptors(fixed: Sequence[tuple[str, str]] = ()) -> list[grpc.aio.ClientInterceptor]:
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    return [kind(fixed) for kind in kinds]  # type: ignore[misc]  # grpc-stubs: a list of interceptors must be cast


def service_config(retry_services: Sequence[str] = ()) -> str:
    """Round-robin over every address DNS returns, skipping replicas whose gRPC health service
    does not say SERVING (one that is starting, draining or unwell); retries with backoff for the
    named services, whose methods are safe to repeat."""
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        # Client-side health checking: each subchannel watches the server's overall health ("").
        "healthCheckConfig": {"serviceName": ""},
    }
    if retry_services:
        config["methodConfig"] = [
            {
                "name": [{"service": name} for name in retry_services],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def create_channel(
    address: str,
    *,
    retry_services: Sequence[str] = (),
    root_certificates: bytes | None = None,
    max_message_bytes: int = 64 * 1024 * 1024,
    metadata: Sequence[tuple[str, str]] = (),
) -> grpc.aio.Channel:
    """`metadata` goes with every call on the channel (an API key, say)."""
    options = channel_options(retry_services, max_message_bytes)
    interceptors = [*client_interceptors(), *metadata_interceptors(metadata)]
    if root_certificates is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates)
        return grpc.aio.secure_channel(address, credentials, options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options, interceptors=interceptors)


def channel_options(retry_services: Sequence[str] = (), max_message_bytes: int = 64 * 1024 * 1024) -> list[tuple[str, Any]]:
    return [
        ("grpc.service_config", service_config(retry_services)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        # Reconnect quickly after a backend restarts instead of backing off for minutes.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


class _BlockingCallMetadata(
    grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor,
):
    """The blocking API's counterpart of _CallMetadata (its interceptors may serve every type)."""

    def __init__(self, fixed: Sequence[tuple[str, str]]) -> None:
        self.fixed = tuple(fixed)

    def _details(self, details: Any) -> Any:
        metadata = list(details.metadata or ())
        present = {key for key, _ in metadata}
        if REQUEST_ID_METADATA_KEY not in present:
            metadata.append((REQUEST_ID_METADATA_KEY, current_request_id() or uuid.uuid4().hex))
        metadata.extend((key, value) for key, value in self.fixed if key not in present)
        return _BlockingDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class _BlockingDetails(grpc.ClientCallDetails):
    def __init__(self, method: Any, timeout: Any, metadata: Any, credentials: Any, wait_for_ready: Any, compression: Any) -> None:
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


def create_blocking_channel(
    address: str, *, root_certificates: bytes | None = None, metadata: Sequence[tuple[str, str]] = ()
) -> grpc.Channel:
    """For synchronous callers (the Streamlit UI): the same options, TLS and request ids."""
    options = channel_options()
    if root_certificates is not None:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates), options)
    else:
        channel = grpc.insecure_channel(address, options)
    return grpc.intercept_channel(channel, _BlockingCallMetadata(metadata))


_T = TypeVar("_T")


async def call_with_retries(
    call: Callable[[], Awaitable[_T]],
    codes: Collection[grpc.StatusCode],
    *,
    attempts: int,
    backoff_s: float,
    max_backoff_s: float = float("inf"),
) -> _T:
    """`call()` again after backoff_s, 2 x backoff_s, ... (at most max_backoff_s) while it fails
    with one of `codes`: for whole calls a caller may repeat (a busy server's
    RESOURCE_EXHAUSTED, say), where the channel's own retries stop at the first response."""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in codes or attempt == attempts - 1:
                raise
            await asyncio.sleep(min(backoff_s * 2**attempt, max_backoff_s))
    raise ValueError("attempts must be at least 1")
