"""The interaction log's records: written by the gateway, read by `supportbot eval`
(`supportbot.evaluation.records.read_log`). One type per kind, so writer and reader cannot drift
apart."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


class InteractionRecord:
    """A record of the log: `KIND` names it in the stream, `to_record` is what is written."""

    KIND: ClassVar[str]

    def to_record(self) -> dict[str, Any]:
        """What is written: every field but those the reader joins in (`JOINED`)."""
        record: dict[str, Any] = asdict(self)  # type: ignore[call-overload]  # every record is a dataclass
        joined = {f.name for f in fields(self) if f.metadata.get(JOINED)}  # type: ignore[arg-type]
        return {name: value for name, value in record.items() if name not in joined}


# A field the gateway does not write: the reader fills it from other records of the log.
JOINED = "joined"


@dataclass
class RetrievedChunk:
    chunk_id: str
    document_id: str
    score: float
    dense_score: float
    # Which version of the document was found (`supportbot eval kb-diff` and the answer cache
    # compare them); 0 and "" in records written before versions were logged.
    document_version: int = 0
    content_hash: str = ""


@dataclass
class TurnInteraction(InteractionRecord):
    """One chat turn: what was asked, found, answered, how, and how long each stage took."""

    turn_id: str
    session_id: str = ""
    timestamp: float = 0.0
    collection: str = ""
    channel: str = ""
    question: str = ""
    rewritten_question: str = ""
    retrieved: list[RetrievedChunk] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    answer: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = ""
    completion_tokens: int = 0
    latencies_ms: dict[str, float] = field(default_factory=dict)
    grounded: bool = False
    handoff: bool = False
    # How the answer was made (see chat.proto's AnswerMode and AnswerPath, without the prefix).
    answer_mode: str = ""
    answer_path: str = ""
    sentences_kept: int = 0
    sentences_dropped: int = 0
    fallback_reason: str = ""
    # The turn whose answer was reused from the semantic answer cache ("" when answered afresh).
    cached_from_turn_id: str = ""
    # The LoRA adapter that generated the answer ("helpcenter@v2"); empty: the base model or none.
    adapter: str = ""
    # The customer's latest rating of the answer (-1, 0, 1): joined from the feedback records
    # when the log is read, never written with the turn.
    rating: int = field(default=0, metadata={JOINED: True})

    KIND = "turn"

    @property
    def retrieved_document_ids(self) -> list[str]:
        return [r.document_id for r in self.retrieved]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TurnInteraction:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known and k != "rating"}
        chunk_fields = {f.name for f in fields(RetrievedChunk)}
        values["retrieved"] = [
            RetrievedChunk(**{
                "chunk_id": "", "document_id": "", "score": 0.0, "dense_score": 0.0,
                **{k: v for k, v in r.items() if k in chunk_fields},
            })
            for r in record.get("retrieved", [])
        ]
        # Read as the types the gateway writes, whatever wrote the log.
        for name, kind in (("timestamp", float), ("completion_tokens", int), ("sentences_dropped", int),
                           ("grounded", bool), ("handoff", bool)):
            if name in values:
                values[name] = kind(values[name])
        values["latencies_ms"] = {k: float(v) for k, v in values.get("latencies_ms", {}).items()}
        return cls(**values)


@dataclass
class FeedbackInteraction(InteractionRecord):
    turn_id: str
    session_id: str
    rating: int
    comment: str
    timestamp: float

    KIND = "feedback"


@dataclass
class SummaryInteraction(InteractionRecord):
    """An agent-assist summary with the conversation it condenses (for the QAG summary metric)."""

    session_id: str
    timestamp: float
    transcript: str
    summary: str
    answer_path: str = ""

    KIND = "summary"


@dataclass
class AgentReplyInteraction(InteractionRecord):
    """An agent's reply and how it relates to the suggested replies (for `supportbot eval export`:
    accepted and edited replies are reviewed answers to the customer's question)."""

    session_id: str
    turn_id: str
    timestamp: float
    collection: str
    question: str
    reply: str
    suggestion: str
    outcome: str
    edit_distance: int
    edit_ratio: float

    KIND = "agent_reply"
