"""Protobuf messages from the gateway's session records: the one place they are built."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.sessions import SessionRecord, TurnRecord
from supportbot.conversation import SessionStatus
from supportbot.v1 import chat_pb2, common_pb2


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def turn_message(turn: TurnRecord) -> chat_pb2.Turn:
    return chat_pb2.Turn(
        turn_id=turn.turn_id,
        role=turn.role.to_pb(),
        content=turn.content,
        citations=[common_pb2.Citation(**c) for c in turn.citations],
        create_time=timestamp(turn.created_at),
        grounded=turn.grounded,
        feedback=turn.feedback,
    )


def session_message(session: SessionRecord) -> chat_pb2.Session:
    return chat_pb2.Session(
        session_id=session.session_id,
        status=session.status.to_pb(),
        customer_id=session.customer_id,
        collection=session.collection,
        channel=session.channel,
        turns=[turn_message(t) for t in session.turns],
        create_time=timestamp(session.created_at),
        update_time=timestamp(session.updated_at),
        assigned_agent=session.assigned_agent,
        handoff_reason=session.handoff_reason,
    )


def citation_dict(citation: common_pb2.Citation) -> dict[str, Any]:
    return {
        "index": citation.index,
        "chunk_id": citation.chunk_id,
        "document_id": citation.document_id,
        "title": citation.title,
        "url": citation.url,
    }


def turn_event(turn: TurnRecord) -> bytes:
    """A WatchSession event, as published to the session's watchers."""
    return chat_pb2.WatchSessionResponse(turn=turn_message(turn)).SerializeToString()


def status_event(status: SessionStatus) -> bytes:
    return chat_pb2.WatchSessionResponse(status=status.to_pb()).SerializeToString()


def answer_mode_name(mode: int) -> str:
    return chat_pb2.AnswerMode.Name(mode).removeprefix("ANSWER_MODE_").lower()


def answer_path_name(path: int) -> str:
    return chat_pb2.AnswerPath.Name(path).removeprefix("ANSWER_PATH_").lower()
