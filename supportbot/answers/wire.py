"""Sources and citations to and from their protobuf messages: what each service calls at its
edge (the gateway's `convert.py`, the generator's server), so the logic sees only
`supportbot.answers.sources` types."""

from __future__ import annotations

from collections.abc import Iterable

from supportbot.answers.grounding import Highlight
from supportbot.answers.sources import Citation, Source
from supportbot.v1 import common_pb2


def source_from_message(message: common_pb2.Source) -> Source:
    return Source(
        chunk_id=message.chunk_id, document_id=message.document_id, title=message.title,
        heading_path=tuple(message.heading_path), url=message.url, collection=message.collection, text=message.text,
        score=message.score, dense_score=message.dense_score, sparse_score=message.sparse_score,
        metadata=dict(message.metadata), content_hash=message.content_hash, document_version=message.document_version,
        language=message.language,
        highlights=tuple(Highlight(h.text, h.score, h.start, h.end) for h in message.highlights),
    )


def source_message(source: Source) -> common_pb2.Source:
    return common_pb2.Source(
        chunk_id=source.chunk_id, document_id=source.document_id, title=source.title,
        heading_path=source.heading_path, url=source.url, collection=source.collection, text=source.text,
        score=source.score, dense_score=source.dense_score, sparse_score=source.sparse_score,
        metadata=dict(source.metadata), content_hash=source.content_hash, document_version=source.document_version,
        language=source.language,
        highlights=[common_pb2.Highlight(text=h.text, score=h.score, start=h.start, end=h.end) for h in source.highlights],
    )


def citation_from_message(message: common_pb2.Citation) -> Citation:
    return Citation(
        index=message.index, chunk_id=message.chunk_id, document_id=message.document_id, title=message.title,
        url=message.url, sections=tuple(message.sections),
    )


def citation_message(citation: Citation) -> common_pb2.Citation:
    return common_pb2.Citation(
        index=citation.index, chunk_id=citation.chunk_id, document_id=citation.document_id, title=citation.title,
        url=citation.url, sections=citation.sections,
    )


def sources_from_messages(messages: Iterable[common_pb2.Source]) -> list[Source]:
    return [source_from_message(message) for message in messages]


def source_messages(sources: Iterable[Source]) -> list[common_pb2.Source]:
    return [source_message(source) for source in sources]


def citation_messages(citations: Iterable[Citation]) -> list[common_pb2.Citation]:
    return [citation_message(citation) for citation in citations]
