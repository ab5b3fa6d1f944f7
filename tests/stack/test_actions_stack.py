"""`supportbot up --actions` as a user gets it: a stack (retriever, gateway, the customer page, the
HTTP API with the widget, and the demo shop; no generator, so it starts in seconds) whose gateway
runs the sample's account actions against the shop the stack started, with the service token the
stack generated for both, and accepts identity tokens signed with the company's secret. On every
channel (gRPC, the customer page, HTTP/SSE, the OpenAI-compatible endpoint, the widget in
Chromium on a host page that passes its identity token) "Where is my order?" is answered from the
shop's own record of that customer, cited, and a change is proposed for confirmation and runs
once on "yes", as the shop's API then shows. The shop killed between the proposal and the yes: an
honest failure, nothing changed, the session goes on."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from supportbot.actions.identity import IdentitySettings, issue_identity_token
from supportbot.client import SupportbotClient
from supportbot.v1 import chat_pb2
from supportbot_cli.stack import Ports, Stack, settings_environment
from tests.paths import ARTIFACTS

pytestmark = pytest.mark.stack
# The secret the company's server signs its visitors' identity tokens with (the widget's, and
# any HTTP client's that acts for many customers with the publishable key).
IDENTITY_SECRET = "actions-stack-identity-secret-" + "k" * 16


@pytest.fixture(scope="module")
def actions_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(tmp_path_factory.mktemp("actions-stack"), services=("retriever", "gateway", "ui", "web"),
                    ports=Ports.free(), actions=True,
                    extra_env=settings_environment(IdentitySettings, identity_secret=IDENTITY_SECRET))
    try:
        started.start()
        yield started
    finally:
        started.stop()


def shop_orders(stack: Stack, customer_id: str) -> list[dict]:
    """The customer's orders as the shop itself lists them (its API, with the stack's token)."""
    request = urllib.request.Request(f"{stack.shop_url()}/v1/orders", headers={
        "Authorization": f"Bearer {stack.shop_service_token}", "X-Customer-Id": customer_id,
    })
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    orders: list[dict] = body["orders"]
    return orders


async def turn(stack: Stack, message: str, session_id: str = "") -> tuple[str, chat_pb2.ChatResult]:
    client = SupportbotClient(stack.address("gateway"), retriever=stack.address("retriever"), api_key=stack.key("customer"))
    try:
        found, result, _ = await client.ask(message, session_id=session_id, timeout=120)
    finally:
        await client.close()
    return found, result


def order_then_cancel(scope, ask, *, shipped: str, other: str, tracking: str) -> None:  # type: ignore[no-untyped-def]
    """In a chat page (or the widget within one): "Where is my order?" offers the customer's
    orders as buttons, the shipped one answers with its record cited and its tracking number;
    then asks to cancel the subscription (the caller checks the confirmation)."""
    from playwright.sync_api import expect

    ask.fill("Where is my order?")
    ask.press("Enter")
    button = scope.get_by_role("button", name=re.compile(shipped))
    expect(button).to_be_visible(timeout=120_000)
    expect(scope.get_by_role("button", name=re.compile(other))).to_be_visible()
    button.click()
    expect(scope.get_by_text(f"[order {shipped}]").first).to_be_visible(timeout=60_000)
    expect(scope.get_by_text(tracking).first).to_be_visible()
    ask.fill("Cancel my Lumio Plus subscription")
    ask.press("Enter")

def test_the_shop_runs_with_the_stack_and_the_gateway_reaches_it(actions_stack: Stack) -> None:
    assert "shop" in [p.name for p in actions_stack.processes]
    assert {o["order_id"] for o in shop_orders(actions_stack, "local-customer")} >= {"L-300001", "L-300002"}


def test_where_is_my_order_is_answered_from_the_shop_citing_the_record(actions_stack: Stack) -> None:
    orders = {o["order_id"]: o for o in shop_orders(actions_stack, "local-customer")}
    session_id, first = asyncio.run(turn(actions_stack, "Where is my order?"))
    assert first.answer_path == chat_pb2.ANSWER_PATH_ACTION and first.action.action == "order_status"
    if first.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY:  # several orders: the customer picks one
        assert {o.value for o in first.action.options} == set(orders)
        _, first = asyncio.run(turn(actions_stack, first.action.options[0].value, session_id))
    assert first.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and first.grounded
    [record] = first.action.records
    order_id = record.record_id
    assert order_id in orders and orders[order_id]["status"] in first.answer.lower()
    assert [c.title for c in first.citations] == [record.marker]


def shop_subscription_status(stack: Stack, subscription_id: str, customer_id: str = "local-customer") -> str:
    request = urllib.request.Request(f"{stack.shop_url()}/v1/subscriptions", headers={
        "Authorization": f"Bearer {stack.shop_service_token}", "X-Customer-Id": customer_id,
    })
    with urllib.request.urlopen(request, timeout=10) as response:
        subscriptions = json.load(response)["subscriptions"]
    return str(next(s["status"] for s in subscriptions if s["subscription_id"] == subscription_id))


def test_the_customer_page_offers_the_customers_orders_and_yes_or_no_as_buttons(actions_stack: Stack) -> None:
    """In a real browser, before the test below cancels the subscription: the page's buttons send
    the chosen order and the "no" that keeps the subscription."""
    from playwright.sync_api import expect, sync_playwright

    from tests.stack.test_widget import launch

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"http://{actions_stack.address('ui')}")
        ask = page.get_by_placeholder("Ask about your Lumio lights")
        order_then_cancel(page, ask, shipped="L-300002", other="L-300001", tracking="1Z999AA10123456785")
        expect(page.get_by_text("Cancel subscription S-2004?").first).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="No", exact=True).click()
        expect(page.get_by_text("change anything").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "customer-actions.png"), full_page=True)
        browser.close()
    assert shop_subscription_status(actions_stack, "S-2004") == "active"


def test_the_shop_killed_mid_action_gets_an_honest_failure_and_the_session_goes_on(actions_stack: Stack) -> None:
    """The shop process dies after the change was proposed, before the customer's yes (before the
    test below cancels the subscription)."""
    session_id, proposal = asyncio.run(turn(actions_stack, "Cancel my Lumio Plus subscription"))
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM and "S-2004" in proposal.answer
    actions_stack.kill("shop")
    try:
        _, failed = asyncio.run(turn(actions_stack, "yes", session_id))
        assert failed.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR and "nothing was changed" in failed.answer
        assert not failed.grounded and not failed.citations and "[subscription" not in failed.answer
        # The session goes on while the shop is down: a question is a help-center turn (this
        # stack ingests no help center, so the "not covered" reply), not another failure.
        _, meanwhile = asyncio.run(turn(actions_stack, "How do I reset my password?", session_id))
        assert meanwhile.answer and meanwhile.answer_path != chat_pb2.ANSWER_PATH_ACTION and not meanwhile.HasField("action")
    finally:
        actions_stack.restart("shop")
    assert actions_stack.process("gateway").popen.poll() is None
    assert shop_subscription_status(actions_stack, "S-2004") == "active"
    # The failed change is not waiting for another yes, nor said to have run.
    _, again = asyncio.run(turn(actions_stack, "yes", session_id))
    assert again.action.kind == chat_pb2.ACTION_REPLY_KIND_ERROR and "nothing waiting" in again.answer
    _, orders = asyncio.run(turn(actions_stack, "Where is my order?", session_id))
    assert {o.value for o in orders.action.options} == {o["order_id"] for o in shop_orders(actions_stack, "local-customer")}
    assert shop_subscription_status(actions_stack, "S-2004") == "active"


def test_a_change_asks_to_confirm_and_runs_only_on_yes(actions_stack: Stack) -> None:
    session_id, proposal = asyncio.run(turn(actions_stack, "Cancel my Lumio Plus subscription"))
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM and proposal.action.action == "cancel_subscription"
    assert "S-2004" in proposal.answer and shop_subscription_status(actions_stack, "S-2004") == "active"
    _, done = asyncio.run(turn(actions_stack, "yes", session_id))
    assert done.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT and "[subscription S-2004]" in done.answer
    assert shop_subscription_status(actions_stack, "S-2004") == "cancelled"


def identity(customer_id: str) -> str:
    """What the company's server hands its signed-in visitor's page."""
    return issue_identity_token(customer_id, IDENTITY_SECRET)


def web_url(stack: Stack) -> str:
    return f"http://{stack.host}:{stack.ports.web}"


def sse_result(response: httpx.Response) -> tuple[str, dict]:
    """The session id and the result of a whole Server-Sent Events chat turn."""
    session_id, result = "", None
    event = "message"
    for line in response.text.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
            session_id = data["session"]["sessionId"] if event == "session" else session_id
            result = data["result"] if event == "result" else result
    assert result is not None, response.text
    return session_id, result


def test_over_http_and_the_openai_endpoint_the_token_names_the_customer(actions_stack: Stack) -> None:
    """An integrator's server acting for its signed-in customers with the publishable key and
    their identity tokens: c-ben over the chat route's Server-Sent Events, c-jiwoo through the
    official `openai` package; a forged token is refused and changes nothing."""
    import openai

    widget_key = {"authorization": f"Bearer {actions_stack.key('publishable')}"}
    ben = identity("c-ben")
    with httpx.Client(base_url=web_url(actions_stack), headers=widget_key, timeout=120) as http:
        def chat(message: str, session_id: str = "", token: str = ben) -> tuple[str, dict]:
            response = http.post("/v1/chat", json={"message": message, "sessionId": session_id, "identityToken": token})
            assert response.status_code == 200, response.text
            return sse_result(response)

        session_id, lookup = chat("Where is my order?")
        orders = {o["order_id"]: o for o in shop_orders(actions_stack, "c-ben")}
        assert lookup["action"]["kind"] == "ACTION_REPLY_KIND_CLARIFY"
        assert {o["value"] for o in lookup["action"]["options"]} == set(orders)
        _, answer = chat("L-100002", session_id)
        assert [r["marker"] for r in answer["action"]["records"]] == ["[order L-100002]"]
        assert orders["L-100002"]["status"] in answer["answer"].lower() and answer["grounded"]

        _, proposal = chat("Cancel my Lumio Plus subscription", session_id)
        assert proposal["action"]["kind"] == "ACTION_REPLY_KIND_CONFIRM" and "S-2002" in proposal["answer"]
        forged = issue_identity_token("c-ben", "not-the-company-secret-" + "x" * 16)
        refused = http.post("/v1/chat", json={"message": "yes", "sessionId": session_id, "identityToken": forged})
        assert refused.status_code == 403 and "signature is wrong" in refused.json()["error"]["message"]
        assert shop_subscription_status(actions_stack, "S-2002", "c-ben") == "active"
        _, done = chat("yes", session_id)
        assert done["action"]["kind"] == "ACTION_REPLY_KIND_RESULT" and "[subscription S-2002]" in done["answer"]
        assert shop_subscription_status(actions_stack, "S-2002", "c-ben") == "cancelled"

    async def through_openai() -> None:
        client = openai.AsyncOpenAI(base_url=f"{web_url(actions_stack)}/v1", api_key=actions_stack.key("publishable"), max_retries=0)
        jiwoo = {"identity_token": identity("c-jiwoo")}
        try:
            lookup = await client.chat.completions.create(
                model="supportbot", messages=[{"role": "user", "content": "What's the status of order L-200101?"}], extra_body=jiwoo)
            extra = lookup.model_extra or {}
            assert extra["supportbot"]["action"]["records"][0]["marker"] == "[order L-200101]"
            status = next(o["status"] for o in shop_orders(actions_stack, "c-jiwoo") if o["order_id"] == "L-200101")
            assert status in (lookup.choices[0].message.content or "").lower()
            proposal = await client.chat.completions.create(
                model="supportbot", messages=[{"role": "user", "content": "Cancel my Lumio Plus subscription"}], extra_body=jiwoo)
            extra = proposal.model_extra or {}
            assert extra["supportbot"]["action"]["kind"] == "confirm" and "S-2003" in (proposal.choices[0].message.content or "")
            assert shop_subscription_status(actions_stack, "S-2003", "c-jiwoo") == "active"
            done = await client.chat.completions.create(
                model="supportbot", messages=[{"role": "user", "content": "yes"}],
                extra_body={**jiwoo, "session_id": extra["supportbot"]["session_id"]})
            assert (done.model_extra or {})["supportbot"]["action"]["kind"] == "result"
            assert "[subscription S-2003]" in (done.choices[0].message.content or "")
        finally:
            await client.close()

    asyncio.run(through_openai())
    assert shop_subscription_status(actions_stack, "S-2003", "c-jiwoo") == "cancelled"


def test_the_widget_on_a_host_page_acts_for_the_customer_its_token_names(actions_stack: Stack) -> None:
    """A company's page (served at an origin the widget key allows) puts the widget on with the
    identity token its server signed for c-ana: her orders as buttons, the record cited, the
    change's Yes and No buttons back after a page reload, the change confirmed with Yes and made
    once; a forged token later is refused."""
    from playwright.sync_api import expect, sync_playwright

    from tests.stack.test_widget import launch

    origin = f"http://localhost:{actions_stack.ports.web}"
    host_page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Your Lumio account</title></head>"
        "<body><h1>Your Lumio account</h1><p>Signed in as Ana.</p>"
        f'<script src="{origin}/widget.js" data-key="{actions_stack.key("publishable")}" '
        f'data-identity-token="{identity("c-ana")}" defer></script></body></html>'
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.route(f"{origin}/account", lambda route: route.fulfill(status=200, content_type="text/html", body=host_page))
        page.goto(f"{origin}/account")
        page.get_by_role("button", name="Chat with us").click()
        widget = page.locator("[data-supportbot]")
        ask = page.get_by_role("textbox", name="Your question")
        order_then_cancel(widget, ask, shipped="L-104233", other="L-104240", tracking="1Z999AA10123456784")
        expect(widget.get_by_text("S-2001").first).to_be_visible(timeout=60_000)
        assert shop_subscription_status(actions_stack, "S-2001", "c-ana") == "active"
        # The page reloaded while the change waits: the conversation comes back with Yes and No.
        page.reload()
        if not ask.is_visible():
            page.get_by_role("button", name="Chat with us").click()
        expect(widget.get_by_text("S-2001").first).to_be_visible(timeout=60_000)
        expect(widget.get_by_role("button", name="No", exact=True)).to_be_enabled(timeout=60_000)
        widget.get_by_role("button", name="Yes", exact=True).click()
        expect(widget.get_by_text("[subscription S-2001]").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "widget-actions.png"))
        assert shop_subscription_status(actions_stack, "S-2001", "c-ana") == "cancelled"

        # The page's token replaced by a forged one: refused with a message, nothing stored.
        session_id = page.evaluate("Object.entries(localStorage).find(([k]) => k.startsWith('supportbot:'))[1]")
        turns = len(httpx.get(f"{origin}/v1/sessions/{session_id}", headers={"authorization": f"Bearer {actions_stack.key('publishable')}"},
                              timeout=30).json()["session"]["turns"])
        forged = issue_identity_token("c-ana", "not-the-company-secret-" + "x" * 16)
        page.evaluate("token => window.supportbotWidget.setIdentityToken(token)", forged)
        ask.fill("Where is my order?")
        ask.press("Enter")
        expect(widget.get_by_text("signature is wrong").first).to_be_visible(timeout=60_000)
        after = httpx.get(f"{origin}/v1/sessions/{session_id}", headers={"authorization": f"Bearer {actions_stack.key('publishable')}"},
                          timeout=30).json()["session"]["turns"]
        assert len(after) == turns
        browser.close()


def test_the_widget_demo_signs_in_the_demo_customer_chosen(actions_stack: Stack) -> None:
    """`supportbot up --actions`, then /widget-demo?customer=c-ben in a browser: the page the web
    service signed for c-ben offers c-ben's own orders, none of another customer's, and the one
    chosen is answered from its record."""
    from playwright.sync_api import expect, sync_playwright

    from tests.stack.test_widget import launch

    ben = [o["order_id"] for o in shop_orders(actions_stack, "c-ben")]
    ana = [o["order_id"] for o in shop_orders(actions_stack, "c-ana")]
    assert ben and ana and not set(ben) & set(ana)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{web_url(actions_stack)}/widget-demo?customer=c-ben")
        expect(page.get_by_text("Signed in as")).to_contain_text("c-ben")
        page.get_by_role("button", name="Chat with us").click()
        widget = page.locator("[data-supportbot]")
        ask = page.get_by_role("textbox", name="Your question")
        ask.fill("Where is my order?")
        ask.press("Enter")
        for order_id in ben:
            expect(widget.get_by_role("button", name=re.compile(order_id))).to_be_visible(timeout=120_000)
        for order_id in ana:
            expect(widget.get_by_role("button", name=re.compile(order_id))).to_have_count(0)
        widget.get_by_role("button", name=re.compile(ben[0])).click()
        expect(widget.get_by_text(f"[order {ben[0]}]").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "widget-demo-signed-in.png"))
        browser.close()


def test_an_agent_approves_the_proposed_change_in_the_panel_for_the_conversations_customer(actions_stack: Stack) -> None:
    """The customer asks for an address change, answers the bot's question, then asks for a
    person; the agent's panel shows the proposal and the order's record, and one click on Approve
    changes the shop's record of that customer's order, recorded as the agent's."""
    from playwright.sync_api import expect, sync_playwright

    from tests.stack.test_widget import launch

    new_address = "42 Elm Street, Springfield 12345"
    session_id, asked = asyncio.run(turn(actions_stack, "Change the delivery address of my open order"))
    assert asked.action.kind == chat_pb2.ACTION_REPLY_KIND_CLARIFY and asked.action.action == "change_delivery_address"
    _, proposal = asyncio.run(turn(actions_stack, new_address, session_id))
    assert proposal.action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM and "L-300001" in proposal.answer

    async def hand_off() -> chat_pb2.Session:
        async with SupportbotClient(actions_stack.address("gateway"), api_key=actions_stack.key("customer")) as customer:
            return (await customer.chat_stub.RequestHandoff(chat_pb2.RequestHandoffRequest(session_id=session_id),
                                                             metadata=customer.metadata)).session

    asyncio.run(hand_off())
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://{actions_stack.address('ui')}/agent")
        page.get_by_role("button", name=re.compile("Change the delivery address")).first.click(timeout=60_000)
        # The case panel shows the proposal as plain text (stText); the conversation beside it
        # may show the bot's question with the same words as markdown.
        proposed = page.get_by_test_id("stText").filter(has_text=f'Change the delivery address of order L-300001 to "{new_address}"')
        expect(proposed).to_be_visible(timeout=30_000)
        expect(page.get_by_text("[order L-300001]").first).to_be_visible()
        assert next(o for o in shop_orders(actions_stack, "local-customer") if o["order_id"] == "L-300001")["shipping_address"] != new_address
        page.get_by_role("button", name="Approve for the customer").click()
        expect(page.get_by_text(f"Approved. Done: order L-300001 will be delivered to {new_address}").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "agent-approves-action.png"), full_page=True)
        browser.close()
    assert next(o for o in shop_orders(actions_stack, "local-customer") if o["order_id"] == "L-300001")["shipping_address"] == new_address

    async def conversation() -> chat_pb2.Session:
        async with SupportbotClient(actions_stack.address("gateway"), api_key=actions_stack.key("customer")) as customer:
            return (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id),
                                                         metadata=customer.metadata)).session

    last = asyncio.run(conversation()).turns[-1]
    assert last.approved_by and "[order L-300001]" in last.content


def test_a_case_question_and_a_policy_question_in_one_message_are_answered_each_with_its_citation(actions_stack: Stack) -> None:
    """With the real routing models: "where is my order ... and can I still return it?" gets the
    shop's record of the order, cited, and the help center's answer to the return question (the
    sample help center ingested here), its articles numbered first and the record after them."""
    from supportbot.client import ingest_quietly
    from supportbot.sample import HELPCENTER

    asyncio.run(ingest_quietly([HELPCENTER], "", actions_stack.address("retriever"), actions_stack.key("admin")))
    order = {o["order_id"]: o for o in shop_orders(actions_stack, "local-customer")}["L-300002"]
    _, result = asyncio.run(turn(actions_stack, "Where is my order L-300002 and can I still return it?"))
    assert result.action.action == "order_status" and result.action.kind == chat_pb2.ACTION_REPLY_KIND_RESULT
    reply, _, policy = result.answer.partition("\n\n")
    assert "[order L-300002]" in reply and order["status"] in reply.lower() and "[order" not in policy
    assert result.answer_path == chat_pb2.ANSWER_PATH_EXTRACTIVE and result.rewritten_question == "can I still return it?"
    assert result.grounded and "return" in policy.lower()
    [record] = [c for c in result.citations if c.title == "[order L-300002]"]
    articles = [c for c in result.citations if c.title != record.title]
    assert articles and record.index == max(c.index for c in articles) + 1
    assert len({c.index for c in result.citations}) == len(result.citations)
    # A message that must stay whole is routed whole, as before.
    _, whole = asyncio.run(turn(actions_stack, "If I cancel my Lumio Plus subscription, do I get a refund for this month?"))
    assert not whole.HasField("action") and whole.answer_path != chat_pb2.ANSWER_PATH_ACTION
