"""HTTP/JSON transcoding of a gRPC service, driven by the google.api.http rules in its .proto:
each annotated method becomes a route; path parameters, the query string (GET) and the JSON body
(`body: "*"`) fill the request message through protobuf's own JSON mapping; responses go back in
the canonical JSON mapping. gRPC statuses map to HTTP statuses in one table (google.rpc.Code's
documented mapping), with Google's JSON error body.

Example:
    >>> from supportbot.v1 import chat_pb2
    >>> route = next(r for r in http_routes(chat_pb2.DESCRIPTOR.services_by_name["ChatService"])
    ...              if r.name == "CloseSession")
    >>> route.verb, route.template
    ('POST', '/v1/sessions/{session_id}:close')
    >>> route.request({"session_id": "s_abc"}, {}, b"{}").session_id
    's_abc'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

# google/rpc/code.proto's HTTP mapping.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


class HttpError(Exception):
    """A refusal with its gRPC status name, HTTP status and a message for people."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> HttpError:
        return cls(error.code(), error.details() or error.code().name)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "status": self.code.name, "message": self.message}}


def to_json(message: Message) -> dict[str, Any]:
    """The canonical proto3 JSON mapping (lowerCamelCase names, enums by name), with fields at
    their default values written out, so a browser never has to know the defaults."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


_PARAMETER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Route:
    method: MethodDescriptor
    verb: str
    template: str
    body: str

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def path_parameters(self) -> list[str]:
        return _PARAMETER.findall(self.template)

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.method.output_type)

    def request(self, path: Mapping[str, str], query: Mapping[str, list[str]], body: bytes) -> Message:
        """The request message; INVALID_ARGUMENT (HttpError) for anything protobuf's JSON
        mapping refuses, unknown fields included."""
        fields: dict[str, Any] = {}
        if self.body == "*":
            try:
                parsed = json.loads(body) if body.strip() else {}
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"the body is not valid JSON: {error}") from error
            if not isinstance(parsed, dict):
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "the body must be a JSON object")
            fields.update(parsed)
        else:
            fields.update(_query_fields(self.request_class.DESCRIPTOR, query))
        fields.update(path)
        try:
            return json_format.ParseDict(fields, self.request_class())
        except json_format.ParseError as error:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error


def _query_fields(descriptor: Any, query: Mapping[str, list[str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, values in query.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown query parameter {key!r}")
        parsed: list[Any] = [value.lower() == "true" for value in values] if field.type == FieldDescriptor.TYPE_BOOL else values
        fields[key] = parsed if field.is_repeated else parsed[-1]
    return fields


def http_routes(service: ServiceDescriptor) -> list[Route]:
    """The service's annotated methods, most specific template first (":close" before the bare
    "{session_id}"), so that the first match is the right one."""
    routes = []
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        if verb in (None, "custom"):
            continue
        routes.append(Route(method, verb.upper(), getattr(rule, verb), rule.body))
    return sorted(routes, key=lambda route: len(_PARAMETER.sub("", route.template)), reverse=True)
