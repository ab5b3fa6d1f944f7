"""What a contact center watches, as Prometheus metrics on the gateway's metrics port: turns by
outcome, time to first token and whole turns, how well retrieval matched, feedback, handoffs and
why, sessions closed with and without a person (deflection), the agent queue, and drafts shown.

Labels stay bounded: the collection (a validated name an operator creates), the outcome and the
answer path (fixed sets), a handoff reason from a fixed set ("other" for free text), never a
session or customer. Latency histograms carry the request id as an exemplar (OpenMetrics)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from services.gateway import handoff
from services.gateway.domain import AnswerPath, TurnOutcome
from services.gateway.reply_outcome import ReplyOutcome
from services.gateway.sessions import SessionRecord, SessionStore
from supportbot.conversation import SessionStatus
from supportbot.core.logging import current_request_id

log = logging.getLogger(__name__)

TURNS = Counter(
    "supportbot_chat_turns_total",
    "Chat turns by outcome (grounded, ungrounded, unavailable, handed_off, with_person) and answer path.",
    ["collection", "outcome", "answer_path"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "supportbot_chat_time_to_first_token_seconds",
    "From the customer's message to the first answer text they see.",
    ["collection"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
TURN_DURATION = Histogram(
    "supportbot_chat_turn_duration_seconds",
    "From the customer's message to the whole answer.",
    ["collection"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
TOP_SCORE = Histogram(
    "supportbot_retrieval_top_score",
    "Cosine similarity of the best retrieved chunk to the question (low: the help center lacks it).",
    ["collection"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
)
FEEDBACK = Counter("supportbot_feedback_total", "Customer ratings of answers.", ["collection", "rating"])
HANDOFFS = Counter("supportbot_handoffs_total", "Conversations handed to a person, by reason.", ["collection", "reason"])
SESSIONS_CLOSED = Counter(
    "supportbot_sessions_closed_total",
    "Closed sessions; deflected=true when no person ever had the conversation.",
    ["collection", "deflected"],
)
ANSWER_CACHE = Counter(
    "supportbot_answer_cache_lookups_total",
    "First-turn questions looked up in the semantic answer cache: hit, miss, or stale (a cited "
    "document changed: the entry was removed).",
    ["collection", "result"],
)
QUEUE_LENGTH = Gauge("supportbot_agent_queue_sessions", "Sessions waiting for an agent.")
QUEUE_OLDEST = Gauge(
    "supportbot_agent_queue_oldest_wait_seconds", "How long the longest-waiting session has waited (0: none)."
)
QUEUE_WAIT = Histogram(
    "supportbot_agent_queue_wait_seconds",
    "From the handoff to an agent taking the conversation over.",
    ["collection"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
SUGGESTIONS_SHOWN = Counter(
    "supportbot_suggested_replies_shown_total", "Draft replies offered to agents, by how they were made.",
    ["collection", "answer_path"],
)

AGENT_REPLIES = Counter(
    "supportbot_agent_replies_total",
    "Agents' replies by how they relate to the drafts: accepted (sent as is), edited, rejected (drafts shown, "
    "not used) or typed (none shown).",
    ["collection", "outcome"],
)
AGENT_REPLY_EDITS = Histogram(
    "supportbot_agent_reply_edit_ratio",
    "Of edited drafts: the share of words changed.",
    ["collection"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
)

_REASONS = {
    handoff.ASKED_FOR_PERSON: "asked_for_person",
    handoff.COULD_NOT_ANSWER: "could_not_answer",
    handoff.THUMBS_DOWN: "thumbs_down",
}


def path_name(path: int) -> str:
    return AnswerPath(path).label


def _exemplar() -> dict[str, str] | None:
    request_id = current_request_id()
    return {"request_id": request_id} if request_id else None


def turn_answered(collection: str, label: str, outcome: TurnOutcome, top_score: float | None) -> None:
    TURNS.labels(collection, label, outcome.answer_path.label).inc()
    if outcome.latencies.first_token_ms:
        TIME_TO_FIRST_TOKEN.labels(collection).observe(outcome.latencies.first_token_ms / 1000, exemplar=_exemplar())
    TURN_DURATION.labels(collection).observe(outcome.latencies.total_ms / 1000, exemplar=_exemplar())
    if top_score is not None:
        TOP_SCORE.labels(collection).observe(top_score)


def status_changed(before: SessionStatus, session: SessionRecord) -> None:
    if session.status == SessionStatus.WAITING and before == SessionStatus.BOT:
        HANDOFFS.labels(session.collection, _REASONS.get(session.handoff_reason, "other")).inc()
    elif session.status == SessionStatus.WITH_AGENT and before == SessionStatus.WAITING and session.handed_off_at:
        QUEUE_WAIT.labels(session.collection).observe(max(0.0, time.time() - session.handed_off_at))
    elif session.status == SessionStatus.CLOSED:
        person = bool(session.assigned_agent or session.handoff_reason)
        SESSIONS_CLOSED.labels(session.collection, "false" if person else "true").inc()


def feedback(collection: str, rating: int) -> None:
    FEEDBACK.labels(collection, "up" if rating > 0 else "down").inc()


def suggestions_shown(collection: str, paths: Sequence[int]) -> None:
    for path in paths:
        SUGGESTIONS_SHOWN.labels(collection, path_name(path)).inc()


async def watch_queue(sessions: SessionStore, stop: asyncio.Event, interval_s: float = 5.0) -> None:
    """Keeps the queue gauges current (a scrape cannot wait for Redis)."""
    while not stop.is_set():
        try:
            length, oldest = await sessions.queue_stats()
            QUEUE_LENGTH.set(length)
            QUEUE_OLDEST.set(max(0.0, time.time() - oldest) if oldest else 0.0)
        except RedisError as error:
            log.warning("agent queue not measured", extra={"error": str(error)})
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass


def agent_replied(collection: str, outcome: ReplyOutcome) -> None:
    AGENT_REPLIES.labels(collection, outcome.outcome).inc()
    if outcome.outcome == "edited":
        AGENT_REPLY_EDITS.labels(collection).observe(outcome.edit_ratio)
