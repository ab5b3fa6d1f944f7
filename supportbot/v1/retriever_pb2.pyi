from supportbot.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_SPARSE: _ClassVar[SearchMode]

class IngestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INGEST_STATUS_UNSPECIFIED: _ClassVar[IngestStatus]
    INGEST_STATUS_ADDED: _ClassVar[IngestStatus]
    INGEST_STATUS_UPDATED: _ClassVar[IngestStatus]
    INGEST_STATUS_UNCHANGED: _ClassVar[IngestStatus]
    INGEST_STATUS_FAILED: _ClassVar[IngestStatus]

class Embedder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMBEDDER_UNSPECIFIED: _ClassVar[Embedder]
    EMBEDDER_PRIMARY: _ClassVar[Embedder]
    EMBEDDER_MULTILINGUAL: _ClassVar[Embedder]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_SPARSE: SearchMode
INGEST_STATUS_UNSPECIFIED: IngestStatus
INGEST_STATUS_ADDED: IngestStatus
INGEST_STATUS_UPDATED: IngestStatus
INGEST_STATUS_UNCHANGED: IngestStatus
INGEST_STATUS_FAILED: IngestStatus
EMBEDDER_UNSPECIFIED: Embedder
EMBEDDER_PRIMARY: Embedder
EMBEDDER_MULTILINGUAL: Embedder

class SearchRequest(_message.Message):
    __slots__ = ("query", "collection", "top_k", "score_threshold", "filter", "mode", "mmr", "mmr_lambda", "include_query_embedding", "include_highlights")
    class FilterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    QUERY_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MMR_FIELD_NUMBER: _ClassVar[int]
    MMR_LAMBDA_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_QUERY_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    query: str
    collection: str
    top_k: int
    score_threshold: float
    filter: _containers.ScalarMap[str, str]
    mode: SearchMode
    mmr: bool
    mmr_lambda: float
    include_query_embedding: bool
    include_highlights: bool
    def __init__(self, query: _Optional[str] = ..., collection: _Optional[str] = ..., top_k: _Optional[int] = ..., score_threshold: _Optional[float] = ..., filter: _Optional[_Mapping[str, str]] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., mmr: _Optional[bool] = ..., mmr_lambda: _Optional[float] = ..., include_query_embedding: _Optional[bool] = ..., include_highlights: _Optional[bool] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "embed_ms", "search_ms", "collection", "query_embedding", "embedding_model", "unknown_terms")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_MS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_TERMS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.Source]
    embed_ms: float
    search_ms: float
    collection: str
    query_embedding: _containers.RepeatedScalarFieldContainer[float]
    embedding_model: str
    unknown_terms: _containers.RepeatedCompositeFieldContainer[UnknownTerm]
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.Source, _Mapping]]] = ..., embed_ms: _Optional[float] = ..., search_ms: _Optional[float] = ..., collection: _Optional[str] = ..., query_embedding: _Optional[_Iterable[float]] = ..., embedding_model: _Optional[str] = ..., unknown_terms: _Optional[_Iterable[_Union[UnknownTerm, _Mapping]]] = ...) -> None: ...

class UnknownTerm(_message.Message):
    __slots__ = ("term", "nearest_word", "nearest_similarity")
    TERM_FIELD_NUMBER: _ClassVar[int]
    NEAREST_WORD_FIELD_NUMBER: _ClassVar[int]
    NEAREST_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    term: str
    nearest_word: str
    nearest_similarity: float
    def __init__(self, term: _Optional[str] = ..., nearest_word: _Optional[str] = ..., nearest_similarity: _Optional[float] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "source_path", "mime_type", "content", "title", "metadata", "url")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    source_path: str
    mime_type: str
    content: bytes
    title: str
    metadata: _containers.ScalarMap[str, str]
    url: str
    def __init__(self, document_id: _Optional[str] = ..., source_path: _Optional[str] = ..., mime_type: _Optional[str] = ..., content: _Optional[bytes] = ..., title: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., url: _Optional[str] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("collection", "document", "more_batches")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    MORE_BATCHES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document: Document
    more_batches: bool
    def __init__(self, collection: _Optional[str] = ..., document: _Optional[_Union[Document, _Mapping]] = ..., more_batches: _Optional[bool] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("document_id", "source_path", "status", "chunks", "error", "collection", "version", "migrated_from", "stage_seconds")
    class StageSecondsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MIGRATED_FROM_FIELD_NUMBER: _ClassVar[int]
    STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    source_path: str
    status: IngestStatus
    chunks: int
    error: str
    collection: str
    version: int
    migrated_from: str
    stage_seconds: _containers.ScalarMap[str, float]
    def __init__(self, document_id: _Optional[str] = ..., source_path: _Optional[str] = ..., status: _Optional[_Union[IngestStatus, str]] = ..., chunks: _Optional[int] = ..., error: _Optional[str] = ..., collection: _Optional[str] = ..., version: _Optional[int] = ..., migrated_from: _Optional[str] = ..., stage_seconds: _Optional[_Mapping[str, float]] = ...) -> None: ...

class DeleteDocumentsRequest(_message.Message):
    __slots__ = ("collection", "document_ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., document_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteDocumentsResponse(_message.Message):
    __slots__ = ("deleted_documents", "deleted_chunks")
    DELETED_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    deleted_documents: int
    deleted_chunks: int
    def __init__(self, deleted_documents: _Optional[int] = ..., deleted_chunks: _Optional[int] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("texts", "embedder")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    embedder: Embedder
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., embedder: _Optional[_Union[Embedder, str]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("vectors", "model")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    model: str
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., model: _Optional[str] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class CollectionStats(_message.Message):
    __slots__ = ("name", "documents", "chunks", "embedding_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    documents: int
    chunks: int
    embedding_model: str
    def __init__(self, name: _Optional[str] = ..., documents: _Optional[int] = ..., chunks: _Optional[int] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("collections", "embedding_model", "embedding_dimension", "backend")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionStats]
    embedding_model: str
    embedding_dimension: int
    backend: str
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionStats, _Mapping]]] = ..., embedding_model: _Optional[str] = ..., embedding_dimension: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...
