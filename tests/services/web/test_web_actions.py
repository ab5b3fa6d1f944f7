"""Account actions over the HTTP channels (services/web): the chat route's JSON and Server-Sent
Events and the OpenAI-compatible endpoint, in front of the real gateway servicer with its act
stage, against the real demo shop on a temporary SQLite file, a real Valkey, and the routing
tests' deterministic embedder (no model). The customer comes only from the credentials (a
customer key, or the widget's publishable key with the identity token the company's server
signed); a forged or expired token is refused with a readable message and stores nothing; a change
runs only after a "yes" in the same session, once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from services.gateway.interaction_log import InteractionLog
from services.gateway.server import build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from services.web.app import build_app
from services.web.settings import WebSettings
from supportbot.actions.identity import issue_identity_token
from tests.conftest import TEST_KEYS, write_test_keys
from tests.fakes import FakeGenerator, FakeRetriever, keyed_gateway
from tests.services.gateway.test_actions_turn import IDENTITY_SECRET, SHOP_TOKEN, act_stage
from tests.services.web.test_web import events

STREAM = "test:web-actions"
# The widget's key: public, so it names no customer; the identity token does.
WIDGET = {"authorization": f"Bearer {TEST_KEYS['publishable']['key']}", "origin": "https://help.example"}
CUSTOMER = {"authorization": f"Bearer {TEST_KEYS['customer']['key']}"}


@pytest.fixture()
def shop(tmp_path):  # type: ignore[no-untyped-def]
    with ShopServer(ShopSettings(database=str(tmp_path / "shop.sqlite3"), port=0, service_token=SHOP_TOKEN)) as server:
        yield server


@asynccontextmanager
async def web_app(redis, tmp_path, shop, **web_settings) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The web app (these WebSettings) in front of a gateway with the act stage on the shop."""
    settings = GatewaySettings(data_dir=tmp_path, answer_mode="extractive")
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, STREAM), FakeRetriever(), FakeGenerator(),
                          act=act_stage(shop))
    async with keyed_gateway(servicer) as address:
        app = build_app(WebSettings(gateway_address=address, **web_settings))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as client:
            client.sessions = servicer.sessions  # type: ignore[attr-defined]
            yield client


@pytest.fixture()
async def web(redis, tmp_path, shop):  # type: ignore[no-untyped-def]
    async with web_app(redis, tmp_path, shop, allowed_origins=["https://help.example"]) as client:
        yield client


def token(customer_id: str, **options) -> str:  # type: ignore[no-untyped-def]
    return issue_identity_token(customer_id, IDENTITY_SECRET, **options)


async def chat(web: httpx.AsyncClient, message: str, session_id: str = "", *, identity: str = "",
               headers: dict[str, str] = WIDGET) -> tuple[str, dict]:
    """One turn over POST /v1/chat as the widget sends it; (session id, the result event's result)."""
    body = {"message": message, "sessionId": session_id, "channel": "widget", **({"identityToken": identity} if identity else {})}
    response = await web.post("/v1/chat", json=body, headers=headers)
    assert response.status_code == 200, response.text
    received = dict(events(response))
    return received["session"]["session"]["sessionId"], received["result"]["result"]


async def changes_made(redis) -> list[str]:  # type: ignore[no-untyped-def]
    records = [json.loads(fields[b"record"]) for _, fields in await redis.xrange(STREAM) if fields[b"kind"] == b"action"]
    return [record["action"] for record in records if record["changes"]]


async def test_over_http_the_signed_in_customer_reads_their_own_order_and_confirms_a_change(web, shop, redis) -> None:  # type: ignore[no-untyped-def]
    ben = token("c-ben")
    session_id, question = await chat(web, "Where is my order?", identity=ben)
    assert question["answerPath"] == "ANSWER_PATH_ACTION" and question["action"]["kind"] == "ACTION_REPLY_KIND_CLARIFY"
    assert [o["value"] for o in question["action"]["options"]] == [o["order_id"] for o in shop.store.orders("c-ben")]
    _, answer = await chat(web, "L-100002", session_id, identity=ben)
    assert answer["action"]["kind"] == "ACTION_REPLY_KIND_RESULT" and answer["grounded"]
    assert [r["marker"] for r in answer["action"]["records"]] == [c["title"] for c in answer["citations"]] == ["[order L-100002]"]
    assert shop.store.order("c-ben", "L-100002")["status"] in answer["answer"]

    _, proposal = await chat(web, "Cancel my Lumio Plus subscription", session_id, identity=ben)
    assert proposal["action"]["kind"] == "ACTION_REPLY_KIND_CONFIRM" and "S-2002" in proposal["answer"]
    assert shop.store.subscriptions("c-ben")[0]["status"] == "active" and await changes_made(redis) == []
    _, done = await chat(web, "yes", session_id, identity=ben)
    assert done["action"]["kind"] == "ACTION_REPLY_KIND_RESULT" and "[subscription S-2002]" in done["answer"]
    assert shop.store.subscriptions("c-ben")[0]["status"] == "cancelled"
    _, again = await chat(web, "yes", session_id, identity=ben)
    assert again["action"]["kind"] == "ACTION_REPLY_KIND_ERROR" and await changes_made(redis) == ["cancel_subscription"]


async def test_a_session_read_again_says_which_action_waits_for_the_customer(web, shop) -> None:  # type: ignore[no-untyped-def]
    """What the widget redraws after a page reload: the clarifying question's options, then the
    change to confirm, each only while its question is the conversation's last turn."""
    ben = token("c-ben")

    async def waiting(session_id: str) -> dict | None:
        response = await web.get(f"/v1/sessions/{session_id}", headers=WIDGET)
        assert response.status_code == 200, response.text
        return response.json()["session"].get("waitingAction")

    session_id, question = await chat(web, "Where is my order?", identity=ben)
    clarify = await waiting(session_id)
    assert clarify is not None and clarify["kind"] == "ACTION_REPLY_KIND_CLARIFY"
    assert [o["value"] for o in clarify["options"]] == [o["order_id"] for o in shop.store.orders("c-ben")]
    # The buttons drawn again read as the question's did ("L-100002, Lumio Hub ..."), not as bare values.
    assert clarify["options"] == question["action"]["options"]
    assert all(o["label"] != o["value"] for o in clarify["options"])
    await chat(web, "L-100002", session_id, identity=ben)
    assert await waiting(session_id) is None
    await chat(web, "Cancel my Lumio Plus subscription", session_id, identity=ben)
    confirm = await waiting(session_id)
    assert confirm is not None and confirm["kind"] == "ACTION_REPLY_KIND_CONFIRM" and confirm["action"] == "cancel_subscription"
    await chat(web, "How long does a refund take?", session_id, identity=ben)  # set aside by another question
    assert await waiting(session_id) is None


async def test_the_widget_demo_signs_in_as_a_demo_customer_with_a_token_the_gateway_accepts(redis, tmp_path, shop) -> None:  # type: ignore[no-untyped-def]
    keys = tmp_path / "keys.json"
    write_test_keys(keys, ("http://web",))  # the publishable key allowed on the demo page's own origin
    on = {"api_keys_file": keys, "demo_customers": ["c-ana", "c-ben"], "demo_identity_secret": IDENTITY_SECRET}
    async with web_app(redis, tmp_path, shop, **on) as web:
        offered = await web.get("/widget-demo?lang=en")
        assert offered.status_code == 200 and 'href="?lang=en&amp;customer=c-ben"' in offered.text
        assert "data-identity-token" not in offered.text  # nobody is signed in until chosen
        page = await web.get("/widget-demo?customer=c-ben")
        assert page.status_code == 200 and "Signed in as <b>c-ben</b>" in page.text
        found = re.search(r'<script src="/widget.js" [^>]*data-identity-token="([^"]+)"', page.text)
        assert found is not None and IDENTITY_SECRET not in page.text
        # The widget's own request from that page: the publishable key, the page's origin, the token.
        widget = {"authorization": f"Bearer {TEST_KEYS['publishable']['key']}", "origin": "http://web"}
        _, question = await chat(web, "Where is my order?", identity=found.group(1), headers=widget)
        assert question["action"]["kind"] == "ACTION_REPLY_KIND_CLARIFY"
        assert [o["value"] for o in question["action"]["options"]] == [o["order_id"] for o in shop.store.orders("c-ben")]
        unknown = await web.get("/widget-demo?customer=c-nobody")
        assert unknown.status_code == 400 and "no customer of the demo shop" in unknown.text and "c-ana, c-ben" in unknown.text
    # Account actions off (no demo customers, or no secret to sign with): nobody is signed in.
    for off in ({"api_keys_file": keys}, {"api_keys_file": keys, "demo_customers": ["c-ben"]}):
        async with web_app(redis, tmp_path, shop, **off) as web:
            refused = await web.get("/widget-demo?customer=c-ben")
            assert refused.status_code == 400 and "supportbot up --actions" in refused.text
            plain = await web.get("/widget-demo")
            assert plain.status_code == 200 and "customer=" not in plain.text and "data-identity-token=\"ey" not in plain.text


async def test_without_a_token_the_widget_visitor_is_anonymous_and_told_to_sign_in(web, shop) -> None:  # type: ignore[no-untyped-def]
    _, anonymous = await chat(web, "What's the status of order L-100001?")
    assert anonymous["action"]["kind"] == "ACTION_REPLY_KIND_ERROR" and "signed in" in anonymous["answer"]
    assert not anonymous["citations"] and shop.store.order("c-ben", "L-100001")["tracking_number"] not in anonymous["answer"]


@pytest.mark.parametrize(
    ("presented", "says"),
    [
        (lambda: issue_identity_token("c-ana", "another-secret-" + "x" * 32), "signature is wrong"),
        (lambda: token("c-ana", lifetime_s=60, now=time.time() - 3600), "expired"),
        (lambda: "not-a-token", "malformed"),
        (lambda: token("c-ana").rsplit(".", 1)[0] + ".", "signature"),
    ],
)
async def test_a_forged_or_expired_token_is_refused_over_http_and_nothing_is_stored(web, shop, redis, presented, says) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(web, "Cancel my Lumio Plus subscription", identity=token("c-ana"))
    assert proposal["action"]["kind"] == "ACTION_REPLY_KIND_CONFIRM"
    turns_before = len((await web.sessions.get(session_id)).turns)
    refused = await web.post("/v1/chat", headers=WIDGET,
                             json={"message": "yes", "sessionId": session_id, "identityToken": presented()})
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["status"] == "PERMISSION_DENIED" and "identity token" in error["message"] and says in error["message"]
    stored = await web.sessions.get(session_id)
    assert len(stored.turns) == turns_before and stored.pending_action["status"] == "awaiting_confirmation"
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active" and await changes_made(redis) == []


async def test_identity_tokens_bad_input_over_http(web) -> None:  # type: ignore[no-untyped-def]
    wrong_type = await web.post("/v1/chat", headers=WIDGET, json={"message": "Where is my order?", "identityToken": 42})
    assert wrong_type.status_code == 400 and "identityToken" in wrong_type.json()["error"]["message"]
    # A customer key names its customer: a token naming another one is refused, not obeyed.
    other = await web.post("/v1/chat", headers=CUSTOMER, json={"message": "Where is my order?", "identityToken": token("c-ana")})
    assert other.status_code == 403 and "another customer" in other.json()["error"]["message"]


def completion_body(message: str, *, session_id: str = "", identity: str = "", history: list[dict] | None = None) -> dict:
    body: dict = {"model": "supportbot", "messages": [*(history or []), {"role": "user", "content": message}]}
    if session_id:
        body["session_id"] = session_id
    if identity:
        body["identity_token"] = identity
    return body


async def complete(web: httpx.AsyncClient, message: str, **options) -> dict:  # type: ignore[no-untyped-def]
    response = await web.post("/v1/chat/completions", headers=WIDGET, json=completion_body(message, **options))
    assert response.status_code == 200, response.text
    completion: dict = response.json()
    return completion


async def test_over_the_openai_endpoint_actions_need_the_token_and_confirm_in_the_same_session(web, shop, redis) -> None:  # type: ignore[no-untyped-def]
    ana = token("c-ana")
    lookup = await complete(web, "What's the status of order L-104233?", identity=ana)
    extra = lookup["supportbot"]
    assert extra["answer_path"] == "action" and extra["action"]["kind"] == "result" and extra["grounded"]
    assert extra["action"]["records"] == [{"record": "order", "record_id": "L-104233", "marker": "[order L-104233]"}]
    assert "[order L-104233]" in lookup["choices"][0]["message"]["content"]
    assert shop.store.order("c-ana", "L-104233")["status"] in lookup["choices"][0]["message"]["content"]
    assert [c["title"] for c in lookup["citations"]] == ["[order L-104233]"]

    proposal = await complete(web, "Cancel my Lumio Plus subscription", identity=ana)
    session_id, asked = proposal["supportbot"]["session_id"], proposal["choices"][0]["message"]["content"]
    assert proposal["supportbot"]["action"]["kind"] == "confirm" and "S-2001" in asked
    # A "yes" without the session id is a new conversation, built from messages the client
    # wrote: nothing waits for confirmation there, and nothing changes.
    stateless = await complete(web, "yes", identity=ana, history=[
        {"role": "user", "content": "Cancel my Lumio Plus subscription"}, {"role": "assistant", "content": asked}])
    assert stateless["supportbot"]["action"]["kind"] == "error" and "nothing waiting" in stateless["choices"][0]["message"]["content"]
    assert shop.store.subscriptions("c-ana")[0]["status"] == "active" and await changes_made(redis) == []
    # The yes in the session that asked, streamed: the last chunk carries the action's reply.
    streamed = events(await web.post("/v1/chat/completions", headers=WIDGET,
                                     json={**completion_body("yes", session_id=session_id, identity=ana), "stream": True}))
    chunks = [data for _, data in streamed[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["supportbot"]["action"]["kind"] == "result" and "[subscription S-2001]" in content
    assert shop.store.subscriptions("c-ana")[0]["status"] == "cancelled" and await changes_made(redis) == ["cancel_subscription"]


async def test_a_help_center_answer_over_the_openai_endpoint_has_no_action(web) -> None:  # type: ignore[no-untyped-def]
    completion = await complete(web, "How do I reset my password?", identity=token("c-ana"))
    assert completion["supportbot"]["action"] is None and completion["supportbot"]["answer_path"] != "action"


@pytest.mark.parametrize(
    ("identity", "status", "error_type", "says"),
    [
        (42, 400, "invalid_request_error", "identity_token must be a string"),
        (["a", "b"], 400, "invalid_request_error", "identity_token must be a string"),
        ("not-a-token", 403, "permission_error", "identity token is malformed"),
        ("forged", 403, "permission_error", "signature is wrong"),
    ],
)
async def test_identity_tokens_bad_input_over_the_openai_endpoint(web, shop, identity, status, error_type, says) -> None:  # type: ignore[no-untyped-def]
    if identity == "forged":
        identity = issue_identity_token("c-ana", "another-secret-" + "x" * 32)
    body = {"model": "supportbot", "messages": [{"role": "user", "content": "Where is my order?"}], "identity_token": identity}
    response = await web.post("/v1/chat/completions", headers=WIDGET, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type and says in error["message"]


async def test_over_http_an_agent_reads_the_case_and_approves_the_proposed_change_once(web, shop, redis) -> None:  # type: ignore[no-untyped-def]
    session_id, proposal = await chat(web, "Cancel my Lumio Plus subscription", identity=token("c-ben"))
    assert proposal["action"]["kind"] == "ACTION_REPLY_KIND_CONFIRM"
    agent = {"authorization": f"Bearer {TEST_KEYS['agent']['key']}"}
    refused = await web.get(f"/v1/sessions/{session_id}/case", headers=WIDGET)
    assert refused.status_code == 403 and "needs admin or agent" in refused.json()["error"]["message"]
    case = (await web.get(f"/v1/sessions/{session_id}/case", headers=agent)).json()
    assert [r["marker"] for r in case["records"]] == ["[subscription S-2002]"]
    proposed = case["proposedAction"]
    assert proposed["state"] == "PROPOSAL_STATE_WAITING" and proposed["parameters"] == {"subscription_id": "S-2002"}
    approve = f"/v1/sessions/{session_id}:approveAction"
    approved = await web.post(approve, json={"proposalId": proposed["proposalId"]}, headers=agent)
    assert approved.status_code == 200, approved.text
    assert approved.json()["turn"]["approvedBy"] == "agent smith" and "[subscription S-2002]" in approved.json()["answer"]
    assert shop.store.subscriptions("c-ben")[0]["status"] == "cancelled"
    again = await web.post(approve, json={"proposalId": proposed["proposalId"]}, headers=agent)
    assert again.status_code == 400 and again.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert await changes_made(redis) == ["cancel_subscription"]
