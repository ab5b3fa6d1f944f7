"""Every public RPC of the three services by its full path, with what it takes and returns, so
tests can send any bytes to any of them (tests/stack/test_hostile_inputs.py, tests/stack/test_fuzz.py)."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import message_factory
from google.protobuf.message import Message

from supportbot.v1 import chat_pb2, generator_pb2, retriever_pb2


@dataclass(frozen=True)
class Shape:
    request: type[Message]
    client_streaming: bool
    server_streaming: bool
    service: str  # the stack's name for the process that serves it


def _shapes() -> dict[str, Shape]:
    shapes = {}
    for module, service in ((chat_pb2, "gateway"), (retriever_pb2, "retriever"), (generator_pb2, "generator")):
        for descriptor in module.DESCRIPTOR.services_by_name.values():
            for method in descriptor.methods:
                shapes[f"/{descriptor.full_name}/{method.name}"] = Shape(
                    message_factory.GetMessageClass(method.input_type), method.client_streaming,
                    method.server_streaming, service,
                )
    return shapes


SHAPES = _shapes()
