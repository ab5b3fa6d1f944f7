"""The started stack (retriever, generator on vLLM with the default model, gateway, Redis),
driven through its gRPC API and the CLI, as integrators and users drive it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from supportbot.v1 import chat_pb2, chat_pb2_grpc, common_pb2, generator_pb2, retriever_pb2
from tests.conftest import client_as, run_cli

pytestmark = pytest.mark.stack

SERVICES = {
    "retriever": "supportbot.v1.RetrieverService",
    "generator": "supportbot.v1.GeneratorService",
    "gateway": "supportbot.v1.ChatService",
}


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    assert samples, f"metric {name} is not exported on port {port}"
    return sum(samples)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_answer_health_checks_and_reflection(stack, name: str) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(stack.address(name)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICES[name]):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        listed = {s.name for r in responses for s in r.list_services_response.service}
        assert {SERVICES[name], "grpc.health.v1.Health"} <= listed
        # Reflection serves the file descriptors, so clients need none of our files.
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICES[name])]), timeout=5
        )
        assert next(iter(responses)).file_descriptor_response.file_descriptor_proto


def test_cli_search_and_ask(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    assert sample_ingested.added + sample_ingested.unchanged == 41 and sample_ingested.failed == 0
    found = run_cli(stack, "search", "I forgot my password", "--json", "--top-k", "3")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert results[0]["document_id"] == "account/reset-password" and results[0]["url"].startswith("https://help.lumio.example/")

    asked = run_cli(stack, "ask", "How do I reset my password?", "--json")
    assert asked.returncode == 0, asked.stderr
    turn = json.loads(asked.stdout)
    assert turn["session_id"].startswith("s_") and turn["grounded"] is True and turn["answer"].strip()
    assert turn["sources"][0]["document_id"] == "account/reset-password"
    assert set(turn["latencies"]) >= {"retrieval_ms", "first_token_ms", "total_ms"}

    empty = run_cli(stack, "ask", "   ")
    assert empty.returncode == 1 and "INVALID_ARGUMENT" in empty.stderr and "message is empty" in empty.stderr


async def test_generator_info_is_read_from_the_engine(stack) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        info = await client.generator_info()
    assert info.engine == "vllm" and info.device == "cpu" and info.dtype == "float32"
    assert info.model.endswith("SmolLM2-135M-Instruct") and info.max_model_len == 4096
    assert info.kernels.enforce_eager and info.kernels.compilation_mode == "NONE"
    assert "\nUser:" in info.stopping.stop_strings and info.stopping.stop_token_ids


async def test_generation_streams_cites_and_reports_finish(stack) -> None:  # type: ignore[no-untyped-def]
    source = common_pb2.Source(
        chunk_id="kb/refund-timing#0", document_id="refund-timing", title="Refunds",
        text="Card refunds take 5-10 business days after approval.",
    )
    async with client_as(stack) as client:
        deltas, result = [], None
        async for event in client.generator_stub.Generate(
            # Raw token streaming (the repetition stop streams whole sentences; see below).
            generator_pb2.GenerateRequest(
                question="How long do card refunds take?", sources=[source], max_tokens=40, allow_repetition=True
            )
        ):
            if event.HasField("delta"):
                deltas.append(event.delta.text)
            else:
                result = event.result
    assert result is not None and len(deltas) > 1
    assert "".join(deltas) == result.text and result.text.strip()
    assert result.finish_reason in (common_pb2.FINISH_REASON_END_OF_TURN, common_pb2.FINISH_REASON_STOP_STRING, common_pb2.FINISH_REASON_LENGTH)
    assert 0 < result.completion_tokens <= 40 and result.prompt_tokens > 20 and result.sources_used == 1
    assert "User:" not in result.text


async def test_json_schema_output_parses(stack) -> None:  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}}, "required": ["verdict"]}
    results = []
    async with client_as(stack) as client:
        async for event in client.generator_stub.Generate(
            generator_pb2.GenerateRequest(
                messages=[common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content="Is the sky blue? Answer in JSON.")],
                json_schema=json.dumps(schema), max_tokens=40,
            )
        ):
            if event.HasField("result"):
                results.append(event.result)
    # Exactly one result, and its whole text is an object under the schema.
    (result,) = results
    assert json.loads(result.text)["verdict"] in ("yes", "no"), result.text


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"question": ""}, "question is empty"),
        ({"question": "hi", "max_tokens": 5000}, "max_tokens must be between"),
        ({"question": "hi " * 5000}, "over the context budget"),
        ({"question": "hi", "json_schema": "{not json"}, "json_schema is not valid JSON"),
        ({"question": "hi", "adapter": "acme"}, "unknown adapter"),
    ],
)
async def test_generator_rejects_bad_input(stack, request_fields: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in client.generator_stub.Generate(generator_pb2.GenerateRequest(**request_fields)):
                pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()


async def test_cancelling_a_request_aborts_it_in_the_engine(stack) -> None:  # type: ignore[no-untyped-def]
    port = stack.ports.generator_metrics
    request = generator_pb2.GenerateRequest(
        messages=[common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content="Write a very long story about a lighthouse.")],
        max_tokens=1000, disable_stop_strings=True, temperature=1.0,
    )
    async with client_as(stack) as client:
        call = client.generator_stub.Generate(request)
        received = 0
        async for _ in call:
            received += 1
            if received == 3:
                break
        call.cancel()
    deadline = time.monotonic() + 10
    while metric(port, "vllm:num_requests_running") > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert metric(port, "vllm:num_requests_running") == 0
    generated = metric(port, "vllm:generation_tokens_total")
    await asyncio.sleep(2)
    # Nothing is generated for the abandoned request any more; it was far from its 1000 tokens.
    assert metric(port, "vllm:generation_tokens_total") == generated
    assert metric(port, "supportbot_generator_finished_total") >= 1


async def test_multi_turn_conversation_with_citations(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        session_id, first, sources = await client.ask("How long does standard shipping take?")
        assert first.grounded and sources and sources[0].document_id == "shipping/shipping-options"
        assert first.latencies.retrieval_ms > 0 and first.latencies.first_token_ms > 0
        for citation in first.citations:
            assert citation.document_id in {s.document_id for s in sources}
        same_session, follow_up, sources = await client.ask("and how much is express?", session_id=session_id)
        assert same_session == session_id
        assert follow_up.rewritten_question.startswith("How long does standard shipping take?")
        assert sources[0].document_id == "shipping/shipping-options"
        session = (await client.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id))).session
    assert [t.role for t in session.turns] == [common_pb2.ROLE_CUSTOMER, common_pb2.ROLE_ASSISTANT] * 2
    assert session.turns[1].content == first.answer and session.turns[1].grounded


async def test_unanswerable_question_offers_a_person(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        _, result, sources = await client.ask("what's the weather tomorrow")
    assert sources == [] and not result.grounded
    assert result.finish_reason == common_pb2.FINISH_REASON_NOT_GENERATED
    assert "person" in result.answer


@pytest.mark.parametrize(
    ("request_fields", "code", "message"),
    [
        ({"message": ""}, grpc.StatusCode.INVALID_ARGUMENT, "message is empty"),
        ({"message": "x" * 5000}, grpc.StatusCode.INVALID_ARGUMENT, "over the limit"),
        ({"message": "hi", "session_id": "nonsense"}, grpc.StatusCode.INVALID_ARGUMENT, "malformed session id"),
        ({"message": "hi", "session_id": "s_" + "a" * 32}, grpc.StatusCode.NOT_FOUND, "does not exist"),
    ],
)
async def test_gateway_rejects_bad_input(stack, request_fields: dict, code: grpc.StatusCode, message: str) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in client.chat_stub.Chat(chat_pb2.ChatRequest(**request_fields)):
                pass
    assert error.value.code() == code and message in error.value.details()


async def test_retriever_rejects_bad_input_over_grpc(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    async with client_as(stack) as client:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await client.search("refund", top_k=1000)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await client.search("refund", collection="no-such-kb")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND and "does not exist" in error.value.details()
        stats = await client.stats()
    assert stats.backend == "edge" and stats.embedding_dimension == 384
    # Other tests add collections of their own to the shared stack.
    assert ("helpcenter", 41, "sentence-transformers/all-MiniLM-L6-v2") in [
        (c.name, c.documents, c.embedding_model) for c in stats.collections
    ]


async def test_ingest_search_and_delete_in_a_separate_collection(stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from supportbot.client import documents_from_paths

    (tmp_path / "router.md").write_text("# Router setup\n\n## Pairing\nHold the pair button for 8 seconds until the ring turns teal.\n")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    async with client_as(stack) as client:
        documents = [d for _, d in documents_from_paths([tmp_path])]
        results = [r async for r in client.ingest(documents, collection="acme-router")]
        assert sorted((r.source_path.rsplit("/", 1)[-1], r.status) for r in results) == [
            ("broken.pdf", retriever_pb2.INGEST_STATUS_FAILED), ("router.md", retriever_pb2.INGEST_STATUS_ADDED),
        ]
        assert "not a readable PDF" in next(r.error for r in results if r.status == retriever_pb2.INGEST_STATUS_FAILED)
        found = await client.search("how long to hold the pair button", collection="acme-router")
        assert found.results[0].document_id == "router" and found.results[0].collection == "acme-router"
        deleted = await client.delete_documents(["router"], collection="acme-router")
        assert (deleted.deleted_documents, deleted.deleted_chunks) == (1, 1)
        assert (await client.stats("acme-router")).collections[0].chunks == 0
        # The help center was not touched.
        assert (await client.stats("helpcenter")).collections[0].documents == 41


async def test_more_requests_than_the_queue_allows_are_refused(stack) -> None:  # type: ignore[no-untyped-def]
    request = generator_pb2.GenerateRequest(question="What is Lumio Plus?", max_tokens=8)

    async def generate() -> str:
        async with client_as(stack) as client:
            try:
                async for _ in client.generator_stub.Generate(request):
                    pass
            except grpc.aio.AioRpcError as error:
                assert "at capacity" in error.details()
                return error.code().name
        return "OK"

    outcomes = await asyncio.gather(*(generate() for _ in range(24)))
    # The stack's generator runs 4 at a time and queues 4 more (see conftest.py).
    assert outcomes.count("RESOURCE_EXHAUSTED") >= 8 and outcomes.count("OK") >= 8, outcomes


@pytest.mark.stops_stack
def test_sigterm_drains_in_flight_turns_then_every_service_exits_cleanly(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    gateway = next(p for p in stack.processes if p.name == "gateway")
    events: list[str] = []
    with grpc.insecure_channel(stack.address("gateway")) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        request = chat_pb2.ChatRequest(message="How do I cancel Lumio Plus?")
        for response in stub.Chat(request, timeout=120, metadata=(("x-api-key", stack.key("customer")),)):
            kind = response.WhichOneof("event")
            events.append(kind)
            if kind == "delta" and events.count("delta") == 1:
                gateway.popen.send_signal(signal.SIGTERM)
    assert events[-1] == "result", events
    assert gateway.popen.wait(60) == 0
    codes = stack.stop()
    assert codes == {"ui": 0, "web": 0, "gateway": 0, "generator": 0, "retriever": 0, "redis": 0}


async def test_request_id_follows_a_turn_across_services(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    request_id = "trace-" + os.urandom(6).hex()
    async with client_as(stack, "customer") as client:
        call = client.chat_stub.Chat(
            chat_pb2.ChatRequest(message="Do you ship to Australia?"),
            metadata=(*client.metadata, ("x-request-id", request_id)),
        )
        async for _ in call:
            pass
    await asyncio.sleep(0.5)
    for name in ("gateway", "retriever", "generator"):
        records = [json.loads(line) for line in stack.process(name).log_path.read_text().splitlines() if request_id in line]
        assert any(r.get("request_id") == request_id and r.get("logger") == "supportbot.access" for r in records), name


async def test_a_looping_generation_is_stopped_early_and_freed_in_the_engine(stack) -> None:  # type: ignore[no-untyped-def]
    # Greedy decoding makes the bundled model loop on this one ("Hello, hello, hello, ...").
    loop = [common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content="Write the word 'hello' two hundred times.")]
    async with client_as(stack) as client:
        deltas, result = [], None
        async for event in client.generator_stub.Generate(generator_pb2.GenerateRequest(messages=loop, max_tokens=400)):
            if event.HasField("delta"):
                deltas.append(event.delta.text)
            else:
                result = event.result
    assert result is not None and result.finish_reason == common_pb2.FINISH_REASON_REPETITION
    assert result.completion_tokens < 100  # stopped at the first repeat, not at max_tokens
    assert "".join(deltas) == result.text and result.text.lower().count("hello") <= 6
    assert metric(stack.ports.generator_metrics, "supportbot_generator_repetition_stops_total") >= 1
    assert metric(stack.ports.generator_metrics, "supportbot_generator_in_flight_requests") == 0


@pytest.mark.parametrize("mode", [chat_pb2.ANSWER_MODE_EXTRACTIVE, chat_pb2.ANSWER_MODE_VERIFIED])
async def test_the_readme_question_gets_a_cited_answer_that_does_not_loop(stack, sample_ingested, mode) -> None:  # type: ignore[no-untyped-def]
    from supportbot.answers.repetition import is_degenerate

    async with client_as(stack, "customer") as client:
        _, result, sources = await client.ask("How do I reset my password?", answer_mode=mode)
    assert result.grounded and result.citations and "Forgot password" in result.answer
    assert not is_degenerate(result.answer)
    assert {c.document_id for c in result.citations} <= {s.document_id for s in sources}
    assert "account/reset-password" in {c.document_id for c in result.citations}
    assert result.answer_path in (chat_pb2.ANSWER_PATH_EXTRACTIVE, chat_pb2.ANSWER_PATH_VERIFIED, chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK)
    assert result.answer_mode == mode


async def test_verified_mode_shows_the_models_sentence_only_when_its_source_supports_it(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    """A real model sentence through verification, both ways. Asked how long the reset link is
    valid, the bundled model answers in its own words ("The password reset link is valid for 60
    minutes."), and the gateway shows that sentence as verified (not the extractive fallback) with
    the reset-password article's citation. Asked to repeat the article's sentence with a figure
    it does not state (90 minutes for 60), the model writes that, and it is not shown."""
    verified = {"answer_mode": chat_pb2.ANSWER_MODE_VERIFIED, "bypass_answer_cache": True}
    async with client_as(stack, "customer") as client:
        _, supported, _ = await client.ask("How long is the password reset link valid?", **verified)
        _, unsupported, _ = await client.ask(
            "Repeat this sentence exactly: We send a reset link that is valid for 90 minutes.", **verified
        )
    assert supported.answer_path == chat_pb2.ANSWER_PATH_VERIFIED, supported
    assert supported.sentences_kept >= 1 and "60 minutes" in supported.answer
    assert {c.document_id for c in supported.citations} == {"account/reset-password"}
    assert unsupported.sentences_dropped >= 1 and "90" not in unsupported.answer, unsupported
    assert unsupported.grounded and "account/reset-password" in {c.document_id for c in unsupported.citations}
