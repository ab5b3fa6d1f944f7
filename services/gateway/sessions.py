"""Chat sessions in Redis: one JSON document per session, changed under a per-session lock so
two turns sent at once never interleave their writes."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from supportbot.core.errors import InvalidArgument, NotFound

SESSION_PREFIX = "supportbot:session:"
_SESSION_ID = re.compile(r"^s_[A-Za-z0-9_-]{20,64}$")

STATUS_BOT = "bot"
STATUS_WAITING = "waiting_for_agent"
STATUS_WITH_AGENT = "with_agent"
STATUS_CLOSED = "closed"


def new_session_id() -> str:
    return "s_" + secrets.token_urlsafe(24)


def new_turn_id() -> str:
    return "t_" + secrets.token_urlsafe(12)


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID.match(session_id):
        raise InvalidArgument(f"malformed session id {session_id[:80]!r}: expected an id returned by the gateway")
    return session_id


@dataclass
class TurnRecord:
    turn_id: str
    role: str  # customer, assistant, agent, system
    content: str
    created_at: float
    citations: list[dict] = field(default_factory=list)
    grounded: bool = False
    feedback: int = 0


@dataclass
class SessionRecord:
    session_id: str
    status: str = STATUS_BOT
    customer_id: str = ""
    collection: str = ""
    channel: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    assigned_agent: str = ""
    handoff_reason: str = ""
    ungrounded_streak: int = 0
    turns: list[TurnRecord] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: str | bytes) -> SessionRecord:
        data = json.loads(raw)
        data["turns"] = [TurnRecord(**t) for t in data.get("turns", [])]
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def turn(self, turn_id: str) -> TurnRecord:
        for turn in self.turns:
            if turn.turn_id == turn_id:
                return turn
        raise NotFound(f"turn {turn_id!r} is not in session {self.session_id}")


class SessionStore:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def key(session_id: str) -> str:
        return SESSION_PREFIX + session_id

    @staticmethod
    def events_channel(session_id: str) -> str:
        return f"{SESSION_PREFIX}{session_id}:events"

    async def publish(self, session_id: str, event: bytes) -> None:
        """Live events for whoever watches the session (the agent panel, the customer page)."""
        await self.redis.publish(self.events_channel(session_id), event)

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.events_channel(session_id))

        async def messages() -> AsyncIterator[bytes]:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield message["data"]

        try:
            yield messages()
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def create(self, *, collection: str, channel: str, customer_id: str = "") -> SessionRecord:
        session = SessionRecord(new_session_id(), collection=collection, channel=channel, customer_id=customer_id)
        await self.redis.set(self.key(session.session_id), session.to_json(), ex=self.ttl_s, nx=True)
        return session

    async def get(self, session_id: str) -> SessionRecord:
        raw = await self.redis.get(self.key(check_session_id(session_id)))
        if raw is None:
            raise NotFound(f"session {session_id!r} does not exist or has expired")
        return SessionRecord.from_json(raw)

    @asynccontextmanager
    async def locked(self, session_id: str, timeout_s: float = 300) -> AsyncIterator[SessionRecord]:
        """Loads the session under its lock and saves it on a clean exit."""
        check_session_id(session_id)
        lock = self.redis.lock(f"{self.key(session_id)}:lock", timeout=timeout_s, blocking_timeout=timeout_s)
        async with lock:
            session = await self.get(session_id)
            try:
                yield session
            except (asyncio.CancelledError, GeneratorExit):
                # The caller went away mid-turn: keep what was said. Errors save nothing.
                await self._save(session)
                raise
            await self._save(session)

    async def _save(self, session: SessionRecord) -> None:
        session.updated_at = time.time()
        await self.redis.set(self.key(session.session_id), session.to_json(), ex=self.ttl_s)

    async def list(self, statuses: set[str], collections: set[str] | None = None, limit: int = 100) -> list[SessionRecord]:
        """Sessions by status, newest first; `collections` None means every collection."""
        sessions = []
        async for key in self.redis.scan_iter(match=SESSION_PREFIX + "*", count=500, _type="string"):
            if key.endswith(b":lock"):
                continue
            raw = await self.redis.get(key)
            if raw is None:
                continue
            session = SessionRecord.from_json(raw)
            if session.status in statuses and (collections is None or session.collection in collections):
                sessions.append(session)
        sessions.sort(key=lambda s: s.updated_at, reverse=True)
        return sessions[:limit]
