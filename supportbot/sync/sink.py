"""Where synced documents go: the one adapter between a sync and the retriever's ingest, the
client's batched entry point (bounded calls, each retried after a transient failure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from supportbot.client import IngestReport, SupportbotClient
from supportbot.v1 import retriever_pb2


@dataclass(frozen=True)
class WebDocument:
    """One page or article: what ingest needs, and nothing a sync alone knows."""

    document_id: str
    url: str  # canonical URL: the citation link
    content: bytes
    mime_type: str
    title: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


async def ingest_documents(client: SupportbotClient, documents: Iterable[WebDocument], collection: str) -> IngestReport:
    return await client.ingest_documents(
        (
            retriever_pb2.Document(
                document_id=d.document_id, source_path=d.url, url=d.url, mime_type=d.mime_type, content=d.content,
                title=d.title, metadata=d.metadata,
            )
            for d in documents
        ),
        collection=collection,
    )


async def delete_documents(client: SupportbotClient, document_ids: list[str], collection: str) -> int:
    if not document_ids:
        return 0
    response = await client.delete_documents(document_ids, collection=collection)
    return response.deleted_documents
