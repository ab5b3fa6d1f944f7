"""LoRA adapters served by vLLM and chosen per request (one generator of its own, since the
shared stack runs without LoRA)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from supportbot.client import SupportbotClient
from supportbot.core.settings import default_data_dir
from supportbot.models import default_model_dir
from supportbot.v1 import generator_pb2
from supportbot_cli.stack import Ports, Stack
from tests.lora import make_random_lora

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def lora_generator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model = default_model_dir(default_data_dir())
    adapter = make_random_lora(model, tmp_path_factory.mktemp("adapters") / "acme")
    stack = Stack(
        tmp_path_factory.mktemp("lora"),
        services=("generator",),
        ports=Ports.free(),
        extra_env={
            "SUPPORTBOT_GENERATOR_MODEL": str(model),
            "SUPPORTBOT_GENERATOR_LORA_ADAPTERS": json.dumps({"acme": str(adapter)}),
        },
    )
    stack.start()
    yield stack
    assert stack.stop() == {"generator": 0}


async def answer(client: SupportbotClient, adapter: str) -> str:
    request = generator_pb2.GenerateRequest(question="What is the capital of France?", adapter=adapter, max_tokens=24)
    async for event in client.generator_stub.Generate(request):
        if event.HasField("result"):
            return event.result.text
    raise AssertionError("no result")


async def test_adapter_is_served_per_request(lora_generator: Stack) -> None:
    async with SupportbotClient(generator=lora_generator.address("generator"), api_key=lora_generator.key("admin")) as client:
        assert list((await client.generator_info()).adapters) == ["acme"]
        base = await answer(client, "")
        # The adapter changes the weights on every layer: asked for, the answer changes (an
        # adapter dropped on the way to the engine would leave it as the base's) ...
        adapted = await answer(client, "acme")
        assert base and adapted and adapted != base
        # ... and without it the answer is the base's again.
        assert await answer(client, "") == base
        # In one batch the adapter applies to the request that asked for it only.
        plain, with_adapter = await asyncio.gather(answer(client, ""), answer(client, "acme"))
        assert plain != with_adapter and with_adapter != base
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await answer(client, "globex")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "adapters: acme" in error.value.details()
