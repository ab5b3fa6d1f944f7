"""Errors that services raise for bad input; the servicer turns them into a gRPC status with the
message as it is, so the caller reads what to fix."""

from __future__ import annotations

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


def require_text(value: str, *, field: str, limit: int, hint: str) -> str:
    """The stripped text, or INVALID_ARGUMENT when it is empty or longer than `limit`."""
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{field} is empty: {hint}")
    if len(value) > limit:
        raise InvalidArgument(f"{field} is {len(value)} characters, over the limit of {limit}")
    return value
