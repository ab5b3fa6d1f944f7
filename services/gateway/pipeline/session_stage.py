"""The open_session stage: the request's session (which this key may see, and still open), or a
new one, started with the conversation the client holds when it sends one."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from services.gateway import followups
from services.gateway.domain import Message, SessionOpened, TurnEvent
from services.gateway.pipeline.context import TurnContext
from services.gateway.sessions import SessionRecord, SessionStore, TurnRecord, new_turn_id
from services.gateway.settings import GatewaySettings
from supportbot.conversation import SessionStatus, Speaker
from supportbot.core.auth import CUSTOMER_ROLES, current_principal
from supportbot.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    check_channel,
    check_collection_name,
    check_identifier,
)


def authorize(session: SessionRecord) -> SessionRecord:
    """The session, when the calling key may see it."""
    principal = current_principal()
    if principal is not None and not principal.can_see(session.collection, session.customer_id):
        raise PermissionDenied(f"this key may not access session {session.session_id}")
    return session


def history_turns(history: tuple[Message, ...], *, max_messages: int, max_chars: int) -> list[TurnRecord]:
    """A client-held conversation (OpenAI `messages`) as a new session's first turns, its
    customer questions rewritten as if they had been asked here. System messages are left out:
    they never replace the product's own instructions."""
    kept = [m for m in history if m.role in (Speaker.CUSTOMER, Speaker.ASSISTANT) and m.content.strip()]
    if len(kept) + 2 > max_messages or sum(len(m.content) for m in kept) > max_chars:
        raise InvalidArgument(
            f"the conversation history is over the session's limits ({max_messages} messages, {max_chars} "
            "characters): send fewer earlier messages"
        )
    turns: list[TurnRecord] = []
    for message in kept:
        if message.role == Speaker.CUSTOMER:
            asked = followups.rewrite(message.content, followups.previous_exchange(turns))
            turns.append(TurnRecord(
                new_turn_id(), Speaker.CUSTOMER, message.content, time.time(),
                standalone=asked.standalone, anchor=asked.anchor, root=asked.root,
            ))
        else:
            turns.append(TurnRecord(new_turn_id(), Speaker.ASSISTANT, message.content, time.time()))
    return turns


class OpenSession:
    name = "open_session"

    def __init__(self, settings: GatewaySettings, sessions: SessionStore) -> None:
        self.settings = settings
        self.sessions = sessions

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        """Finds or creates the session (the turn then runs under its lock, see ChatTurns)."""
        turn.session = await self.open(turn)
        yield SessionOpened(turn.session.session_id, turn.turn_id)

    async def open(self, turn: TurnContext) -> SessionRecord:
        request, limits = turn.request, self.settings
        if request.session_id:
            session = authorize(await self.sessions.get(request.session_id))
            if session.status == SessionStatus.CLOSED:
                raise FailedPrecondition(f"session {session.session_id} is closed: start a new one")
            session.make_room(turn.message, max_messages=limits.limits.max_session_messages, max_chars=limits.limits.max_session_chars)
            return session
        # Checked before the session is stored: a refused history stores nothing.
        earlier = history_turns(
            request.history, max_messages=limits.limits.max_session_messages, max_chars=limits.limits.max_session_chars
        )
        session = await self.create(request.collection, request.channel, "")
        if earlier:
            async with self.sessions.locked(session.session_id) as stored:
                stored.turns = earlier
        return session

    async def create(self, collection: str, channel: str, customer_id: str) -> SessionRecord:
        """A new session, once its fields are valid: a refused request stores nothing."""
        collection = check_collection_name(collection or self.settings.limits.default_collection)
        channel = check_channel(channel or "api")
        principal = current_principal()
        if principal is not None and not principal.may_use_collection(collection, self.settings.limits.default_collection):
            raise PermissionDenied(
                f"this key may not chat in collection {collection}: a key's collections are set in the keys file"
            )
        if principal is not None and principal.role in CUSTOMER_ROLES:
            customer_id = principal.customer_id
        customer_id = check_identifier(customer_id, field="customer_id")
        return await self.sessions.create(collection=collection, channel=channel, customer_id=customer_id)
