"""The OpenAPI 3.1 document of the HTTP API, generated from the protos: one path per google.api.http
rule, one schema per message in protobuf's canonical JSON mapping (lowerCamelCase names, enums by
name, 64-bit integers as strings, Timestamps as RFC 3339 strings).

Example:
    >>> from supportbot.v1 import chat_pb2
    >>> document = openapi_document(chat_pb2.DESCRIPTOR.services_by_name["ChatService"], "0.1.0")
    >>> sorted(document["paths"]["/v1/sessions/{session_id}:close"])
    ['post']
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from services.web.transcoding import http_routes

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # The canonical JSON mapping writes 64-bit integers as strings (JavaScript numbers are doubles).
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "integer", "description": "The HTTP status."},
        "status": {"type": "string", "description": "The gRPC status name, e.g. INVALID_ARGUMENT."},
        "message": {"type": "string", "description": "What to fix, for people."},
    }}},
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder: recursive messages end here
            self.components[descriptor.full_name] = {
                "type": "object",
                "properties": {field.json_name: self.field(field) for field in descriptor.fields},
            }
        return {"$ref": f"#/components/schemas/{descriptor.full_name}"}

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None  # set on every enum field
            return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None  # set on every message field
            return self.ref(field.message_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.single(field.message_type.fields_by_name["value"])}
        if field.is_repeated:
            return {"type": "array", "items": self.single(field)}
        return self.single(field)


def _error_responses() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        str(status): {"description": description, **error}
        for status, description in (
            (400, "INVALID_ARGUMENT or FAILED_PRECONDITION"), (401, "UNAUTHENTICATED: no or an unknown key"),
            (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"), (429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE: retry"),
        )
    }


def openapi_document(service: ServiceDescriptor, version: str) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for route in http_routes(service):
        request = route.method.input_type
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in route.path_parameters
        ]
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": f"{service.name}.{route.name}",
            "parameters": parameters,
            "responses": _error_responses(),
        }
        if route.body == "*":
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas.ref(request)}}}
        else:
            operation["parameters"] += [
                {"name": field.json_name, "in": "query", "required": False, "schema": schemas.field(field)}
                for field in request.fields if field.name not in route.path_parameters
            ]
        response = schemas.ref(route.method.output_type)
        if route.streaming:
            operation["responses"]["200"] = {
                "description": f"Server-Sent Events: one event per {route.method.output_type.name} (JSON in `data`, the "
                               "event's kind in `event`); a failure after the stream began is an `error` event.",
                "content": {"text/event-stream": {"schema": response}},
            }
        else:
            operation["responses"]["200"] = {"description": "OK", "content": {"application/json": {"schema": response}}}
        paths.setdefault(route.template, {})[route.verb.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "supportbot HTTP API",
            "version": version,
            "description": f"{service.full_name} over HTTP/JSON, transcoded from its gRPC definition. Keys go in "
                           "`Authorization: Bearer <key>` or `x-api-key`; `x-request-id` is passed through.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
