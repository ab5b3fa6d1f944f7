"""The Streamlit UI: page logic with Streamlit's AppTest against the running stack, and an
end-to-end run in a real headless Chromium with screenshots of both pages."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from supportbot.client import SupportbotClient
from supportbot.v1 import chat_pb2
from tests.conftest import TEST_KEYS
from tests.paths import ARTIFACTS, REPO

pytestmark = pytest.mark.stack
UI = REPO / "ui"


@pytest.fixture()
def ui_env(stack, monkeypatch):  # type: ignore[no-untyped-def]
    import ui.gateway

    monkeypatch.setattr(ui.gateway, "GATEWAY", stack.address("gateway"))
    monkeypatch.setattr(ui.gateway, "CUSTOMER_KEY", TEST_KEYS["customer"]["key"])
    monkeypatch.setattr(ui.gateway, "AGENT_KEY", TEST_KEYS["agent"]["key"])
    ui.gateway.stub.clear()
    yield
    ui.gateway.stub.clear()


def test_customer_page_streams_an_answer_with_sources(stack, sample_ingested, ui_env) -> None:  # type: ignore[no-untyped-def]
    app = AppTest.from_file(str(UI / "views" / "customer.py"), default_timeout=240).run()
    assert not app.exception
    app.chat_input[0].set_value("How do I reset my password?").run()
    assert not app.exception
    session_id = app.query_params["session"][0] if isinstance(app.query_params["session"], list) else app.query_params["session"]
    assert session_id.startswith("s_")
    messages = [m.markdown[-1].value for m in app.chat_message if m.markdown]
    assert messages[0] == "How do I reset my password?" and messages[1]
    assert any("Reset your password" in e.label for e in app.expander)
    app.button(key=[b.key for b in app.button if b.key and b.key.startswith("up-")][0]).click().run()
    assert not app.exception


def test_the_customer_page_in_korean(stack, korean_ingested, ui_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SUPPORTBOT_UI_LANGUAGE=ko (a Korean browser does the same with "auto") and the Korean
    help center as the collection: the page's words and the answer are Korean."""
    import ui.gateway
    from ui.strings import STRINGS

    monkeypatch.setenv("SUPPORTBOT_UI_LANGUAGE", "ko")
    monkeypatch.setattr(ui.gateway, "COLLECTION", "helpcenter-ko")
    app = AppTest.from_file(str(UI / "views" / "customer.py"), default_timeout=240).run()
    assert not app.exception
    assert app.title[0].value == STRINGS["ko"]["customer_title"]
    assert [b.label for b in app.button][:2] == [STRINGS["ko"]["new_conversation"], STRINGS["ko"]["talk_to_person"]]
    app.chat_input[0].set_value("환불 언제 들어와요?").run()
    assert not app.exception
    messages = [m.markdown[0].value for m in app.chat_message if m.markdown]
    assert messages[0] == "환불 언제 들어와요?" and "영업일" in messages[1]
    assert any("환불은 언제 받나요?" in e.label for e in app.expander)
    assert STRINGS["ko"]["path_quoted"] in [c.value for c in app.caption]


def test_customer_page_explains_when_the_service_is_down(stack, ui_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ui.gateway

    monkeypatch.setattr(ui.gateway, "GATEWAY", "127.0.0.1:9")  # nothing listens there
    ui.gateway.stub.clear()
    app = AppTest.from_file(str(UI / "views" / "customer.py"), default_timeout=60).run()
    app.chat_input[0].set_value("hello").run()
    assert not app.exception
    from ui.strings import STRINGS

    assert [n.value for n in app.info] == [STRINGS["en"]["service_down"]]


async def test_agent_page_shows_the_queue_and_sends_a_reply(stack, sample_ingested, ui_env) -> None:  # type: ignore[no-untyped-def]
    async with SupportbotClient(stack.address("gateway"), api_key=TEST_KEYS["customer"]["key"]) as customer:
        session_id, _, _ = await customer.ask(
            "I need to speak to a real person about my order ![pixel](http://tracker.invalid/p.png)"
        )
    app = AppTest.from_file(str(UI / "views" / "agent.py"), default_timeout=240).run()
    assert not app.exception
    assert any(b.key == f"open-{session_id}" for b in app.button)
    app.button(key=f"open-{session_id}").click().run()
    assert app.session_state.selected == session_id
    # The customer's words are inert text: a markdown image stays characters, never a request.
    assert any("![pixel](http://tracker.invalid/p.png)" in t.value for m in app.chat_message for t in m.text)
    assert not any("tracker.invalid" in md.value for m in app.chat_message for md in m.markdown)
    app.button[[b.label for b in app.button].index("Take over")].click().run()
    app.text_area(key="reply").set_value("Hi, this is Sam from Lumio. Let me check your order.").run()
    app.button[[b.label for b in app.button].index("Send")].click().run()
    assert not app.exception
    async with SupportbotClient(stack.address("gateway"), api_key=TEST_KEYS["customer"]["key"]) as customer:
        session = (await customer.chat_stub.GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer.metadata)).session
    assert session.status == chat_pb2.SESSION_STATUS_WITH_AGENT
    assert session.turns[-1].content == "Hi, this is Sam from Lumio. Let me check your order."


def test_end_to_end_in_a_real_browser(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    browser_path = shutil.which("chromium")
    assert browser_path, "Debian's chromium is missing: `make install` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://{stack.address('ui')}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        customer = browser.new_page(viewport={"width": 1280, "height": 900})
        customer.goto(base)
        customer.get_by_placeholder("Ask about your Lumio lights").fill("How long does standard shipping take?")
        customer.keyboard.press("Enter")
        expect(customer.get_by_text("[1] Shipping options and delivery times")).to_be_visible(timeout=180_000)
        customer.get_by_role("button", name="Talk to a person").click()
        expect(customer.get_by_text("a person from our support team will join")).to_be_visible(timeout=30_000)
        customer.screenshot(path=str(ARTIFACTS / "customer-chat.png"), full_page=True)

        agent = browser.new_page(viewport={"width": 1280, "height": 900})
        agent.goto(f"{base}/agent")
        agent.get_by_role("button", name="How long does standard shipping take").first.click()
        expect(agent.get_by_text("waiting for an agent")).to_be_visible(timeout=30_000)
        agent.get_by_label("Reply to the customer").fill("Hi, I'm Sam. Standard shipping takes 3-5 business days.")
        agent.get_by_role("button", name="Send").click()
        expect(agent.get_by_text("with an agent")).to_be_visible(timeout=30_000)
        agent.screenshot(path=str(ARTIFACTS / "agent-assist.png"), full_page=True)

        # A customer who asks for a person is acknowledged and queued at once; the agent who opens
        # the conversation sees drafts by themselves, each citing the article it rests on.
        damaged = browser.new_page(viewport={"width": 1280, "height": 900})
        damaged.goto(base)
        damaged.get_by_placeholder("Ask about your Lumio lights").fill("My hub arrived with a cracked case, I want to talk to a person")
        damaged.keyboard.press("Enter")
        expect(damaged.get_by_text("asked a person from our support team")).to_be_visible(timeout=60_000)
        # Drafting runs off the page's run, so the queue keeps refreshing while the first
        # conversation's drafts are written (minutes on a busy 2-core machine).
        agent.get_by_role("button", name="My hub arrived with a cracked case").first.click(timeout=60_000)
        # The previous conversation's drafts are gone at once, not left on screen as stale elements.
        expect(agent.get_by_text("Draft 1")).to_have_count(0, timeout=10_000)
        expect(agent.get_by_text("My order arrived damaged").first).to_be_visible(timeout=240_000)
        expect(agent.get_by_text("Draft 1")).to_be_visible(timeout=30_000)
        expect(agent.get_by_text("Deploy")).to_have_count(0)
        agent.screenshot(path=str(ARTIFACTS / "agent-assist-drafts.png"), full_page=True)

        expect(customer.get_by_text("Hi, I'm Sam. Standard shipping takes 3-5 business days.")).to_be_visible(timeout=30_000)
        customer.screenshot(path=str(ARTIFACTS / "customer-chat-with-agent.png"), full_page=True)
        browser.close()
