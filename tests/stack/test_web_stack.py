"""The HTTP API on the running stack, as integrators use it: a plain HTTP client reading the chat
turn as Server-Sent Events while it streams, the official `openai` package against the
OpenAI-compatible endpoint, and a browser-like client that leaves mid-answer."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from supportbot.v1 import chat_pb2, common_pb2
from tests.conftest import TEST_KEYS, client_as

pytestmark = pytest.mark.stack
CUSTOMER = {"authorization": f"Bearer {TEST_KEYS['customer']['key']}"}
AGENT = {"authorization": f"Bearer {TEST_KEYS['agent']['key']}"}


def base(stack) -> str:  # type: ignore[no-untyped-def]
    return f"http://{stack.host}:{stack.ports.web}"


async def sse(response: httpx.Response):  # type: ignore[no-untyped-def]
    """(event, data) pairs as they arrive."""
    event = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))
            event = "message"


async def test_a_turn_streams_over_http_as_it_is_answered(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    # Answered afresh (a cached answer would arrive all at once).
    body = {"message": "How long does standard shipping take?", "answerMode": "ANSWER_MODE_VERIFIED", "bypassAnswerCache": True}
    kinds, arrivals = [], []
    async with httpx.AsyncClient(base_url=base(stack), timeout=120) as http:
        async with http.stream("POST", "/v1/chat", json=body, headers={**CUSTOMER, "x-request-id": "http-stream-1"}) as response:
            assert response.status_code == 200 and response.headers["x-request-id"] == "http-stream-1"
            async for kind, data in sse(response):
                kinds.append(kind)
                arrivals.append(asyncio.get_running_loop().time())
                if kind == "result":
                    result = data["result"]
                if kind == "session":
                    session_id = data["session"]["sessionId"]
        assert kinds[:2] == ["session", "sources"] and kinds[-1] == "result"
        assert result["grounded"] and result["citations"]
        # The events came as the turn went, not in one piece at the end.
        assert arrivals[-1] - arrivals[0] > 0.05
        session = (await http.get(f"/v1/sessions/{session_id}", headers=CUSTOMER)).json()["session"]
        assert len(session["turns"]) == 2 and session["channel"] == "api"
    # The caller's request id went on to the gateway (its log lines carry it).
    assert '"request_id": "http-stream-1"' in (stack.log_dir / "gateway.log").read_text()


async def test_the_official_openai_client_gets_grounded_answers(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    import openai

    client = openai.AsyncOpenAI(base_url=f"{base(stack)}/v1", api_key=TEST_KEYS["customer"]["key"], max_retries=0)
    try:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["supportbot"]
        completion = await client.chat.completions.create(
            model="supportbot", messages=[{"role": "user", "content": "How do I reset my password?"}],
            extra_body={"answer_mode": "extractive"},
        )
        answer = completion.choices[0].message.content
        assert answer and "[1]" in answer and completion.choices[0].finish_reason == "stop"
        extra = completion.model_extra
        assert extra["citations"] and extra["supportbot"]["grounded"]
        session_id = extra["supportbot"]["session_id"]
        # Going on with the same conversation: the follow-up is read with the question before it.
        stream = await client.chat.completions.create(
            model="supportbot", messages=[{"role": "user", "content": "and how long is the link valid?"}], stream=True,
            extra_body={"answer_mode": "extractive", "session_id": session_id},
        )
        pieces, last = [], None
        async for chunk in stream:
            pieces.append(chunk.choices[0].delta.content or "")
            last = chunk
        assert "".join(pieces).strip() and last is not None and last.choices[0].finish_reason == "stop"
        assert last.model_extra["supportbot"]["session_id"] == session_id
        with pytest.raises(openai.AuthenticationError):
            await openai.AsyncOpenAI(base_url=f"{base(stack)}/v1", api_key="sb_wrong", max_retries=0).chat.completions.create(
                model="supportbot", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()


def aborted_generations(stack) -> float:  # type: ignore[no-untyped-def]
    metrics = httpx.get(f"http://{stack.host}:{stack.ports.generator_metrics}/metrics").text
    found = re.search(r'supportbot_generator_finished_total\{reason="aborted"\} ([0-9.e+]+)', metrics)
    return float(found.group(1)) if found else 0.0


async def test_leaving_mid_answer_stops_generation_and_keeps_the_turn(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    aborted_before = aborted_generations(stack)
    body = {"message": "How do I pair a new bulb with the app?", "answerMode": "ANSWER_MODE_GENERATIVE"}
    async with httpx.AsyncClient(base_url=base(stack), timeout=120) as http:
        # Raw generation is for agent and admin keys; a customer key is refused it.
        refused = await http.post("/v1/chat", json=body, headers=CUSTOMER)
        assert refused.status_code == 403 and "may not ask for answer_mode generative" in refused.json()["error"]["message"]
        async with http.stream("POST", "/v1/chat", json=body, headers=AGENT) as response:
            async for kind, data in sse(response):
                if kind == "session":
                    session_id = data["session"]["sessionId"]
                if kind == "delta":
                    break  # the browser tab is closed while the answer streams
    async with client_as(stack, "agent") as agent:
        for _ in range(50):
            session = (await agent.chat_stub.GetSession(
                chat_pb2.GetSessionRequest(session_id=session_id), metadata=agent.metadata)).session
            if len(session.turns) == 2:
                break
            await asyncio.sleep(0.2)
    assert [t.role for t in session.turns] == [common_pb2.ROLE_CUSTOMER, common_pb2.ROLE_ASSISTANT]
    assert session.turns[1].content  # what was streamed before the customer left is kept
    for _ in range(50):
        if aborted_generations(stack) > aborted_before:
            break
        await asyncio.sleep(0.2)
    assert aborted_generations(stack) > aborted_before, "the generation ran on after the customer left"
