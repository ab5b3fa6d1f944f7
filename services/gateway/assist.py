"""Agent assist: suggested replies and conversation summaries, written by the generator.
Suggestions use a JSON schema, so even a small model returns drafts that parse."""

from __future__ import annotations

import json
import re

from services.gateway.sessions import SessionRecord
from supportbot.v1 import common_pb2

_ROLE_LABELS = {"customer": "Customer", "assistant": "Assistant", "agent": "Agent"}


def transcript(session: SessionRecord, last: int = 12) -> str:
    lines = [f"{_ROLE_LABELS[t.role]}: {t.content}" for t in session.turns if t.role in _ROLE_LABELS]
    return "\n".join(lines[-last:])


# One draft per request, each in the same grounded prompt the bot answers with, so even a small
# model drafts from the sources; the schema keeps every draft parseable.
SUGGESTION_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"reply": {"type": "string", "minLength": 20, "maxLength": 300}},
        "required": ["reply"],
    }
)


def suggestion_temperatures(count: int) -> list[float]:
    """The first draft is the most likely answer; the others are sampled for variety."""
    return [0.0] + [round(0.7 + 0.15 * i, 2) for i in range(count - 1)]


# Enough tokens for the schema's 300 characters and the JSON around them.
SUGGESTION_MAX_TOKENS = 160
_PARTIAL_REPLY = re.compile(r'"reply"\s*:\s*"((?:[^"\\]|\\.)*)')


def parse_suggestion(text: str) -> str:
    try:
        return str(json.loads(text)["reply"]).strip()
    except (json.JSONDecodeError, KeyError, TypeError):
        # Guided decoding keeps the JSON whole unless the token budget cut it short: keep what
        # the draft said so far.
        match = _PARTIAL_REPLY.search(text)
        return json.loads(f'"{match.group(1)}"').strip() if match else ""


def summary_transcript(session: SessionRecord) -> str:
    """The part of the conversation a summary covers."""
    return transcript(session, last=30)


def summary_messages(session: SessionRecord) -> list[common_pb2.ConversationMessage]:
    return [
        common_pb2.ConversationMessage(
            role=common_pb2.ROLE_SYSTEM,
            content="You summarize customer-support conversations for the agent taking over.",
        ),
        common_pb2.ConversationMessage(
            role=common_pb2.ROLE_CUSTOMER,
            content="Summarize this conversation in two or three sentences: what the customer needs, "
            f"what was already answered, and what is still open.\n\n{summary_transcript(session)}",
        ),
    ]
