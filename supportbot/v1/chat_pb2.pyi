import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from supportbot.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_BOT: _ClassVar[SessionStatus]
    SESSION_STATUS_WAITING_FOR_AGENT: _ClassVar[SessionStatus]
    SESSION_STATUS_WITH_AGENT: _ClassVar[SessionStatus]
    SESSION_STATUS_CLOSED: _ClassVar[SessionStatus]

class AnswerMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_MODE_UNSPECIFIED: _ClassVar[AnswerMode]
    ANSWER_MODE_GENERATIVE: _ClassVar[AnswerMode]
    ANSWER_MODE_VERIFIED: _ClassVar[AnswerMode]
    ANSWER_MODE_EXTRACTIVE: _ClassVar[AnswerMode]

class AnswerPath(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_PATH_UNSPECIFIED: _ClassVar[AnswerPath]
    ANSWER_PATH_GENERATED: _ClassVar[AnswerPath]
    ANSWER_PATH_VERIFIED: _ClassVar[AnswerPath]
    ANSWER_PATH_EXTRACTIVE: _ClassVar[AnswerPath]
    ANSWER_PATH_EXTRACTIVE_FALLBACK: _ClassVar[AnswerPath]
    ANSWER_PATH_FIXED_REPLY: _ClassVar[AnswerPath]
    ANSWER_PATH_ACTION: _ClassVar[AnswerPath]

class ActionReplyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_REPLY_KIND_UNSPECIFIED: _ClassVar[ActionReplyKind]
    ACTION_REPLY_KIND_CLARIFY: _ClassVar[ActionReplyKind]
    ACTION_REPLY_KIND_CONFIRM: _ClassVar[ActionReplyKind]
    ACTION_REPLY_KIND_RESULT: _ClassVar[ActionReplyKind]
    ACTION_REPLY_KIND_ERROR: _ClassVar[ActionReplyKind]

class ProposalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPOSAL_STATE_UNSPECIFIED: _ClassVar[ProposalState]
    PROPOSAL_STATE_WAITING: _ClassVar[ProposalState]
    PROPOSAL_STATE_EXPIRED: _ClassVar[ProposalState]
    PROPOSAL_STATE_CONFIRMED: _ClassVar[ProposalState]
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_BOT: SessionStatus
SESSION_STATUS_WAITING_FOR_AGENT: SessionStatus
SESSION_STATUS_WITH_AGENT: SessionStatus
SESSION_STATUS_CLOSED: SessionStatus
ANSWER_MODE_UNSPECIFIED: AnswerMode
ANSWER_MODE_GENERATIVE: AnswerMode
ANSWER_MODE_VERIFIED: AnswerMode
ANSWER_MODE_EXTRACTIVE: AnswerMode
ANSWER_PATH_UNSPECIFIED: AnswerPath
ANSWER_PATH_GENERATED: AnswerPath
ANSWER_PATH_VERIFIED: AnswerPath
ANSWER_PATH_EXTRACTIVE: AnswerPath
ANSWER_PATH_EXTRACTIVE_FALLBACK: AnswerPath
ANSWER_PATH_FIXED_REPLY: AnswerPath
ANSWER_PATH_ACTION: AnswerPath
ACTION_REPLY_KIND_UNSPECIFIED: ActionReplyKind
ACTION_REPLY_KIND_CLARIFY: ActionReplyKind
ACTION_REPLY_KIND_CONFIRM: ActionReplyKind
ACTION_REPLY_KIND_RESULT: ActionReplyKind
ACTION_REPLY_KIND_ERROR: ActionReplyKind
PROPOSAL_STATE_UNSPECIFIED: ProposalState
PROPOSAL_STATE_WAITING: ProposalState
PROPOSAL_STATE_EXPIRED: ProposalState
PROPOSAL_STATE_CONFIRMED: ProposalState

class Turn(_message.Message):
    __slots__ = ("turn_id", "role", "content", "citations", "create_time", "grounded", "feedback", "approved_by")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    role: _common_pb2.Role
    content: str
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    create_time: _timestamp_pb2.Timestamp
    grounded: bool
    feedback: int
    approved_by: str
    def __init__(self, turn_id: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., content: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., grounded: _Optional[bool] = ..., feedback: _Optional[int] = ..., approved_by: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "status", "customer_id", "collection", "channel", "turns", "create_time", "update_time", "assigned_agent", "handoff_reason", "waiting_action")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AGENT_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_REASON_FIELD_NUMBER: _ClassVar[int]
    WAITING_ACTION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    status: SessionStatus
    customer_id: str
    collection: str
    channel: str
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    assigned_agent: str
    handoff_reason: str
    waiting_action: ActionReply
    def __init__(self, session_id: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., customer_id: _Optional[str] = ..., collection: _Optional[str] = ..., channel: _Optional[str] = ..., turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assigned_agent: _Optional[str] = ..., handoff_reason: _Optional[str] = ..., waiting_action: _Optional[_Union[ActionReply, _Mapping]] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("session_id", "message", "collection", "channel", "answer_mode", "bypass_answer_cache", "history", "identity_token")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ANSWER_MODE_FIELD_NUMBER: _ClassVar[int]
    BYPASS_ANSWER_CACHE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message: str
    collection: str
    channel: str
    answer_mode: AnswerMode
    bypass_answer_cache: bool
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationMessage]
    identity_token: str
    def __init__(self, session_id: _Optional[str] = ..., message: _Optional[str] = ..., collection: _Optional[str] = ..., channel: _Optional[str] = ..., answer_mode: _Optional[_Union[AnswerMode, str]] = ..., bypass_answer_cache: _Optional[bool] = ..., history: _Optional[_Iterable[_Union[_common_pb2.ConversationMessage, _Mapping]]] = ..., identity_token: _Optional[str] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("session", "sources", "delta", "result")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    sources: SourcesRetrieved
    delta: AnswerDelta
    result: ChatResult
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., sources: _Optional[_Union[SourcesRetrieved, _Mapping]] = ..., delta: _Optional[_Union[AnswerDelta, _Mapping]] = ..., result: _Optional[_Union[ChatResult, _Mapping]] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "turn_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    turn_id: str
    def __init__(self, session_id: _Optional[str] = ..., turn_id: _Optional[str] = ...) -> None: ...

class SourcesRetrieved(_message.Message):
    __slots__ = ("sources", "rewritten_question")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUESTION_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[_common_pb2.Source]
    rewritten_question: str
    def __init__(self, sources: _Optional[_Iterable[_Union[_common_pb2.Source, _Mapping]]] = ..., rewritten_question: _Optional[str] = ...) -> None: ...

class AnswerDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class StageLatencies(_message.Message):
    __slots__ = ("session_ms", "rewrite_ms", "retrieval_ms", "first_token_ms", "total_ms")
    SESSION_MS_FIELD_NUMBER: _ClassVar[int]
    REWRITE_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    session_ms: float
    rewrite_ms: float
    retrieval_ms: float
    first_token_ms: float
    total_ms: float
    def __init__(self, session_ms: _Optional[float] = ..., rewrite_ms: _Optional[float] = ..., retrieval_ms: _Optional[float] = ..., first_token_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class ChatResult(_message.Message):
    __slots__ = ("turn_id", "answer", "citations", "finish_reason", "latencies", "handoff", "grounded", "completion_tokens", "rewritten_question", "answer_mode", "answer_path", "sentences_kept", "sentences_dropped", "fallback_reason", "cached", "cached_from_turn_id", "adapter", "action")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_MODE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_PATH_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_KEPT_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FROM_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    answer: str
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    finish_reason: _common_pb2.FinishReason
    latencies: StageLatencies
    handoff: bool
    grounded: bool
    completion_tokens: int
    rewritten_question: str
    answer_mode: AnswerMode
    answer_path: AnswerPath
    sentences_kept: int
    sentences_dropped: int
    fallback_reason: str
    cached: bool
    cached_from_turn_id: str
    adapter: str
    action: ActionReply
    def __init__(self, turn_id: _Optional[str] = ..., answer: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ..., finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., latencies: _Optional[_Union[StageLatencies, _Mapping]] = ..., handoff: _Optional[bool] = ..., grounded: _Optional[bool] = ..., completion_tokens: _Optional[int] = ..., rewritten_question: _Optional[str] = ..., answer_mode: _Optional[_Union[AnswerMode, str]] = ..., answer_path: _Optional[_Union[AnswerPath, str]] = ..., sentences_kept: _Optional[int] = ..., sentences_dropped: _Optional[int] = ..., fallback_reason: _Optional[str] = ..., cached: _Optional[bool] = ..., cached_from_turn_id: _Optional[str] = ..., adapter: _Optional[str] = ..., action: _Optional[_Union[ActionReply, _Mapping]] = ...) -> None: ...

class ActionReply(_message.Message):
    __slots__ = ("action", "kind", "options", "records")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    action: str
    kind: ActionReplyKind
    options: _containers.RepeatedCompositeFieldContainer[ActionOption]
    records: _containers.RepeatedCompositeFieldContainer[RecordCitation]
    def __init__(self, action: _Optional[str] = ..., kind: _Optional[_Union[ActionReplyKind, str]] = ..., options: _Optional[_Iterable[_Union[ActionOption, _Mapping]]] = ..., records: _Optional[_Iterable[_Union[RecordCitation, _Mapping]]] = ...) -> None: ...

class ActionOption(_message.Message):
    __slots__ = ("value", "label")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    value: str
    label: str
    def __init__(self, value: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class RecordCitation(_message.Message):
    __slots__ = ("action", "record", "record_id", "marker")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    MARKER_FIELD_NUMBER: _ClassVar[int]
    action: str
    record: str
    record_id: str
    marker: str
    def __init__(self, action: _Optional[str] = ..., record: _Optional[str] = ..., record_id: _Optional[str] = ..., marker: _Optional[str] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("collection", "channel", "customer_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    channel: str
    customer_id: str
    def __init__(self, collection: _Optional[str] = ..., channel: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("statuses", "collection", "page_size")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[SessionStatus]
    collection: str
    page_size: int
    def __init__(self, statuses: _Optional[_Iterable[_Union[SessionStatus, str]]] = ..., collection: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("session_id", "turn_id", "rating", "comment")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    turn_id: str
    rating: int
    comment: str
    def __init__(self, session_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., rating: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: bool
    def __init__(self, handoff: _Optional[bool] = ...) -> None: ...

class RequestHandoffRequest(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RequestHandoffResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class WatchSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class WatchSessionResponse(_message.Message):
    __slots__ = ("turn", "status", "delta")
    TURN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    turn: Turn
    status: SessionStatus
    delta: AnswerDelta
    def __init__(self, turn: _Optional[_Union[Turn, _Mapping]] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., delta: _Optional[_Union[AnswerDelta, _Mapping]] = ...) -> None: ...

class TakeOverSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class TakeOverSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class HandBackSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class HandBackSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class SendAgentReplyRequest(_message.Message):
    __slots__ = ("session_id", "message", "suggestion", "suggestions_shown")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_SHOWN_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message: str
    suggestion: str
    suggestions_shown: bool
    def __init__(self, session_id: _Optional[str] = ..., message: _Optional[str] = ..., suggestion: _Optional[str] = ..., suggestions_shown: _Optional[bool] = ...) -> None: ...

class SendAgentReplyResponse(_message.Message):
    __slots__ = ("turn", "suggestion_outcome")
    TURN_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    turn: Turn
    suggestion_outcome: str
    def __init__(self, turn: _Optional[_Union[Turn, _Mapping]] = ..., suggestion_outcome: _Optional[str] = ...) -> None: ...

class SuggestRepliesRequest(_message.Message):
    __slots__ = ("session_id", "count")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    count: int
    def __init__(self, session_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SuggestedReply(_message.Message):
    __slots__ = ("text", "citations", "sources", "answer_path")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_PATH_FIELD_NUMBER: _ClassVar[int]
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    sources: _containers.RepeatedCompositeFieldContainer[_common_pb2.Source]
    answer_path: AnswerPath
    def __init__(self, text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ..., sources: _Optional[_Iterable[_Union[_common_pb2.Source, _Mapping]]] = ..., answer_path: _Optional[_Union[AnswerPath, str]] = ...) -> None: ...

class SuggestRepliesResponse(_message.Message):
    __slots__ = ("suggestions", "sources", "proposed_action")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_ACTION_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[SuggestedReply]
    sources: _containers.RepeatedCompositeFieldContainer[_common_pb2.Source]
    proposed_action: ProposedAction
    def __init__(self, suggestions: _Optional[_Iterable[_Union[SuggestedReply, _Mapping]]] = ..., sources: _Optional[_Iterable[_Union[_common_pb2.Source, _Mapping]]] = ..., proposed_action: _Optional[_Union[ProposedAction, _Mapping]] = ...) -> None: ...

class SummarizeSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SummarizeSessionResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: str
    def __init__(self, summary: _Optional[str] = ...) -> None: ...

class GetSessionCaseRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSessionCaseResponse(_message.Message):
    __slots__ = ("records", "proposed_action")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_ACTION_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[CaseRecord]
    proposed_action: ProposedAction
    def __init__(self, records: _Optional[_Iterable[_Union[CaseRecord, _Mapping]]] = ..., proposed_action: _Optional[_Union[ProposedAction, _Mapping]] = ...) -> None: ...

class CaseRecord(_message.Message):
    __slots__ = ("action", "record", "record_id", "marker", "fields", "read_time")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    MARKER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    action: str
    record: str
    record_id: str
    marker: str
    fields: _containers.RepeatedCompositeFieldContainer[CaseField]
    read_time: _timestamp_pb2.Timestamp
    def __init__(self, action: _Optional[str] = ..., record: _Optional[str] = ..., record_id: _Optional[str] = ..., marker: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[CaseField, _Mapping]]] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaseField(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class ProposedAction(_message.Message):
    __slots__ = ("proposal_id", "action", "description", "parameters", "state", "expire_time", "confirmed_by", "drafted")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_BY_FIELD_NUMBER: _ClassVar[int]
    DRAFTED_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    action: str
    description: str
    parameters: _containers.ScalarMap[str, str]
    state: ProposalState
    expire_time: _timestamp_pb2.Timestamp
    confirmed_by: str
    drafted: bool
    def __init__(self, proposal_id: _Optional[str] = ..., action: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., state: _Optional[_Union[ProposalState, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., confirmed_by: _Optional[str] = ..., drafted: _Optional[bool] = ...) -> None: ...

class ApproveActionRequest(_message.Message):
    __slots__ = ("session_id", "proposal_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    proposal_id: str
    def __init__(self, session_id: _Optional[str] = ..., proposal_id: _Optional[str] = ...) -> None: ...

class ApproveActionResponse(_message.Message):
    __slots__ = ("turn", "action", "answer")
    TURN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    turn: Turn
    action: ActionReply
    answer: str
    def __init__(self, turn: _Optional[_Union[Turn, _Mapping]] = ..., action: _Optional[_Union[ActionReply, _Mapping]] = ..., answer: _Optional[str] = ...) -> None: ...
