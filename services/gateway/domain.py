"""The gateway's own types: what a chat request says, what a turn streams, and how it ended.

Requests are converted to these where they enter (`convert.chat_request`) and responses built
from them where they leave (`convert.chat_response`), so the turn's logic reads Python enums and
dataclasses instead of protobuf messages. The enums keep the wire's numbers, so a value compares
equal to the protobuf constant of the same name. Sources and citations are
`supportbot.answers.sources` types, shared with the answer machinery that reads and builds them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum

from supportbot.actions.replies import RecordCitation
from supportbot.answers.answerability import UnknownTerm
from supportbot.answers.sources import Citation, Source
from supportbot.conversation import Speaker


class AnswerMode(IntEnum):
    """How a turn is answered (chat.proto's AnswerMode)."""

    UNSPECIFIED = 0
    GENERATIVE = 1
    VERIFIED = 2
    EXTRACTIVE = 3

    @property
    def label(self) -> str:
        """The lower-case name settings, logs and errors use ("verified")."""
        return self.name.lower()

    @property
    def wire_name(self) -> str:
        return f"ANSWER_MODE_{self.name}"

    @classmethod
    def from_label(cls, label: str) -> AnswerMode:
        return cls[label.upper()]


class AnswerPath(IntEnum):
    """Which path produced the answer the customer read (chat.proto's AnswerPath)."""

    UNSPECIFIED = 0
    GENERATED = 1
    VERIFIED = 2
    EXTRACTIVE = 3
    EXTRACTIVE_FALLBACK = 4
    FIXED_REPLY = 5
    ACTION = 6  # an account action answered (TurnOutcome.action)

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def wire_name(self) -> str:
        return f"ANSWER_PATH_{self.name}"


class FinishReason(IntEnum):
    """Why generation ended (common.proto's FinishReason)."""

    UNSPECIFIED = 0
    END_OF_TURN = 1
    STOP_STRING = 2
    LENGTH = 3
    ABORTED = 4
    NOT_GENERATED = 5
    REPETITION = 6

    @property
    def wire_name(self) -> str:
        """The protobuf name, as the interaction log writes it ("FINISH_REASON_END_OF_TURN")."""
        return f"FINISH_REASON_{self.name}"


@dataclass(frozen=True)
class Message:
    """One message of a conversation as the model sees it."""

    role: Speaker
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """A customer's message, as the Chat RPC received it."""

    message: str
    session_id: str = ""
    collection: str = ""
    channel: str = ""
    answer_mode: AnswerMode = AnswerMode.UNSPECIFIED
    bypass_answer_cache: bool = False
    # A conversation the client holds itself, for a new session (roles other than the four
    # speakers are left out at the edge).
    history: tuple[Message, ...] = ()
    # The widget's signed identity token (supportbot.actions.identity), checked by the act stage.
    identity_token: str = ""


@dataclass(frozen=True)
class Latencies:
    session_ms: float = 0.0
    rewrite_ms: float = 0.0
    retrieval_ms: float = 0.0
    first_token_ms: float = 0.0
    total_ms: float = 0.0

    def by_stage(self) -> dict[str, float]:
        """As the interaction log writes them."""
        return {
            "session": self.session_ms, "rewrite": self.rewrite_ms, "retrieval": self.retrieval_ms,
            "first_token": self.first_token_ms, "total": self.total_ms,
        }


# What a turn streams before its outcome: the session it runs in, the sources found, and the
# answer's text piece by piece.
@dataclass(frozen=True)
class SessionOpened:
    session_id: str
    turn_id: str


@dataclass(frozen=True)
class SourcesFound:
    sources: list[Source]
    rewritten_question: str


@dataclass(frozen=True)
class AnswerText:
    text: str


@dataclass(frozen=True)
class ActionReply:
    """An account action's reply beside its text (chat.proto's ActionReply): `kind` is clarify,
    confirm, result or error; `options` the (value, label) choices to offer; `records` the
    records the answer rests on."""

    action: str
    kind: str
    options: tuple[tuple[str, str], ...] = ()
    records: tuple[RecordCitation, ...] = ()


@dataclass
class TurnOutcome:
    """How one turn ended: the one value the ChatResult (`convert.chat_result`) and the
    interaction record (`TurnOutcome.interaction`) are both made from."""

    turn_id: str
    answer_mode: AnswerMode
    latencies: Latencies
    finish: FinishReason = FinishReason.NOT_GENERATED
    handoff: bool = False
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    grounded: bool = False
    completion_tokens: int = 0
    rewritten_question: str = ""
    answer_path: AnswerPath = AnswerPath.UNSPECIFIED
    sentences_kept: int = 0
    sentences_dropped: int = 0
    fallback_reason: str = ""
    cached_from_turn_id: str = ""
    adapter: str = ""
    # Set when an account action answered the turn (answer_path ACTION).
    action: ActionReply | None = None


TurnEvent = SessionOpened | SourcesFound | AnswerText | TurnOutcome


@dataclass
class Answer:
    """What the answer stage produced, filled in as it streams."""

    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    path: AnswerPath = AnswerPath.UNSPECIFIED
    grounded: bool = False
    finish: FinishReason = FinishReason.NOT_GENERATED
    completion_tokens: int = 0
    first_text_at: float = 0.0
    sentences_kept: int = 0
    sentences_dropped: int = 0
    fallback_reason: str = ""
    # The text as it was streamed, piece by piece (the answer cache streams it again so).
    pieces: list[str] = field(default_factory=list)
    # The customer's language: fixed replies and the model's answer follow it.
    language: str = "en"
    adapter: str = ""  # the LoRA adapter that generated it (empty: the base model, or no model)

    def add(self, text: str) -> str:
        if not self.first_text_at:
            self.first_text_at = time.perf_counter()
        self.text += text
        self.pieces.append(text)
        return text


@dataclass(frozen=True)
class GenerationRequest:
    """What the answer stage and agent assist ask the generator (see `convert.generate_request`)."""

    question: str = ""
    sources: list[Source] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    # A whole conversation instead of a question with sources (summaries).
    messages: list[Message] = field(default_factory=list)
    max_tokens: int = 0
    temperature: float = 0.0
    repetition_penalty: float = 0.0
    request_id: str = ""
    language: str = ""
    # The generator answers with the LoRA adapter registered for this collection, if any.
    collection: str = ""


@dataclass
class GenerationResult:
    """How a generation ended."""

    text: str = ""
    finish: FinishReason = FinishReason.UNSPECIFIED
    completion_tokens: int = 0
    citations: list[Citation] = field(default_factory=list)
    adapter: str = ""  # empty: the base model


@dataclass
class SearchResult:
    sources: list[Source] = field(default_factory=list)
    query_embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""
    # The question's content words the collection never uses (retriever.proto SearchResponse).
    unknown_terms: list[UnknownTerm] = field(default_factory=list)
