"""The HTTP API (services/web) in front of the real gateway servicer on scripted backends, over
real gRPC and a real Valkey: routes from the protos, JSON both ways, SSE, statuses mapped to HTTP,
the OpenAI-compatible endpoint, and bad input. No model needed (the stack tests use one)."""

from __future__ import annotations

import json

import httpx
import pytest

from services.gateway.interaction_log import InteractionLog
from services.gateway.server import build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.web.app import build_app
from services.web.settings import WebSettings
from tests.conftest import TEST_KEYS
from tests.fakes import FakeGenerator, FakeRetriever, keyed_gateway

CUSTOMER = {"authorization": f"Bearer {TEST_KEYS['customer']['key']}"}
AGENT = {"x-api-key": TEST_KEYS["agent"]["key"]}
QUESTION = {"message": "How do I reset my password?", "answerMode": "ANSWER_MODE_EXTRACTIVE"}


@pytest.fixture()
async def web(redis, tmp_path):  # type: ignore[no-untyped-def]
    """An HTTP client of the web app, which calls a real gRPC gateway on scripted backends."""
    settings = GatewaySettings(data_dir=tmp_path, answer_mode="verified", customer_answer_modes=["extractive"])
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:web"), FakeRetriever(), FakeGenerator())
    async with keyed_gateway(servicer) as address:
        app = build_app(WebSettings(gateway_address=address, allowed_origins=["https://help.example"], max_body_bytes=8192))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as client:
            yield client


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    """(event, data) of each Server-Sent Event in a whole response."""
    parsed = []
    for block in response.text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            parsed.append((fields.get("event", "message"), fields["data"]))
    return [(kind, json.loads(data) if data != "[DONE]" else {}) for kind, data in parsed]


async def test_the_openapi_document_comes_from_the_protos(web) -> None:  # type: ignore[no-untyped-def]
    document = (await web.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/chat", "/v1/sessions", "/v1/sessions/{session_id}", "/v1/sessions/{session_id}:close",
            "/v1/sessions/{session_id}:watch", "/v1/sessions/{session_id}/replies"} <= set(document["paths"])
    request = document["components"]["schemas"]["supportbot.v1.ChatRequest"]["properties"]
    assert "ANSWER_MODE_EXTRACTIVE" in request["answerMode"]["enum"] and request["sessionId"] == {"type": "string"}
    assert "text/event-stream" in document["paths"]["/v1/chat"]["post"]["responses"]["200"]["content"]


async def test_a_chat_turn_streams_as_server_sent_events(web) -> None:  # type: ignore[no-untyped-def]
    response = await web.post("/v1/chat", json=QUESTION, headers={**CUSTOMER, "x-request-id": "web-test-1"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream"), response.text
    assert response.headers["x-request-id"] == "web-test-1"
    received = events(response)
    kinds = [kind for kind, _ in received]
    assert kinds[0] == "session" and kinds[1] == "sources" and "delta" in kinds and kinds[-1] == "result"
    result = received[-1][1]["result"]
    assert result["answerPath"] == "ANSWER_PATH_EXTRACTIVE" and result["grounded"] is True
    assert result["citations"][0]["documentId"] == "reset-password" and "Forgot password?" in result["answer"]
    session_id = received[0][1]["session"]["sessionId"]
    # The same session over JSON, as its customer; the agent queue over a query string.
    session = (await web.get(f"/v1/sessions/{session_id}", headers=CUSTOMER)).json()["session"]
    assert session["status"] == "SESSION_STATUS_BOT" and [t["role"] for t in session["turns"]] == ["ROLE_CUSTOMER", "ROLE_ASSISTANT"]
    listed = (await web.get("/v1/sessions?statuses=SESSION_STATUS_BOT&pageSize=10", headers=AGENT)).json()
    assert session_id in [s["sessionId"] for s in listed["sessions"]]
    feedback = await web.post(f"/v1/sessions/{session_id}/feedback", headers=CUSTOMER,
                              json={"turnId": result["turnId"], "rating": -1, "comment": "not what I asked"})
    assert feedback.json() == {"handoff": True}
    closed = await web.post(f"/v1/sessions/{session_id}:close", headers=CUSTOMER, json={})
    assert closed.json()["session"]["status"] == "SESSION_STATUS_CLOSED"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "grpc_status", "says"),
    [
        ("POST", "/v1/chat", {}, QUESTION, 401, "UNAUTHENTICATED", "x-api-key"),
        ("POST", "/v1/chat", {"authorization": "Bearer sb_wrong"}, QUESTION, 401, "UNAUTHENTICATED", "unknown API key"),
        ("GET", "/v1/sessions", CUSTOMER, None, 403, "PERMISSION_DENIED", "needs admin or agent"),
        ("GET", "/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CUSTOMER, None, 404, "NOT_FOUND", "does not exist"),
        ("GET", "/v1/sessions/not-an-id", CUSTOMER, None, 400, "INVALID_ARGUMENT", "malformed session id"),
        ("GET", "/v1/sessions?pageSize=-1", AGENT, None, 400, "INVALID_ARGUMENT", "page_size"),
        ("GET", "/v1/sessions?colour=red", AGENT, None, 400, "INVALID_ARGUMENT", "unknown query parameter"),
        ("POST", "/v1/chat", CUSTOMER, {"message": ""}, 400, "INVALID_ARGUMENT", "message is empty"),
        ("POST", "/v1/chat", CUSTOMER, {"message": "hi", "mood": "angry"}, 400, "INVALID_ARGUMENT", "mood"),
        ("POST", "/v1/chat", CUSTOMER, {"message": 42}, 400, "INVALID_ARGUMENT", "message"),
        ("POST", "/v1/chat", CUSTOMER, ["message"], 400, "INVALID_ARGUMENT", "JSON object"),
        ("POST", "/v1/chat", CUSTOMER, {"message": "x" * 9000}, 413, "RESOURCE_EXHAUSTED", "over the limit"),
        ("POST", "/v1/sessions", CUSTOMER, {"collection": "other-tenant-kb"}, 403, "PERMISSION_DENIED", "other-tenant-kb"),
    ],
)
async def test_refusals_are_http_statuses_with_a_message(web, method, path, headers, body, status, grpc_status, says) -> None:  # type: ignore[no-untyped-def]
    response = await web.request(method, path, headers=headers, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == grpc_status and says in error["message"]


async def test_bodies_must_be_json(web) -> None:  # type: ignore[no-untyped-def]
    malformed = await web.post("/v1/chat", headers={**CUSTOMER, "content-type": "application/json"}, content=b'{"message": ')
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]["message"]
    form = await web.post("/v1/chat", headers=CUSTOMER, data={"message": "hi"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]["message"]


async def test_cors_lets_allowed_origins_in_and_no_others(web) -> None:  # type: ignore[no-untyped-def]
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type"}
    allowed = await web.options("/v1/chat", headers={"origin": "https://help.example", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://help.example"
    foreign = await web.options("/v1/chat", headers={"origin": "https://evil.example", **preflight})
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers


async def test_openai_compatible_completion(web) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "supportbot", "messages": [{"role": "system", "content": "be nice"},
                                                {"role": "user", "content": "How do I reset my password?"}],
            "answer_mode": "extractive"}
    completion = (await web.post("/v1/chat/completions", headers=CUSTOMER, json=body)).json()
    assert completion["object"] == "chat.completion" and completion["model"] == "supportbot"
    assert "Forgot password?" in completion["choices"][0]["message"]["content"]
    assert completion["citations"][0]["document_id"] == "reset-password"
    assert completion["supportbot"]["grounded"] and completion["supportbot"]["answer_path"] == "extractive"
    streamed = events(await web.post("/v1/chat/completions", headers=CUSTOMER, json={**body, "stream": True}))
    chunks = [data for _, data in streamed[:-1]]
    assert streamed[-1] == ("message", {}) and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == completion["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"]
    models = (await web.get("/v1/models", headers=CUSTOMER)).json()
    assert [m["id"] for m in models["data"]] == ["supportbot"]


async def test_openai_messages_are_the_conversation(web) -> None:  # type: ignore[no-untyped-def]
    """An OpenAI client holds the conversation in `messages`: without a session id, the earlier
    user and assistant messages start the session (the system message does not)."""
    body = {"model": "supportbot", "answer_mode": "extractive", "messages": [
        {"role": "system", "content": "Answer as a pirate."},
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Tap Forgot password? on the sign-in screen."}]},
        {"role": "user", "content": "how long is the link good for?"},
    ]}
    completion = (await web.post("/v1/chat/completions", headers=CUSTOMER, json=body)).json()
    assert "60 minutes" in completion["choices"][0]["message"]["content"]
    session = (await web.get(f"/v1/sessions/{completion['supportbot']['session_id']}", headers=CUSTOMER)).json()["session"]
    assert [t["role"] for t in session["turns"]] == ["ROLE_CUSTOMER", "ROLE_ASSISTANT", "ROLE_CUSTOMER", "ROLE_ASSISTANT"]
    assert session["turns"][1]["content"] == "Tap Forgot password? on the sign-in screen."
    assert session["channel"] == "openai" and all("pirate" not in t["content"] for t in session["turns"])


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "not_found_error"),
        ({"model": "supportbot", "messages": [{"role": "wizard", "content": "x"}, {"role": "user", "content": "hi"}]},
         400, "invalid_request_error"),
        ({"model": "supportbot", "messages": []}, 400, "invalid_request_error"),
        ({"model": "supportbot", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "invalid_request_error"),
        ({"model": "supportbot", "messages": [{"role": "user", "content": "hi"}], "answer_mode": "wild"}, 400, "invalid_request_error"),
    ],
)
async def test_openai_errors_have_openai_s_shape(web, body, status, error_type) -> None:  # type: ignore[no-untyped-def]
    response = await web.post("/v1/chat/completions", headers=CUSTOMER, json=body)
    assert response.status_code == status and response.json()["error"]["type"] == error_type
    unauthenticated = await web.post("/v1/chat/completions", json={"model": "supportbot", "messages": [{"role": "user", "content": "hi"}]})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["type"] == "authentication_error"
