"""Errors that services raise for bad input; the servicer turns them into a gRPC status with the
message as it is, so the caller reads what to fix."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ServiceError):
    """A test-and-set that failed: what the caller saw changed meanwhile (AIP-154's etag rule)."""

    code = grpc.StatusCode.ABORTED


_COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def check_collection_name(name: str) -> str:
    """A knowledge base's name, as the retriever stores it (and the gateway accepts it)."""
    if not _COLLECTION_NAME.fullmatch(name):
        raise InvalidArgument(
            f"collection name {name[:80]!r} is invalid: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def check_channel(channel: str) -> str:
    if not _CHANNEL.fullmatch(channel):
        raise InvalidArgument(
            f"channel {channel[:80]!r} is invalid: use 1-32 letters, digits, '.', '-' or '_' (e.g. web, api)"
        )
    return channel


def check_identifier(value: str, *, field: str, limit: int = 128) -> str:
    """A caller-chosen id (a customer id): printable, at most `limit` characters."""
    if len(value) > limit or not value.isprintable():
        raise InvalidArgument(f"{field} must be at most {limit} printable characters")
    return value


def require_text(value: str, *, field: str, limit: int, hint: str) -> str:
    """The stripped text, or INVALID_ARGUMENT when it is empty or longer than `limit`."""
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{field} is empty: {hint}")
    if len(value) > limit:
        raise InvalidArgument(f"{field} is {len(value)} characters, over the limit of {limit}")
    return value


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """The one place a ServiceError becomes a gRPC status: handlers raise, they do not abort.
    Only this project's services are wrapped (health's Watch writes through the context and
    must stay as it is)."""

    def __init__(
        self, package: str = "/supportbot.", translate: Callable[[Exception], ServiceError | None] = lambda error: None
    ) -> None:
        """`translate` turns a dependency's own exception (a Redis connection error, say) into
        the status the caller should see; what it returns None for stays a bug (UNKNOWN)."""
        self.package = package
        self.translate = translate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(self.package):
            return handler
        for kind, wrap, make in _HANDLER_KINDS:
            behavior = getattr(handler, kind)
            if behavior is not None:
                streaming_requests = kind.startswith("stream_")
                handler_for: Callable[..., grpc.RpcMethodHandler] = make
                return handler_for(
                    wrap(behavior, streaming_requests, self.translate),
                    _tolerant(handler.request_deserializer),
                    handler.response_serializer,
                )
        return handler


class _Malformed:
    """What a request that did not parse becomes, so the handler can refuse it with
    INVALID_ARGUMENT (grpc answers a deserializer's exception with UNKNOWN and its text)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def refusal(self) -> InvalidArgument:
        return InvalidArgument(
            "the request is not a valid protobuf message of this method's request type "
            "(truncated data, a wrong wire type, or a string that is not UTF-8)"
        )


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # noqa: BLE001 - any parse failure is the caller's bad data
            return _Malformed(error)

    return parse


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Malformed):
            raise request.refusal()
        yield request


def _checked(request: Any, streaming_requests: bool) -> Any:
    if streaming_requests:
        return _checked_stream(request)
    if isinstance(request, _Malformed):
        raise request.refusal()
    return request


Translate = Callable[[Exception], "ServiceError | None"]


def _as_service_error(error: Exception, translate: Translate) -> ServiceError | None:
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, grpc.aio.AbortError):  # the handler aborted with its own status
        return None
    return translate(error)


def _mapped_unary(behavior: Any, streaming_requests: bool, translate: Translate) -> Callable[[Any, Any], Awaitable[Any]]:
    async def call(request: Any, context: Any) -> Any:
        try:
            return await behavior(_checked(request, streaming_requests), context)
        except Exception as error:
            mapped = _as_service_error(error, translate)
            if mapped is None:
                raise
            await context.abort(mapped.code, mapped.message)

    return call


def _mapped_stream(behavior: Any, streaming_requests: bool, translate: Translate) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def call(request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            async for response in behavior(_checked(request, streaming_requests), context):
                yield response
        except Exception as error:
            mapped = _as_service_error(error, translate)
            if mapped is None:
                raise
            await context.abort(mapped.code, mapped.message)

    return call


_HANDLER_KINDS = (
    ("unary_unary", _mapped_unary, grpc.unary_unary_rpc_method_handler),
    ("unary_stream", _mapped_stream, grpc.unary_stream_rpc_method_handler),
    ("stream_unary", _mapped_unary, grpc.stream_unary_rpc_method_handler),
    ("stream_stream", _mapped_stream, grpc.stream_stream_rpc_method_handler),
)
