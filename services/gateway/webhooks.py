"""Webhooks for the helpdesk: when a conversation is handed to a person, when it is closed, and when
a customer rates an answer down, a signed JSON event with the transcript and its sources is POSTed
to each configured URL.

Delivery is durable and at least once: events are written to a Redis stream as the session
changes (`WebhookOutbox`), and a consumer group delivers them (`WebhookDispatcher`, one consumer
per gateway replica): retried with exponential backoff, acknowledged on a 2xx, moved to a
dead-letter list after the last attempt; an event a stopped gateway had not finished is claimed by
the next one. Receivers deduplicate by the event id.

Signature (as Stripe's): `X-Supportbot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the shared secret>`; `verify_signature` checks one, with a tolerance for replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.gateway.redis_connection import group_entries, stream_entries
from services.gateway.sessions import SessionRecord
from services.gateway.settings import WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Supportbot-Signature"
HANDOFF, CLOSED, THUMBS_DOWN = "session.handoff", "session.closed", "feedback.negative"
EVENT_TYPES = (HANDOFF, CLOSED, THUMBS_DOWN)
GROUP = "dispatchers"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: float = 300, now: float | None = None) -> bool:
    """What a receiver runs: the signature matches the body and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts['v1']}")


def transcript(session: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "status": str(session.status),
        "collection": session.collection,
        "channel": session.channel,
        "customer_id": session.customer_id,
        "handoff_reason": session.handoff_reason,
        "assigned_agent": session.assigned_agent,
        "turns": [
            {"turn_id": t.turn_id, "role": str(t.role), "content": t.content, "created_at": t.created_at,
             "grounded": t.grounded, "feedback": t.feedback, "sources": t.citations}
            for t in session.turns
        ],
    }


class WebhookOutbox:
    """Writes events to the stream, one entry per configured URL (each is delivered and retried
    on its own)."""

    def __init__(self, redis: Redis, settings: WebhookSettings) -> None:
        self.redis = redis
        self.settings = settings

    async def emit(self, event_type: str, session: SessionRecord, **details: Any) -> None:
        if not self.settings.webhook_urls or event_type not in self.settings.webhook_events:
            return
        event = {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": event_type,
            "created": time.time(),
            "session": transcript(session),
            # Agents answer through the API: POST this path (HTTP API) with an agent key.
            "reply_path": f"/v1/sessions/{session.session_id}/replies",
            **details,
        }
        body = json.dumps(event, ensure_ascii=False)
        try:
            for url in self.settings.webhook_urls:
                await self.redis.xadd(self.settings.webhook_stream, {"url": url, "event": body, "attempts": "0"})
        except RedisError as error:  # the change itself is stored; say loudly that its event is not
            log.error("webhook event not queued", extra={"event_type": event_type, "error": str(error)})


class WebhookDispatcher:
    def __init__(self, redis: Redis, settings: WebhookSettings, client: httpx.AsyncClient | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.stream = settings.webhook_stream
        self.consumer = f"gateway-{uuid.uuid4().hex[:8]}"
        self.client = client or httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def deliver(self, url: str, body: str) -> str:
        """"" when delivered, else why not."""
        timestamp = int(time.time())
        event = json.loads(body)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.settings.webhook_secret.get_secret_value(), timestamp, body.encode()),
            "X-Supportbot-Event": event["type"],
            "X-Supportbot-Event-Id": event["id"],
            "User-Agent": "supportbot-webhooks/1",
        }
        try:
            response = await self.client.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        return "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    async def handle(self, entry_id: str, fields: dict[str, str]) -> None:
        """One delivery with its retries; acknowledged when delivered or dead-lettered."""
        attempts = int(fields.get("attempts", "0"))
        while True:
            failure = await self.deliver(fields["url"], fields["event"])
            attempts += 1
            if not failure:
                break
            if attempts >= self.settings.webhook_max_attempts:
                await self.redis.lpush(self.settings.webhook_dead_letters, json.dumps({
                    "url": fields["url"], "event": json.loads(fields["event"]), "attempts": attempts,
                    "last_error": failure, "failed_at": time.time(),
                }))
                log.error("webhook dead-lettered", extra={"url": fields["url"], "error": failure, "attempts": attempts})
                break
            log.warning("webhook delivery failed; retrying", extra={"url": fields["url"], "error": failure, "attempts": attempts})
            await asyncio.sleep(min(self.settings.webhook_backoff_s * 2 ** (attempts - 1), 300))
        await self.redis.xack(self.stream, GROUP, entry_id)
        await self.redis.xdel(self.stream, entry_id)

    async def _batch(self) -> list[tuple[str, dict[str, str]]]:
        # Events another (stopped) dispatcher took and never finished come first.
        _, claimed, *_ = await self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=int(self.settings.webhook_claim_after_s * 1000), count=10
        )
        if claimed:
            return stream_entries(claimed)
        response = await self.redis.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=10, block=1000)
        return group_entries(response)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._ensure_group()
                while not stop.is_set():
                    batch = await self._batch()
                    await asyncio.gather(*(self.handle(entry_id, fields) for entry_id, fields in batch))
            except RedisError as error:
                log.warning("webhook delivery paused", extra={"reason": str(error)})
                try:
                    await asyncio.wait_for(stop.wait(), 2)
                except TimeoutError:
                    pass
        await self.client.aclose()

