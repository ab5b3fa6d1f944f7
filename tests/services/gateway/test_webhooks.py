"""Webhooks on the real gateway servicer and a real Valkey, delivered to a local HTTP receiver: the
signature verifies, a 500 is retried, the last failure goes to the dead-letter list, and an event a
stopped gateway had taken is delivered by the next one."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redis.asyncio import Redis

from services.gateway import webhooks
from services.gateway.interaction_log import InteractionLog
from services.gateway.server import build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import SIGNATURE_HEADER, WebhookDispatcher, sign, verify_signature
from supportbot.v1 import chat_pb2
from tests.fakes import FakeGenerator, FakeRetriever

SECRET = "whsec_test"


class Receiver:
    """A helpdesk's endpoint: answers with the scripted statuses (then 200), records what came."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append({"status": status, "body": body, "headers": dict(self.headers)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/supportbot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received if r["status"] == 200]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def settings_for(receiver: Receiver, tmp_path, **changes) -> GatewaySettings:  # type: ignore[no-untyped-def]
    return GatewaySettings(**{
        "data_dir": tmp_path, "auth_enabled": False, "answer_mode": "extractive", "webhook_urls": [receiver.url],
        "webhook_secret": SECRET, "webhook_backoff_s": 0.05, "webhook_claim_after_s": 0.3, **changes,
    })


async def until(condition, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def test_signatures_verify_and_refuse_tampering() -> None:
    body = b'{"type": "session.handoff"}'
    header = sign(SECRET, 1_800_000_000, body)
    assert verify_signature(SECRET, header, body, now=1_800_000_010)
    assert not verify_signature(SECRET, header, body + b" ", now=1_800_000_010)  # body changed
    assert not verify_signature("other", header, body, now=1_800_000_010)  # wrong secret
    assert not verify_signature(SECRET, header, body, now=1_800_000_000 + 3600)  # a replay, an hour on
    assert not verify_signature(SECRET, "v1=abc", body)


async def test_handoff_closed_and_thumbs_down_reach_the_helpdesk_signed(redis: Redis, receiver: Receiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(receiver, tmp_path)
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), FakeRetriever(), FakeGenerator())
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(WebhookDispatcher(redis, settings.webhooks).run(stop))
    receiver.statuses = [500]  # the helpdesk fails once: the event comes again
    try:
        session_id, turn_id = "", ""
        async for response in servicer.Chat(chat_pb2.ChatRequest(message="How do I reset my password?"), None):
            session_id = response.session.session_id or session_id
            turn_id = response.result.turn_id or turn_id
        await servicer.SubmitFeedback(chat_pb2.SubmitFeedbackRequest(
            session_id=session_id, turn_id=turn_id, rating=-1, comment="that is not it"), None)
        await servicer.CloseSession(chat_pb2.CloseSessionRequest(session_id=session_id), None)
        await until(lambda: len(receiver.delivered()) == 3)
    finally:
        stop.set()
        await dispatcher
    assert receiver.received[0]["status"] == 500
    kinds = sorted(event["type"] for event in receiver.delivered())
    assert kinds == ["feedback.negative", "session.closed", "session.handoff"]
    for record in (r for r in receiver.received if r["status"] == 200):
        assert verify_signature(SECRET, record["headers"][SIGNATURE_HEADER], record["body"])
    handoff = next(e for e in receiver.delivered() if e["type"] == "session.handoff")
    assert handoff["session"]["status"] == "waiting_for_agent" and handoff["session"]["handoff_reason"]
    assert [t["role"] for t in handoff["session"]["turns"]] == ["customer", "assistant"]
    assert handoff["session"]["turns"][1]["sources"][0]["document_id"] == "reset-password"
    assert handoff["reply_path"] == f"/v1/sessions/{session_id}/replies"
    negative = next(e for e in receiver.delivered() if e["type"] == "feedback.negative")
    assert negative["feedback"] == {"turn_id": turn_id, "rating": -1, "comment": "that is not it"}
    assert await redis.xlen(settings.webhooks.webhook_stream) == 0  # delivered events leave the stream


async def test_the_last_failure_is_dead_lettered(redis: Redis, receiver: Receiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(receiver, tmp_path, webhook_max_attempts=3)
    receiver.statuses = [500, 503, 500]
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), FakeRetriever(), FakeGenerator())
    created = await servicer.CreateSession(chat_pb2.CreateSessionRequest(), None)
    await servicer.RequestHandoff(chat_pb2.RequestHandoffRequest(session_id=created.session.session_id), None)
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(WebhookDispatcher(redis, settings.webhooks).run(stop))
    try:
        await until(lambda: len(receiver.received) == 3)
        for _ in range(100):
            if await redis.llen(settings.webhooks.webhook_dead_letters):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await dispatcher
    [dead] = [json.loads(raw) for raw in await redis.lrange(settings.webhooks.webhook_dead_letters, 0, -1)]
    assert dead["attempts"] == 3 and dead["last_error"] == "HTTP 500" and dead["event"]["type"] == "session.handoff"
    assert dead["url"] == receiver.url


async def test_an_event_a_stopped_gateway_had_taken_is_delivered_by_the_next(redis: Redis, receiver: Receiver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(receiver, tmp_path, webhook_backoff_s=60)
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), FakeRetriever(), FakeGenerator())
    created = await servicer.CreateSession(chat_pb2.CreateSessionRequest(), None)
    await servicer.CloseSession(chat_pb2.CloseSessionRequest(session_id=created.session.session_id), None)
    receiver.statuses = [500]
    stop = asyncio.Event()
    first = asyncio.create_task(WebhookDispatcher(redis, settings.webhooks).run(stop))
    await until(lambda: len(receiver.received) == 1)  # taken, failed, waiting out a long backoff
    first.cancel()  # the gateway stops (or dies)
    with pytest.raises(asyncio.CancelledError):
        await first
    restarted = asyncio.create_task(WebhookDispatcher(redis, settings.webhooks).run(stop))
    try:
        await until(lambda: len(receiver.delivered()) == 1)
    finally:
        stop.set()
        await restarted
    assert receiver.delivered()[0]["type"] == webhooks.CLOSED
