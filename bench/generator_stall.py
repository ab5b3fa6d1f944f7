"""Does a huge request stall the generator's event loop? A generator process is started, and its
health check is timed every 20 ms while requests of growing size arrive: none, a 1 MB question
(refused before any tokenizing), and a 190,000-character question (under the size limit, so it is
tokenized, in a worker thread, and then refused for not fitting the context).

Run: python bench/generator_stall.py
Target: the health check's worst latency during the big requests stays within a few times its idle
worst (the hardening issue measured 743 ms during a 1 MB question before the fix)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.client import SupportbotClient  # noqa: E402
from supportbot.core.settings import default_data_dir  # noqa: E402
from supportbot.models import default_model_dir  # noqa: E402
from supportbot.v1 import generator_pb2  # noqa: E402
from supportbot_cli.stack import Ports, Stack  # noqa: E402


async def health_latencies(address: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            started = time.perf_counter()
            await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    return latencies


async def during(stack: Stack, question: str, repeats: int) -> tuple[list[float], str, float]:
    stop = asyncio.Event()
    probe = asyncio.create_task(health_latencies(stack.address("generator"), stop))
    await asyncio.sleep(0.3)
    outcome, spent = "OK", 0.0
    async with SupportbotClient(generator=stack.address("generator"), api_key=stack.key("admin")) as client:
        for _ in range(repeats):
            started = time.perf_counter()
            try:
                if question:
                    async for _ in client.generator_stub.Generate(generator_pb2.GenerateRequest(question=question, max_tokens=4)):
                        pass
                else:
                    await asyncio.sleep(0.5)
            except grpc.aio.AioRpcError as error:
                outcome = error.code().name
            spent += time.perf_counter() - started
    await asyncio.sleep(0.3)
    stop.set()
    return await probe, outcome, spent / repeats


async def measure(stack: Stack) -> None:
    rows = [("idle", ""), ("1 MB question", "spam " * 200_000), ("190,000-character question", "word " * 38_000)]
    table = Table(title="generator health check while big requests arrive (this machine)")
    for column in ("request", "status", "request time", "health p50", "health max", "checks"):
        table.add_column(column)
    for name, question in rows:
        latencies, outcome, spent = await during(stack, question, repeats=3)
        table.add_row(
            name, outcome if question else "-", f"{spent * 1000:.0f} ms" if question else "-",
            f"{statistics.median(latencies) * 1000:.1f} ms", f"{max(latencies) * 1000:.1f} ms", str(len(latencies)),
        )
    Console().print(table)


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        stack = Stack(
            Path(data_dir), services=("generator",), ports=Ports.free(),
            extra_env={"SUPPORTBOT_GENERATOR_MODEL": str(default_model_dir(default_data_dir()))},
        )
        stack.start()
        try:
            asyncio.run(measure(stack))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
