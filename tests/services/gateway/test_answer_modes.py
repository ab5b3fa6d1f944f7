"""Which answer modes a key may ask for: customer and publishable keys get the operator's
(by default only the configured mode, never the model's raw text), agent, service and admin keys
any; a refusal is PERMISSION_DENIED saying why and what is allowed, 403 over HTTP and OpenAI's
permission_error on the OpenAI endpoint. Real gRPC server with the real key check; scripted
retriever and generator."""

from __future__ import annotations

import grpc
import httpx
import pytest

from services.gateway.interaction_log import InteractionLog
from services.gateway.server import build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.web.app import build_app
from services.web.settings import WebSettings
from supportbot.v1 import chat_pb2, chat_pb2_grpc
from tests.conftest import TEST_KEYS
from tests.fakes import FakeGenerator, FakeRetriever, keyed_gateway

GENERATIVE, VERIFIED, EXTRACTIVE = chat_pb2.ANSWER_MODE_GENERATIVE, chat_pb2.ANSWER_MODE_VERIFIED, chat_pb2.ANSWER_MODE_EXTRACTIVE


def gateway(redis, tmp_path, **settings):  # type: ignore[no-untyped-def]
    config = GatewaySettings(data_dir=tmp_path, **{"answer_mode": "verified", **settings})
    servicer = build_chat(config, SessionStore(redis, 600), InteractionLog(redis, "test:modes"), FakeRetriever(), FakeGenerator())
    return keyed_gateway(servicer)


async def chat(address: str, who: str, mode: int) -> chat_pb2.ChatResult:
    async with grpc.aio.insecure_channel(address) as channel:
        call = chat_pb2_grpc.ChatServiceStub(channel).Chat(
            chat_pb2.ChatRequest(message="How do I reset my password?", answer_mode=mode),
            metadata=(("x-api-key", TEST_KEYS[who]["key"]),),
        )
        async for response in call:
            if response.HasField("result"):
                return response.result
    raise AssertionError("no result")


@pytest.mark.parametrize("who", ["customer", "publishable"])
async def test_customer_keys_get_only_the_configured_mode_by_default(redis, tmp_path, who) -> None:  # type: ignore[no-untyped-def]
    async with gateway(redis, tmp_path) as address:
        assert (await chat(address, who, 0)).answer_mode == VERIFIED
        assert (await chat(address, who, VERIFIED)).answer_mode == VERIFIED
        for refused in (GENERATIVE, EXTRACTIVE):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await chat(address, who, refused)
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            name = chat_pb2.AnswerMode.Name(refused).removeprefix("ANSWER_MODE_").lower()
            assert f"a {who} key may not ask for answer_mode {name}" in error.value.details()
            assert "customers get verified answers" in error.value.details()
            assert "SUPPORTBOT_GATEWAY_CUSTOMER_ANSWER_MODES" in error.value.details()
        # A refused turn stores nothing.
        assert len([key async for key in redis.scan_iter("supportbot:session:s_*") if not key.endswith(b":lock")]) == 2


@pytest.mark.parametrize("who", ["agent", "admin"])
async def test_operators_keys_may_ask_for_any_mode(redis, tmp_path, who) -> None:  # type: ignore[no-untyped-def]
    async with gateway(redis, tmp_path) as address:
        for mode in (GENERATIVE, VERIFIED, EXTRACTIVE):
            assert (await chat(address, who, mode)).answer_mode == mode


async def test_the_operator_chooses_what_customers_may_ask_for(redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with gateway(redis, tmp_path, answer_mode="extractive", customer_answer_modes="verified") as address:
        assert (await chat(address, "customer", 0)).answer_mode == EXTRACTIVE
        assert (await chat(address, "customer", VERIFIED)).answer_mode == VERIFIED
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await chat(address, "customer", GENERATIVE)
        assert "customers get extractive or verified answers" in error.value.details()
    # Raw generation reaches customers only when the operator names it.
    async with gateway(redis, tmp_path, customer_answer_modes="generative") as address:
        assert (await chat(address, "customer", GENERATIVE)).answer_mode == GENERATIVE


def test_customer_answer_modes_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="customer_answer_modes"):
        GatewaySettings(customer_answer_modes="wild")


async def test_refusals_are_403_over_http_and_openai_s_permission_error(redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    customer = {"authorization": f"Bearer {TEST_KEYS['customer']['key']}"}
    async with gateway(redis, tmp_path) as address:
        app = build_app(WebSettings(gateway_address=address))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as web:
            refused = await web.post("/v1/chat", headers=customer,
                                     json={"message": "How do I reset my password?", "answerMode": "ANSWER_MODE_GENERATIVE"})
            assert refused.status_code == 403
            assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
            assert "may not ask for answer_mode generative" in refused.json()["error"]["message"]
            body = {"model": "supportbot", "messages": [{"role": "user", "content": "How do I reset my password?"}],
                    "answer_mode": "generative"}
            openai_refused = await web.post("/v1/chat/completions", headers=customer, json=body)
            assert openai_refused.status_code == 403 and openai_refused.json()["error"]["type"] == "permission_error"
            assert "customers get verified answers" in openai_refused.json()["error"]["message"]
