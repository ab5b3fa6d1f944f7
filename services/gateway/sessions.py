"""Chat sessions in Redis: one JSON document per session, changed under a per-session lock so
two turns sent at once never interleave their writes, and one sorted set per status (scored by
last update) so the agent queue is read without scanning every session."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, cast, get_args

from redis.asyncio import Redis

from services.gateway.domain import ActionReply
from services.gateway.redis_connection import scored_members
from supportbot.actions.identity import CustomerIdentity, IdentitySource
from supportbot.actions.pending import restore
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.errors import InvalidArgument, NotFound, ResourceExhausted

SESSION_PREFIX = "supportbot:session:"
STATUS_INDEX_PREFIX = "supportbot:sessions:status:"
# Set once the sessions stored before the status indexes existed have been indexed.
STATUS_INDEX_READY = "supportbot:sessions:status-index-ready"
_SESSION_ID = re.compile(r"^s_[A-Za-z0-9_-]{20,64}$")


def new_session_id() -> str:
    return "s_" + secrets.token_urlsafe(24)


def new_turn_id() -> str:
    return "t_" + secrets.token_urlsafe(12)


def check_session_id(session_id: str) -> str:
    if not _SESSION_ID.fullmatch(session_id):
        raise InvalidArgument(f"malformed session id {session_id[:80]!r}: expected an id returned by the gateway")
    return session_id


@dataclass
class TurnRecord:
    turn_id: str
    role: Speaker
    content: str
    created_at: float
    citations: list[dict[str, Any]] = field(default_factory=list)
    grounded: bool = False
    feedback: int = 0
    # A customer's message as searched (its standalone question, services/gateway/followups.py),
    # the part of it a later elliptical question ("what about gift cards?") hangs on, and the
    # question that opened its thread.
    standalone: str = ""
    anchor: str = ""
    root: str = ""
    # The outcome of an account action an agent approved for the customer: that agent's name.
    approved_by: str = ""

    def __post_init__(self) -> None:
        self.role = Speaker(self.role)


def customer_turns(turns: list[TurnRecord]) -> list[TurnRecord]:
    """The customer's turns of a conversation, oldest first."""
    return [t for t in turns if t.role == Speaker.CUSTOMER]


@dataclass
class SessionRecord:
    session_id: str
    status: SessionStatus = SessionStatus.BOT
    customer_id: str = ""
    collection: str = ""
    channel: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    assigned_agent: str = ""
    handoff_reason: str = ""
    # When the conversation last went to the agent queue (0: never).
    handed_off_at: float = 0.0
    ungrounded_streak: int = 0
    turns: list[TurnRecord] = field(default_factory=list)
    # The account action waiting for the customer's next message (parameters so far, awaiting
    # confirmation: supportbot.actions.stage.SESSION_FIELD's state), or None.
    pending_action: dict[str, Any] | None = None
    # The records the conversation's account actions read, for the agent (the latest read of
    # each, supportbot.actions.case.remember).
    case_records: list[dict[str, Any]] = field(default_factory=list)
    # The customer the conversation's latest turn authenticated (a customer key, or the widget's
    # signed identity token), {"customer_id", "source"}: whom an agent's drafts run lookups and
    # propose changes for. Never set from what anyone writes.
    account_holder: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.status = SessionStatus(self.status)

    def account_identity(self) -> CustomerIdentity | None:
        """The customer the conversation's latest turn authenticated, or None (anonymous, or a
        session kept before the holder was)."""
        holder = self.account_holder or {}
        customer_id, source = holder.get("customer_id", ""), holder.get("source", "")
        if not customer_id or source not in get_args(IdentitySource):
            return None
        return CustomerIdentity(customer_id, cast(IdentitySource, source))

    def waiting_action(self, now: float) -> ActionReply | None:
        """The account action awaiting the customer's answer while its question is still the
        conversation's last turn (chat.proto's Session.waiting_action): what a client showing
        the conversation again offers as buttons, labelled as the question labelled them."""
        pending = restore(self.pending_action)
        if pending is None or not self.turns or self.turns[-1].role != Speaker.ASSISTANT:
            return None
        waiting = pending.waiting_for(now)
        if waiting is None:
            return None
        kind, options = waiting
        return ActionReply(action=pending.action, kind=kind, options=tuple((option.value, option.label) for option in options))

    def make_room(self, text: str, *, max_messages: int, max_chars: int) -> None:
        """Refuses a message (and the reply it gets) that would take the conversation past its
        limits; nothing is changed either way."""
        stored = sum(len(turn.content) for turn in self.turns)
        if len(self.turns) + 2 > max_messages or stored + len(text) > max_chars:
            raise ResourceExhausted(
                f"session {self.session_id} has reached its size limit ({len(self.turns)} messages, "
                f"{stored} characters): start a new session to go on"
            )

    @classmethod
    def from_json(cls, raw: str | bytes) -> SessionRecord:
        data = json.loads(raw)
        data["turns"] = [TurnRecord(**t) for t in data.get("turns", [])]
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def customer_messages(self) -> list[str]:
        """What the customer wrote, oldest first (the one filter every reader of the
        conversation uses: the language, the question to search, drafts, summaries)."""
        return [t.content for t in customer_turns(self.turns)]

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
    def status_index(status: SessionStatus) -> str:
        return STATUS_INDEX_PREFIX + status.value

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
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py's PubSub.aclose is unannotated (redis 8.1)

    async def create(self, *, collection: str, channel: str, customer_id: str = "") -> SessionRecord:
        session = SessionRecord(new_session_id(), collection=collection, channel=channel, customer_id=customer_id)
        await self._save(session, only_new=True)
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

    async def _save(self, session: SessionRecord, *, only_new: bool = False) -> None:
        session.updated_at = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(session.session_id), session.to_json(), ex=self.ttl_s, nx=only_new)
            for status in SessionStatus:
                if status == session.status:
                    pipe.zadd(self.status_index(status), {session.session_id: session.updated_at})
                else:
                    pipe.zrem(self.status_index(status), session.session_id)
            await pipe.execute()

    async def queue_stats(self) -> tuple[int, float]:
        """Sessions waiting for an agent, and the oldest one's last change (0 when none)."""
        index = self.status_index(SessionStatus.WAITING)
        length = await self.redis.zcard(index)
        oldest = scored_members(await self.redis.zrange(index, 0, 0, withscores=True))
        return length, (oldest[0][1] if oldest else 0.0)

    async def index_existing(self) -> int:
        """Indexes sessions written before the status indexes existed, once per Redis: a scan
        of every session key at start-up instead of at every queue read. Returns how many."""
        if await self.redis.exists(STATUS_INDEX_READY):
            return 0
        count = 0
        async for key in self.redis.scan_iter(match=SESSION_PREFIX + "*", count=500, _type="string"):
            raw = await self.redis.get(key)
            if raw is None or key.endswith(b":lock"):
                continue
            session = SessionRecord.from_json(raw)
            await self.redis.zadd(self.status_index(session.status), {session.session_id: session.updated_at})
            count += 1
        await self.redis.set(STATUS_INDEX_READY, "1")
        return count

    async def list(
        self, statuses: set[SessionStatus], collections: set[str] | None = None, limit: int = 100
    ) -> list[SessionRecord]:
        """Sessions by status, newest first; `collections` None means every collection. Reads the
        status indexes newest first, in pages, until `limit` sessions match."""
        expired_before = time.time() - self.ttl_s
        for status in statuses:
            # Sessions expire by TTL; their index entries are dropped here.
            await self.redis.zremrangebyscore(self.status_index(status), "-inf", expired_before)
        cursors = {status: 0 for status in statuses}
        floors: dict[SessionStatus, float] = {}  # oldest score read so far, per unfinished index
        found: list[SessionRecord] = []
        page = max(limit, 50)

        def complete() -> bool:
            # Done when the limit-th newest match is newer than anything still unread.
            if len(found) < limit:
                return False
            found.sort(key=lambda s: s.updated_at, reverse=True)
            return all(found[limit - 1].updated_at >= floor for floor in floors.values())

        while cursors and not complete():
            batch: list[tuple[float, str, SessionStatus]] = []
            for status, offset in list(cursors.items()):
                entries = scored_members(
                    await self.redis.zrevrange(self.status_index(status), offset, offset + page - 1, withscores=True)
                )
                if len(entries) < page:
                    del cursors[status]
                    floors.pop(status, None)
                else:
                    cursors[status] = offset + page
                    floors[status] = entries[-1][1]
                batch.extend((score, member, status) for member, score in entries)
            if not batch:
                break
            batch.sort(reverse=True)
            raws = await self.redis.mget([self.key(session_id) for _, session_id, _ in batch])
            for (_, session_id, status), raw in zip(batch, raws, strict=True):
                if raw is None:
                    await self.redis.zrem(self.status_index(status), session_id)
                    continue
                session = SessionRecord.from_json(raw)
                if session.status == status and (collections is None or session.collection in collections):
                    found.append(session)
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return found[:limit]
