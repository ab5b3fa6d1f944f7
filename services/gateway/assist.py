"""Agent assist: suggested replies and conversation summaries, written by the generator.
Suggestions use a JSON schema, so even a small model returns drafts that parse."""

from __future__ import annotations

import json

from services.gateway.sessions import SessionRecord
from services.generator.prompting import format_source
from supportbot.v1 import common_pb2

_ROLE_LABELS = {"customer": "Customer", "assistant": "Assistant", "agent": "Agent"}


def transcript(session: SessionRecord, last: int = 12) -> str:
    lines = [f"{_ROLE_LABELS[t.role]}: {t.content}" for t in session.turns if t.role in _ROLE_LABELS]
    return "\n".join(lines[-last:])


def suggestion_schema(count: int) -> str:
    return json.dumps(
        {
            "type": "object",
            "properties": {
                "replies": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": 400},
                    "minItems": count,
                    "maxItems": count,
                }
            },
            "required": ["replies"],
        }
    )


def suggestion_messages(session: SessionRecord, sources: list[common_pb2.Source], count: int) -> list[common_pb2.ConversationMessage]:
    numbered = "\n\n".join(format_source(n, s) for n, s in enumerate(sources, start=1)) or "(no sources found)"
    instruction = (
        f"You help a call-center agent answer a customer. Write {count} different short replies the agent "
        "could send next, each grounded in the numbered sources and citing them as [1], [2]. "
        f"Sources:\n\n{numbered}\n\nConversation:\n{transcript(session)}"
    )
    return [
        common_pb2.ConversationMessage(role=common_pb2.ROLE_SYSTEM, content="You draft replies for support agents."),
        common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content=instruction),
    ]


def summary_messages(session: SessionRecord) -> list[common_pb2.ConversationMessage]:
    return [
        common_pb2.ConversationMessage(
            role=common_pb2.ROLE_SYSTEM,
            content="You summarize customer-support conversations for the agent taking over.",
        ),
        common_pb2.ConversationMessage(
            role=common_pb2.ROLE_CUSTOMER,
            content="Summarize this conversation in two or three sentences: what the customer needs, "
            f"what was already answered, and what is still open.\n\n{transcript(session, last=30)}",
        ),
    ]
