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


@pytest.mark.parametrize(
    ("principal", "collection", "allowed"),
    [
        (Principal("c", "customer", "c1"), "helpcenter", True),
        (Principal("c", "customer", "c1"), "other-tenant-kb", False),
        (Principal("c", "customer", "c1", ("acme-kb",)), "acme-kb", True),
        (Principal("c", "customer", "c1", ("acme-kb",)), "helpcenter", False),
        (Principal("a", "agent"), "other-tenant-kb", True),
        (Principal("a", "agent", collections=("acme-kb",)), "other-tenant-kb", False),
        (Principal("s", "service"), "any-kb", True),
        (Principal("x", "admin", collections=("acme-kb",)), "any-kb", True),
    ],
)
def test_collection_scoping(principal: Principal, collection: str, allowed: bool) -> None:
    assert principal.may_use_collection(collection, "helpcenter") is allowed


def test_service_keys_see_no_sessions() -> None:
    assert not Principal("s", "service").can_see("helpcenter", "")
    assert not Principal("c", "customer").can_see("helpcenter", "")  # no customer id: nothing


def test_local_keys_gain_the_roles_an_older_file_lacks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import stat

    from supportbot.core.auth import ROLES, create_local_keys, local_key

    path = tmp_path / "api-keys.json"
    old = [{"key": "sb_old_admin", "role": "admin"}, {"key": "sb_old_customer", "role": "customer", "customer_id": "x"}]
    path.write_text(json.dumps({"keys": old}))
    keys = create_local_keys(path)
    assert set(keys) == set(ROLES) and keys["admin"] == "sb_old_admin"
    ring = KeyRing.load(path)  # nothing already there is lost: the old keys still work
    assert ring.lookup("sb_old_admin").role == "admin" and ring.lookup("sb_old_customer").customer_id == "x"
    assert "sb_old_" not in path.read_text()  # written again, so stored hashed
    assert local_key(path, "service").startswith("sb_service_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert create_local_keys(path) == keys


def _certificates(directory):  # type: ignore[no-untyped-def]
    """A CA and a server certificate for 127.0.0.1 and localhost, as files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem(obj) -> bytes:  # type: ignore[no-untyped-def]
        if isinstance(obj, x509.Certificate):
            return obj.public_bytes(serialization.Encoding.PEM)
        return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "supportbot test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server-key.pem"}
    paths["ca"].write_bytes(pem(ca))
    paths["cert"].write_bytes(pem(server))
    paths["key"].write_bytes(pem(server_key))
    return paths


async def test_tls_between_services(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A server with a certificate, a channel that trusts its CA (as the gateway's
    backend_root_certificates does), and the health check's TLS mode."""
    from supportbot.core.healthcheck import main as healthcheck

    files = _certificates(tmp_path)

    def register(server: grpc.aio.Server) -> list[str]:
        retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(EchoRetriever(), server)
        return ["supportbot.v1.RetrieverService"]

    settings = ServiceSettings(port=0, tls_cert_file=files["cert"], tls_key_file=files["key"])
    service = GrpcService("tls-test", settings, register)
    await service.start()
    address = f"127.0.0.1:{service.bound_port}"
    secure = create_channel(address, root_certificates=files["ca"].read_bytes(), retry_services=[])
    plaintext = grpc.aio.insecure_channel(address)
    try:
        set_request_id("over-tls")
        stats = await retriever_pb2_grpc.RetrieverServiceStub(secure).Stats(retriever_pb2.StatsRequest(), timeout=5)
        assert stats.embedding_model == "over-tls"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await retriever_pb2_grpc.RetrieverServiceStub(plaintext).Stats(retriever_pb2.StatsRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(healthcheck, [address, "--ca", str(files["ca"])]) == 0
        assert await asyncio.to_thread(healthcheck, [address, "--timeout", "1"]) == 1
    finally:
        await secure.close()
        await plaintext.close()
        await service.stop()


async def test_call_with_retries_waits_out_a_busy_server() -> None:
    """A server that refuses twice (RESOURCE_EXHAUSTED) and then answers: the call succeeds on the
    third attempt; an error not listed, or the last attempt's, reaches the caller."""
    from supportbot.core.channels import call_with_retries

    refusals = {"left": 2}

    async def ping(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if refusals["left"]:
            refusals["left"] -= 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full")
        return b"ok"

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "supportbot.test.Busy", {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
    )])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/supportbot.test.Busy/Ping")
    busy = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    try:
        assert await call_with_retries(lambda: call(b""), busy, attempts=3, backoff_s=0.01) == b"ok"
        refusals["left"] = 2
        with pytest.raises(grpc.aio.AioRpcError) as gave_up:
            await call_with_retries(lambda: call(b""), busy, attempts=2, backoff_s=0.01)
        assert gave_up.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        refusals["left"] = 1
        with pytest.raises(grpc.aio.AioRpcError):
            await call_with_retries(lambda: call(b""), [grpc.StatusCode.UNAVAILABLE], attempts=3, backoff_s=0.01)
        assert refusals["left"] == 0  # tried once: RESOURCE_EXHAUSTED was not in the list
    finally:
        await channel.close()
        await server.stop(0)


def test_request_ids_from_callers_are_bounded_and_plain() -> None:
    from supportbot.core.logging import set_request_id

    assert set_request_id("trace-42.a:b") == "trace-42.a:b"
    for hostile in ("x" * 10_000, "line\nbreak", "\x1b[31mred", "{\"json\": 1}"):
        replaced = set_request_id(hostile)
        assert replaced != hostile and len(replaced) == 32


@pytest.mark.parametrize(
    ("wire", "what"),
    [
        (b"\x0a\x02\xff\xfe", "a string field that is not UTF-8"),
        (b"\x0a\x05ab", "a length past the end of the message"),
        (b"\x0e\x01", "wire type 6, which does not exist"),
        (b"\x0c", "an end-group with no group open"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "a varint over ten bytes"),
    ],
)
async def test_malformed_requests_are_invalid_argument(wire: bytes, what: str) -> None:
    service = await start()
    channel = create_channel(f"127.0.0.1:{service.bound_port}")
    try:
        # Raw bytes on the wire, as a buggy or hostile client of any language could send them.
        stats = channel.unary_unary("/supportbot.v1.RetrieverService/Stats")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            # Waits for the connection: a channel an earlier test left backing off from a server on
            # this port (subchannels are shared per address) would otherwise fail the first call.
            await stats(wire, wait_for_ready=True, timeout=15)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, what
        assert "not a valid protobuf message" in error.value.details()
        assert "Traceback" not in error.value.details() and "Error" not in error.value.details()
        # The service keeps serving well-formed requests.
        assert await stats(retriever_pb2.StatsRequest(collection="kb").SerializeToString())
    finally:
        await channel.close()
        await service.stop()
