"""When a conversation goes to a person: every rule in one place."""

from __future__ import annotations

import re
import time

from services.gateway.sessions import SessionRecord
from supportbot.conversation import SessionStatus

_ASKS_FOR_PERSON = re.compile(
    r"\b(human|real person|a person|an agent|live agent|representative|talk to (someone|somebody))\b", re.I
)

ASKED_FOR_PERSON = "customer asked for a person"
COULD_NOT_ANSWER = "the bot could not answer twice in a row"
THUMBS_DOWN = "the customer marked an answer as unhelpful"
# Ungrounded answers in a row after which a person takes over.
UNGROUNDED_STREAK_LIMIT = 2


# Korean: a counsellor or an agent, a person to talk to, "connect me" ("상담원 연결해 주세요",
# "사람이랑 얘기하고 싶어요", "직원 바꿔 주세요").
_ASKS_FOR_PERSON_KO = re.compile(
    r"상담원|상담사|담당자\s*(?:연결|바꿔)|직원\s*(?:연결|바꿔|이랑|과)|사람(?:이랑|하고|과|한테|으로)?\s*(?:연결|통화|얘기|이야기|상담|바꿔)"
)


def asks_for_person(message: str) -> bool:
    return bool(_ASKS_FOR_PERSON.search(message) or _ASKS_FOR_PERSON_KO.search(message))


def queue(session: SessionRecord, reason: str) -> bool:
    """Puts a bot conversation in the agent queue; False when a person already has it."""
    if session.status != SessionStatus.BOT:
        return False
    session.status, session.handoff_reason, session.handed_off_at = SessionStatus.WAITING, reason, time.time()
    return True


def after_answer(session: SessionRecord, grounded: bool) -> str:
    """Counts the bot's unanswered turns; the reason to hand off now, or ""."""
    session.ungrounded_streak = 0 if grounded else session.ungrounded_streak + 1
    return COULD_NOT_ANSWER if session.ungrounded_streak >= UNGROUNDED_STREAK_LIMIT else ""


def last_real_question(session: SessionRecord) -> str:
    """The customer's last question for the help center ("Can I talk to a person?" is none; when
    the customer asked nothing else, that is what there is)."""
    questions = session.customer_messages()
    return next((q for q in reversed(questions) if not asks_for_person(q)), questions[-1] if questions else "")
