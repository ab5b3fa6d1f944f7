"""The conversation vocabulary every part shares: who speaks in a session and where the session
stands, as stored (strings in Redis and logs) and as sent (protobuf enums)."""

from __future__ import annotations

from enum import StrEnum

from supportbot.core.errors import InvalidArgument
from supportbot.v1 import chat_pb2, common_pb2


class Speaker(StrEnum):
    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    AGENT = "agent"
    SYSTEM = "system"

    def to_pb(self) -> common_pb2.Role:
        return _SPEAKER_TO_PB[self]

    @classmethod
    def from_pb(cls, value: int) -> Speaker:
        if value not in _PB_TO_SPEAKER:
            raise InvalidArgument(f"unknown role {value}")
        return _PB_TO_SPEAKER[value]


class SessionStatus(StrEnum):
    BOT = "bot"
    WAITING = "waiting_for_agent"
    WITH_AGENT = "with_agent"
    CLOSED = "closed"

    def to_pb(self) -> chat_pb2.SessionStatus:
        return _STATUS_TO_PB[self]

    @classmethod
    def from_pb(cls, value: int) -> SessionStatus:
        if value not in _PB_TO_STATUS:
            raise InvalidArgument(f"unknown session status {value}")
        return _PB_TO_STATUS[value]

    @property
    def with_person(self) -> bool:
        """A person has the conversation (or is about to): the bot stays quiet."""
        return self in (SessionStatus.WAITING, SessionStatus.WITH_AGENT)


OPEN_STATUSES = frozenset({SessionStatus.BOT, SessionStatus.WAITING, SessionStatus.WITH_AGENT})

_SPEAKER_TO_PB: dict[Speaker, common_pb2.Role] = {
    Speaker.CUSTOMER: common_pb2.ROLE_CUSTOMER,
    Speaker.ASSISTANT: common_pb2.ROLE_ASSISTANT,
    Speaker.AGENT: common_pb2.ROLE_AGENT,
    Speaker.SYSTEM: common_pb2.ROLE_SYSTEM,
}
_PB_TO_SPEAKER: dict[int, Speaker] = {v: k for k, v in _SPEAKER_TO_PB.items()}
_STATUS_TO_PB: dict[SessionStatus, chat_pb2.SessionStatus] = {
    SessionStatus.BOT: chat_pb2.SESSION_STATUS_BOT,
    SessionStatus.WAITING: chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT,
    SessionStatus.WITH_AGENT: chat_pb2.SESSION_STATUS_WITH_AGENT,
    SessionStatus.CLOSED: chat_pb2.SESSION_STATUS_CLOSED,
}
_PB_TO_STATUS: dict[int, SessionStatus] = {v: k for k, v in _STATUS_TO_PB.items()}
