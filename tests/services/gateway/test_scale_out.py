"""The scale-out path, against real servers: the gateway's Redis through Sentinel across a
failover, health-aware round-robin and retries over several gRPC replicas, and the cluster
layout settings of the retriever and generator."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
import redis.asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.gateway.redis_connection import connect_redis
from services.gateway.sessions import SessionStore, TurnRecord
from services.gateway.settings import GatewaySettings
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import QdrantServerStore
from supportbot.core.channels import create_channel
from supportbot.core.server import server_options
from supportbot_cli.stack import free_port, redis_server_binary

MASTER_NAME = "supportbot"


def _start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([redis_server_binary(), *args], cwd=cwd, stdout=subprocess.DEVNULL)


def _wait_until(check, timeout_s: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_s} s: {check}")
        time.sleep(0.1)


@pytest.fixture()
def sentinel_group(tmp_path: Path) -> Iterator[dict]:
    """A master, its replica and one Sentinel watching them (quorum 1), all real Valkey."""
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    (tmp_path / "sentinel").mkdir()
    master = _start(["--port", str(master_port), *common], tmp_path / "master")
    replica = _start(
        ["--port", str(replica_port), "--replicaof", "127.0.0.1", str(master_port), *common], tmp_path / "replica"
    )
    config = tmp_path / "sentinel" / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
        f"sentinel failover-timeout {MASTER_NAME} 2000\n"
    )
    sentinel = _start([str(config), "--sentinel"], tmp_path / "sentinel")
    replica_client = redis.Redis(port=replica_port)
    _wait_until(lambda: replica_client.info("replication").get("master_link_status") == "up")
    sentinel_client = redis.Redis(port=sentinel_port)
    _wait_until(lambda: sentinel_client.sentinel_master(MASTER_NAME)["num-slaves"] >= 1)
    yield {"master": master, "master_port": master_port, "replica_port": replica_port, "sentinel_port": sentinel_port}
    for process in (sentinel, replica, master):
        process.kill()
        process.wait(10)


async def test_sessions_survive_a_sentinel_failover(sentinel_group: dict) -> None:
    settings = GatewaySettings(
        redis_url="redis://ignored-host:1/0",
        redis_sentinels=f"127.0.0.1:{sentinel_group['sentinel_port']}",
        redis_sentinel_master=MASTER_NAME,
    )
    client = connect_redis(settings.storage)
    store = SessionStore(client, ttl_s=600)
    session = await store.create(collection="helpcenter", channel="test")
    async with store.locked(session.session_id) as locked:
        locked.turns.append(TurnRecord("t1", "customer", "before the failover", 0))
    # Acknowledged by the replica before the master goes away, as Redis's own WAIT promises.
    assert await client.execute_command("WAIT", 1, 5000) == 1

    sentinel_group["master"].kill()
    sentinel_group["master"].wait(10)
    sentinel_client = redis.Redis(port=sentinel_group["sentinel_port"])
    # redis-py refuses a master that Sentinel still flags as subjectively down: right after the
    # promotion Sentinel pings the new master afresh, and on a busy machine its first reply can come
    # later than down-after-milliseconds. Wait for the state redis-py itself accepts.
    _wait_until(lambda: _promoted_and_answering(sentinel_client, sentinel_group["replica_port"]))

    # The same client object follows the new master: reads and writes go on.
    async with store.locked(session.session_id) as locked:
        locked.turns.append(TurnRecord("t2", "customer", "after the failover", 0))
    turns = (await store.get(session.session_id)).turns
    assert [turn.turn_id for turn in turns] == ["t1", "t2"]
    assert (await _accepted_master(client))[1] == sentinel_group["replica_port"]
    await client.aclose()


def _promoted_and_answering(sentinel_client: redis.Redis, replica_port: int) -> bool:
    state = sentinel_client.sentinel_master(MASTER_NAME)
    return (
        int(state["port"]) == replica_port
        and state["is_master"]
        and not state["is_sdown"]
        and not state["is_odown"]
        and int(state["last-ok-ping-reply"]) < 500
    )


async def _accepted_master(client: redis.asyncio.Redis, timeout_s: float = 15.0) -> tuple[str, int]:
    """The master redis-py accepts, asked until a passing down flag has cleared at Sentinel's next ping."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await client.connection_pool.get_master_address()  # type: ignore[attr-defined,no-any-return]
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_sentinel_settings_are_checked() -> None:
    assert GatewaySettings(redis_sentinels="a:26379, b:26379").storage.redis_sentinels == ["a:26379", "b:26379"]
    assert GatewaySettings().storage.redis_sentinels == []
    with pytest.raises(ValueError, match="host:port"):
        GatewaySettings(redis_sentinels="sentinel-without-port")


# -- gRPC replicas ------------------------------------------------------------------------------

PING = "/supportbot.test.Replica/Ping"


class Replica:
    """A real grpc.aio server with the standard health service and one method that answers with
    the replica's name, so a test can see which replica served each call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server()
        self.refusing = False

    async def start(self) -> None:
        async def ping(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if self.refusing:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"replica {self.name} is overloaded")
            return self.name.encode()

        handler = grpc.method_handlers_generic_handler(
            "supportbot.test.Replica", {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
        )
        self.server.add_generic_rpc_handlers([handler])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set("", status)


async def _served_by(channel: grpc.aio.Channel, calls: int) -> Counter[str]:
    ping = channel.unary_unary(PING)
    return Counter([(await ping(b"", timeout=5)).decode() for _ in range(calls)])


async def test_round_robin_skips_unhealthy_replicas_and_retries() -> None:
    replicas = [Replica("a"), Replica("b"), Replica("c")]
    for replica in replicas:
        await replica.start()
    # One target that resolves to several addresses, as dns:/// does for a headless Service.
    target = "ipv4:" + ",".join(f"127.0.0.1:{replica.port}" for replica in replicas)
    channel = create_channel(target, retry_services=["supportbot.test.Replica"])
    try:
        # The channel is ready with its first connection; wait until every replica has one.
        seen: Counter[str] = Counter()
        for _ in range(100):
            seen += await _served_by(channel, 1)
            if len(seen) == 3:
                break
        served = await _served_by(channel, 30)
        assert served == Counter({"a": 10, "b": 10, "c": 10}), served

        # A replica that reports NOT_SERVING (starting, draining) gets no new calls.
        await replicas[1].set_serving(False)
        await asyncio.sleep(0.5)
        served = await _served_by(channel, 20)
        assert set(served) == {"a", "c"}, served

        # A replica that goes away: calls keep succeeding on the others, none fails.
        await replicas[0].server.stop(0)
        served = await _served_by(channel, 20)
        assert set(served) == {"c"}, served

        # Back to serving: it is used again without a reconnect.
        await replicas[1].set_serving(True)
        await asyncio.sleep(0.5)
        served = await _served_by(channel, 20)
        assert set(served) == {"b", "c"}, served

        # A replica that answers UNAVAILABLE while its health still says SERVING: each such call
        # is retried on the next replica, and the caller never sees the error.
        replicas[2].refusing = True
        served = await _served_by(channel, 20)
        assert served == Counter({"b": 20}), served
    finally:
        await channel.close()
        for replica in replicas:
            await replica.server.stop(0)


def test_servers_age_connections_so_clients_find_new_replicas() -> None:
    options = dict(server_options(GatewaySettings(max_connection_age_s=60, max_connection_age_grace_s=200)))
    assert options["grpc.max_connection_age_ms"] == 60_000
    assert options["grpc.max_connection_age_grace_ms"] == 200_000


# -- cluster layout -----------------------------------------------------------------------------


def test_retriever_creates_collections_with_the_cluster_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RetrieverSettings(
        backend="server", qdrant_location=":memory:", shard_number=6, replication_factor=2, write_consistency_factor=2
    )
    from services.retriever.server import build_store

    store = build_store(settings)
    assert isinstance(store, QdrantServerStore)
    created: dict = {}
    original = store.client.create_collection

    def record(name: str, **kwargs):  # type: ignore[no-untyped-def]
        created.update(kwargs)
        return original(name, **kwargs)

    monkeypatch.setattr(store.client, "create_collection", record)
    store.ensure_collection("helpcenter", 384)
    assert (created["shard_number"], created["replication_factor"], created["write_consistency_factor"]) == (6, 2, 2)
    assert store.has_collection("helpcenter")

    with pytest.raises(ValueError, match="cannot exceed replication_factor"):
        RetrieverSettings(replication_factor=2, write_consistency_factor=3)


def test_generator_parallelism_settings_reach_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from services.generator.engine import engine_args
    from services.generator.settings import GeneratorSettings

    monkeypatch.setenv("SUPPORTBOT_GENERATOR_TENSOR_PARALLEL_SIZE", "4")
    monkeypatch.setenv("SUPPORTBOT_GENERATOR_PIPELINE_PARALLEL_SIZE", "2")
    args = engine_args(GeneratorSettings(model=str(tmp_path)))
    assert (args.tensor_parallel_size, args.pipeline_parallel_size) == (4, 2)
