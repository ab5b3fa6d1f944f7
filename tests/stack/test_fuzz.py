"""Property-based fuzzing of every public RPC on the shared stack: Hypothesis builds valid but odd
protobuf messages from each method's request descriptor (any text, extreme numbers, NaN and
infinities, unknown enum values, long repeats, ids that almost match) and sends them with any
key. No answer may be UNKNOWN, INTERNAL or DATA_LOSS (a bug that reached the caller), and every
service must still be SERVING after each one.

Bounded: a fixed number of examples a method (SUPPORTBOT_FUZZ_EXAMPLES scales them), drawn the same
way on every run (`derandomize`), so CI is repeatable; raise the scale locally to search further."""

from __future__ import annotations

import os

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportbot.v1 import chat_pb2
from tests.conftest import TEST_KEYS
from tests.rpc_wire import SHAPES

pytestmark = pytest.mark.stack

BUGS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}
SCALE = float(os.environ.get("SUPPORTBOT_FUZZ_EXAMPLES", "1"))
# Methods that run the model on a valid request get fewer examples (each costs seconds on CPU).
EXAMPLES = {"Chat": 12, "Generate": 12, "SuggestReplies": 6, "SummarizeSession": 6}
DEFAULT_EXAMPLES = 30
FUZZ_COLLECTION = "fuzz-kb"

ODD_TEXT = [
    "", " ", "\x00", "\u2028", "\ufeff", "🙂" * 50, "<|im_start|>system", "a" * 5000, "../../etc/passwd",
    "helpcenter", "HelpCenter", "s_" + "A" * 32, "t_nope", "DROP TABLE sessions; --", "%s%n", "\\x00",
]
Fields = FieldDescriptor
INTEGER_RANGES = {
    Fields.TYPE_INT32: (-(2**31), 2**31 - 1), Fields.TYPE_SINT32: (-(2**31), 2**31 - 1),
    Fields.TYPE_SFIXED32: (-(2**31), 2**31 - 1), Fields.TYPE_INT64: (-(2**63), 2**63 - 1),
    Fields.TYPE_SINT64: (-(2**63), 2**63 - 1), Fields.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    Fields.TYPE_UINT32: (0, 2**32 - 1), Fields.TYPE_FIXED32: (0, 2**32 - 1),
    Fields.TYPE_UINT64: (0, 2**64 - 1), Fields.TYPE_FIXED64: (0, 2**64 - 1),
}


def texts(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=80), st.sampled_from(ODD_TEXT + known))


def scalar(field: FieldDescriptor, known: list[str], depth: int) -> st.SearchStrategy:  # type: ignore[type-arg]
    if field.type == Fields.TYPE_STRING:
        return texts(known)
    if field.type == Fields.TYPE_BYTES:
        return st.one_of(st.binary(max_size=300), st.sampled_from([b"", b"\x00" * 1000, b"# Heading\n\nText."]))
    if field.type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[field.type]
        return st.one_of(st.integers(low, high), st.sampled_from([v for v in (-1, 0, 1, 2, 100, 1001) if low <= v <= high]))
    if field.type in (Fields.TYPE_FLOAT, Fields.TYPE_DOUBLE):
        return st.floats(width=32 if field.type == Fields.TYPE_FLOAT else 64, allow_nan=True, allow_infinity=True)
    if field.type == Fields.TYPE_BOOL:
        return st.booleans()
    if field.type == Fields.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(values), st.integers(-(2**31), 2**31 - 1))
    if field.type == Fields.TYPE_MESSAGE:
        return messages(field.message_type._concrete_class, known, depth + 1)
    raise AssertionError(f"no strategy for {field.full_name}")


def field_values(field: FieldDescriptor, known: list[str], depth: int) -> st.SearchStrategy:  # type: ignore[type-arg]
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return st.dictionaries(scalar(key, known, depth), scalar(value, known, depth), max_size=3)
    if field.is_repeated:
        return st.lists(scalar(field, known, depth), max_size=3)
    return scalar(field, known, depth)


def messages(request_class, known: list[str], depth: int = 0) -> st.SearchStrategy:  # type: ignore[no-untyped-def, type-arg]
    """Any subset of the fields, each with an odd value."""
    if depth > 2:
        return st.just(request_class())
    optional = {field.name: field_values(field, known, depth) for field in request_class.DESCRIPTOR.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda fields: request_class(**fields))


def mutants(request_class, base: dict, known: list[str]) -> st.SearchStrategy:  # type: ignore[no-untyped-def, type-arg]
    """A valid request with one field made odd: these reach past the first check."""
    fields = request_class.DESCRIPTOR.fields
    one_field = st.one_of([st.tuples(st.just(f.name), field_values(f, known, 0)) for f in fields])
    return one_field.map(lambda change: request_class(**{**base, change[0]: change[1]}))


def valid_bases(session_id: str, turn_id: str) -> dict[str, dict]:
    """A request each method accepts (with the right key), for `mutants` to start from."""
    on_session = {"session_id": session_id}
    return {
        "Chat": {"message": "How do I reset my password?", "answer_mode": chat_pb2.ANSWER_MODE_EXTRACTIVE},
        "CreateSession": {},
        "ListSessions": {},
        "SubmitFeedback": {**on_session, "turn_id": turn_id, "rating": 1},
        "SendAgentReply": {**on_session, "message": "Hello, this is Sam."},
        "SuggestReplies": {**on_session, "count": 1},
        "GetSessionCase": on_session,
        "ApproveAction": {**on_session, "proposal_id": "p_" + "0" * 24},
        "Search": {"query": "reset password"},
        "Embed": {"texts": ["reset password"]},
        "Generate": {"question": "How do I reset my password?", "max_tokens": 4},
        "Ingest": {},
        "DeleteDocuments": {"document_ids": ["none-such"]},
        "Stats": {},
        "Info": {},
    }


def tame(method: str, request):  # type: ignore[no-untyped-def]
    """Keeps a fuzzed request from doing what the suite cannot afford or must not see: long
    generations, and documents written into (or deleted from) the shared help center."""
    name = method.rsplit("/", 1)[-1]
    if name == "Generate" and 8 < request.max_tokens <= 1024:
        request.max_tokens = 8
    if name in ("Ingest", "DeleteDocuments"):
        request.collection = FUZZ_COLLECTION
    return request


def send(channel: grpc.Channel, method: str, request, who: str) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    shape = SHAPES[method]
    metadata = (("x-api-key", TEST_KEYS[who]["key"]),) if who else ()
    wire = request.SerializeToString()
    try:
        if shape.client_streaming:
            for _ in channel.stream_stream(method)(iter([wire]), metadata=metadata, timeout=120):
                pass
        elif shape.server_streaming:
            for _ in channel.unary_stream(method)(wire, metadata=metadata, timeout=120):
                pass
        else:
            channel.unary_unary(method)(wire, metadata=metadata, timeout=120)
    except grpc.RpcError as error:
        assert error.code() not in BUGS, f"{method} as {who or 'nobody'}: {error.code().name}: {error.details()}\n{request}"
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def channels(stack):  # type: ignore[no-untyped-def]
    opened = {name: grpc.insecure_channel(stack.address(name)) for name in ("gateway", "retriever", "generator")}
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.fixture(scope="module")
def victim(channels, sample_ingested) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A customer's session and answered turn, for requests that name them."""
    session_id = turn_id = ""
    request = chat_pb2.ChatRequest(message="How do I reset my password?", answer_mode=chat_pb2.ANSWER_MODE_EXTRACTIVE)
    for raw in channels["gateway"].unary_stream("/supportbot.v1.ChatService/Chat")(
        request.SerializeToString(), metadata=(("x-api-key", TEST_KEYS["customer"]["key"]),), timeout=120
    ):
        response = chat_pb2.ChatResponse.FromString(raw)
        if response.HasField("result"):
            turn_id = response.result.turn_id
        if response.HasField("session"):
            session_id = response.session.session_id
    return session_id, turn_id


@pytest.mark.parametrize("method", sorted(SHAPES), ids=lambda method: method.rsplit("/", 1)[-1])
def test_odd_messages_never_break_a_service(method: str, channels, victim: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    shape, name = SHAPES[method], method.rsplit("/", 1)[-1]
    known = [*victim, "reset-password", FUZZ_COLLECTION]
    base = valid_bases(*victim).get(name, {"session_id": victim[0]})
    seen: dict[str, int] = {}
    budget = max(1, int(EXAMPLES.get(name, DEFAULT_EXAMPLES) * SCALE))
    requests = st.one_of(messages(shape.request, known), mutants(shape.request, base, known))
    # Mostly keys that may call the method, so the fuzz reaches the handlers.
    keys = st.sampled_from(["admin", "admin", "agent", "customer", "service", ""])

    @settings(max_examples=budget, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(request=requests, who=keys)
    def one(request, who: str) -> None:  # type: ignore[no-untyped-def]
        code = send(channels[shape.service], method, tame(method, request), who)
        seen[code.name] = seen.get(code.name, 0) + 1
        for channel in channels.values():
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING

    one()
    print(name, seen)
    # The fuzzer reached the handlers, not only the key check.
    assert set(seen) - {"UNAUTHENTICATED", "PERMISSION_DENIED"}, seen
