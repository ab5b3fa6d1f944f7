"""The embeddable chat widget in a real headless Chromium on the stack's demo page: ask, watch the
answer stream in with its sources as links, rate it, reload and find the conversation again, ask
for a person and see the agent's reply arrive live; screenshots saved. Keys and origins: a wrong
origin and a secret key in a web page are refused."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import httpx
import pytest

from supportbot.v1 import chat_pb2, chat_pb2_grpc
from tests.conftest import TEST_KEYS, client_as
from tests.paths import ARTIFACTS

pytestmark = pytest.mark.stack
QUESTION = {"message": "How do I reset my password?", "answerMode": "ANSWER_MODE_EXTRACTIVE"}


def launch(playwright):  # type: ignore[no-untyped-def]
    browser_path = shutil.which("chromium")
    assert browser_path, "Debian's chromium is missing: `make install` installs it"
    return playwright.chromium.launch(
        executable_path=browser_path,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )


def test_the_widget_on_a_page(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    demo = f"http://127.0.0.1:{stack.ports.web}/widget-demo"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(demo)
        # Keyboard only: the bubble is a button, the panel takes the focus, Enter sends.
        page.get_by_role("button", name="Chat with us").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("dialog")).to_be_visible()
        page.keyboard.type("How long does standard shipping take?")
        page.keyboard.press("Enter")
        source = page.get_by_role("link", name="Shipping options and delivery times")
        expect(source.first).to_be_visible(timeout=180_000)
        assert source.first.get_attribute("href")
        answer = page.locator("[data-supportbot]").locator(".assistant").last
        assert "[1]" in answer.inner_text()
        page.get_by_role("button", name="This answer helped").click()
        expect(page.get_by_role("button", name="This answer helped")).to_have_attribute("aria-pressed", "true")
        page.screenshot(path=str(ARTIFACTS / "widget-answer.png"))

        # A reload keeps the conversation (its id is in localStorage; the turns come from the API).
        page.reload()
        page.get_by_role("button", name="Chat with us").click()
        expect(page.locator("[data-supportbot]").locator(".customer")).to_have_text(["How long does standard shipping take?"])
        expect(source.first).to_be_visible()
        session_id = page.evaluate("Object.entries(localStorage).find(([k]) => k.startsWith('supportbot:'))[1]")

        # A person is asked for; the agent's reply arrives in the open widget by itself.
        page.get_by_role("button", name="Talk to a person").click()
        expect(page.get_by_text("A person from our support team will join")).to_be_visible(timeout=30_000)

        page.wait_for_timeout(500)  # the widget has opened its watch stream
        # The agent, over the blocking gRPC API (Playwright's sync API owns this thread's event loop).
        agent = (("x-api-key", TEST_KEYS["agent"]["key"]),)
        with grpc.insecure_channel(stack.address("gateway")) as channel:
            gateway = chat_pb2_grpc.ChatServiceStub(channel)
            gateway.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=session_id), metadata=agent)
            gateway.SendAgentReply(chat_pb2.SendAgentReplyRequest(
                session_id=session_id, message="Hi, Sam here: standard shipping takes 3-5 days."), metadata=agent)
        expect(page.get_by_text("Hi, Sam here: standard shipping takes 3-5 days.")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "widget-handoff.png"))
        browser.close()


def test_the_widget_in_korean(stack, korean_ingested) -> None:  # type: ignore[no-untyped-def]
    """A Korean browser: the widget's own words in Korean, a Korean question answered from the
    Korean help center with its source, and Hangul rendered (a Korean font; see the screenshot)."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    demo = f"http://127.0.0.1:{stack.ports.web}/widget-demo?collection=helpcenter-ko"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 800}, locale="ko-KR")
        page.goto(demo)
        page.get_by_role("button", name="채팅 상담").click()
        expect(page.get_by_role("dialog", name="Lumio support")).to_be_visible()
        expect(page.get_by_role("button", name="상담원 연결")).to_be_visible()
        page.get_by_role("textbox", name="질문").fill("비밀번호를 잊어버렸어요")
        page.get_by_role("button", name="보내기").click()
        source = page.get_by_role("link", name="비밀번호 재설정하기")
        expect(source.first).to_be_visible(timeout=60_000)
        answer = page.locator("[data-supportbot]").locator(".assistant").last
        assert "비밀번호" in answer.inner_text() and "[" in answer.inner_text()
        expect(page.get_by_role("button", name="도움이 됐어요")).to_be_visible()
        # Hangul needs a Korean font on the machine (`make install` adds Debian's fonts-nanum);
        # test-artifacts/widget-korean.png shows it rendered.
        fonts = subprocess.run(["fc-list", ":lang=ko", "family"], capture_output=True, text=True).stdout
        assert fonts.strip(), "no Korean font: `make install` installs fonts-nanum"
        page.screenshot(path=str(ARTIFACTS / "widget-korean.png"))
        browser.close()
    # data-lang overrides the browser; a bad collection name is refused.
    english = httpx.get(f"http://127.0.0.1:{stack.ports.web}/widget-demo?lang=ko")
    assert 'data-lang="ko"' in english.text and "Lumio 고객센터" in english.text
    assert httpx.get(f"http://127.0.0.1:{stack.ports.web}/widget-demo?collection=Bad Name").status_code == 400


async def test_keys_and_origins_for_web_pages(stack, sample_ingested) -> None:  # type: ignore[no-untyped-def]
    web = f"http://127.0.0.1:{stack.ports.web}"
    own_origin = {"origin": web}
    publishable = {"authorization": f"Bearer {TEST_KEYS['publishable']['key']}"}
    async with httpx.AsyncClient(base_url=web, timeout=120) as http:
        assert (await http.post("/v1/chat", json=QUESTION, headers={**publishable, **own_origin})).status_code == 200
        # Another site's page may not use this site's publishable key.
        foreign = await http.post("/v1/chat", json=QUESTION, headers={**publishable, "origin": "https://evil.example"})
        assert foreign.status_code == 403 and "may not be used from https://evil.example" in foreign.json()["error"]["message"]
        preflight = await http.options("/v1/chat", headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
        assert preflight.status_code == 400
        # A secret (customer) key in a web page is refused, even on the right origin.
        secret = await http.post("/v1/chat", json=QUESTION, headers={"authorization": f"Bearer {TEST_KEYS['customer']['key']}", **own_origin})
        assert secret.status_code == 403 and "publishable key" in secret.json()["error"]["message"]
        # A publishable key only chats: no agent queue, no other collection, no search.
        queue = await http.get("/v1/sessions", headers={**publishable, **own_origin})
        assert queue.status_code == 403
        other = await http.post("/v1/chat", json={**QUESTION, "collection": "other-tenant-kb"}, headers={**publishable, **own_origin})
        assert other.status_code == 403
    async with client_as(stack, "publishable") as widget_key:
        with pytest.raises(Exception) as error:
            await widget_key.search("password")
        assert "PERMISSION_DENIED" in str(error.value)
