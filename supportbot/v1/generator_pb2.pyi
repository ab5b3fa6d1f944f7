from supportbot.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("question", "sources", "history", "messages", "max_tokens", "temperature", "json_schema", "adapter", "disable_stop_strings", "request_id", "repetition_penalty", "allow_repetition", "language", "collection")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    DISABLE_STOP_STRINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REPETITION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_REPETITION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    question: str
    sources: _containers.RepeatedCompositeFieldContainer[_common_pb2.Source]
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationMessage]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ConversationMessage]
    max_tokens: int
    temperature: float
    json_schema: str
    adapter: str
    disable_stop_strings: bool
    request_id: str
    repetition_penalty: float
    allow_repetition: bool
    language: str
    collection: str
    def __init__(self, question: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[_common_pb2.Source, _Mapping]]] = ..., history: _Optional[_Iterable[_Union[_common_pb2.ConversationMessage, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ConversationMessage, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., json_schema: _Optional[str] = ..., adapter: _Optional[str] = ..., disable_stop_strings: _Optional[bool] = ..., request_id: _Optional[str] = ..., repetition_penalty: _Optional[float] = ..., allow_repetition: _Optional[bool] = ..., language: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("delta", "result")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    delta: TextDelta
    result: GenerateResult
    def __init__(self, delta: _Optional[_Union[TextDelta, _Mapping]] = ..., result: _Optional[_Union[GenerateResult, _Mapping]] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class GenerateResult(_message.Message):
    __slots__ = ("text", "citations", "finish_reason", "prompt_tokens", "completion_tokens", "time_to_first_token_ms", "total_ms", "sources_used", "history_messages_used", "adapter")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_USED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_MESSAGES_USED_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Citation]
    finish_reason: _common_pb2.FinishReason
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float
    total_ms: float
    sources_used: int
    history_messages_used: int
    adapter: str
    def __init__(self, text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_common_pb2.Citation, _Mapping]]] = ..., finish_reason: _Optional[_Union[_common_pb2.FinishReason, str]] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., time_to_first_token_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., sources_used: _Optional[int] = ..., history_messages_used: _Optional[int] = ..., adapter: _Optional[str] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("model", "engine", "engine_version", "device", "dtype", "max_model_len", "kernels", "stopping", "max_tokens_limit", "max_queued_requests", "adapters", "kv_cache_bytes", "collection_adapters", "lora_enabled")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_MODEL_LEN_FIELD_NUMBER: _ClassVar[int]
    KERNELS_FIELD_NUMBER: _ClassVar[int]
    STOPPING_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ADAPTERS_FIELD_NUMBER: _ClassVar[int]
    LORA_ENABLED_FIELD_NUMBER: _ClassVar[int]
    model: str
    engine: str
    engine_version: str
    device: str
    dtype: str
    max_model_len: int
    kernels: KernelSettings
    stopping: StopSettings
    max_tokens_limit: int
    max_queued_requests: int
    adapters: _containers.RepeatedScalarFieldContainer[str]
    kv_cache_bytes: int
    collection_adapters: _containers.RepeatedScalarFieldContainer[str]
    lora_enabled: bool
    def __init__(self, model: _Optional[str] = ..., engine: _Optional[str] = ..., engine_version: _Optional[str] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., max_model_len: _Optional[int] = ..., kernels: _Optional[_Union[KernelSettings, _Mapping]] = ..., stopping: _Optional[_Union[StopSettings, _Mapping]] = ..., max_tokens_limit: _Optional[int] = ..., max_queued_requests: _Optional[int] = ..., adapters: _Optional[_Iterable[str]] = ..., kv_cache_bytes: _Optional[int] = ..., collection_adapters: _Optional[_Iterable[str]] = ..., lora_enabled: _Optional[bool] = ...) -> None: ...

class KernelSettings(_message.Message):
    __slots__ = ("enforce_eager", "compilation_mode", "cudagraph_mode", "fusion_passes", "attention_backend", "custom_ops")
    ENFORCE_EAGER_FIELD_NUMBER: _ClassVar[int]
    COMPILATION_MODE_FIELD_NUMBER: _ClassVar[int]
    CUDAGRAPH_MODE_FIELD_NUMBER: _ClassVar[int]
    FUSION_PASSES_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_BACKEND_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_OPS_FIELD_NUMBER: _ClassVar[int]
    enforce_eager: bool
    compilation_mode: str
    cudagraph_mode: str
    fusion_passes: _containers.RepeatedScalarFieldContainer[str]
    attention_backend: str
    custom_ops: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enforce_eager: _Optional[bool] = ..., compilation_mode: _Optional[str] = ..., cudagraph_mode: _Optional[str] = ..., fusion_passes: _Optional[_Iterable[str]] = ..., attention_backend: _Optional[str] = ..., custom_ops: _Optional[_Iterable[str]] = ...) -> None: ...

class StopSettings(_message.Message):
    __slots__ = ("stop_strings", "stop_token_ids", "default_max_tokens")
    STOP_STRINGS_FIELD_NUMBER: _ClassVar[int]
    STOP_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    stop_strings: _containers.RepeatedScalarFieldContainer[str]
    stop_token_ids: _containers.RepeatedScalarFieldContainer[int]
    default_max_tokens: int
    def __init__(self, stop_strings: _Optional[_Iterable[str]] = ..., stop_token_ids: _Optional[_Iterable[int]] = ..., default_max_tokens: _Optional[int] = ...) -> None: ...
