"""The document types supportbot ingests and the ids documents get, shared by the retriever and
its clients."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path, PurePosixPath

from supportbot.v1 import retriever_pb2

MIME_BY_SUFFIX = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".pdf": "application/pdf",
}

MAX_DOCUMENT_ID_CHARS = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(part: str) -> str:
    return _UNSAFE.sub("-", part).strip("-.")


def document_id_for(path: str | Path, root: str | Path | None = None) -> str:
    """A document's id: its path relative to the folder given to ingest, POSIX separators, without
    the file extension ("text/scalc/guide/formula_view"), so pages of one name in different
    folders stay apart; a file given by itself (no root) keeps its stem."""
    posix = PurePosixPath(str(path).replace("\\", "/"))
    if root is not None:
        posix = posix.relative_to(PurePosixPath(str(root).replace("\\", "/")))
    parts = [*posix.parent.parts, posix.stem] if root is not None else [posix.stem]
    slug = "/".join(s for s in (_slug(p) for p in parts if p not in ("", ".", "/")) if s)
    return slug[:MAX_DOCUMENT_ID_CHARS] or "document"


def legacy_document_id(source_path: str) -> str:
    """The id collections built before relative ids gave a document: its file stem alone (a
    re-ingest finds such a document under it and moves it to its new id)."""
    return document_id_for(source_path)


def same_source(stored: str, incoming: str, document_id: str) -> bool:
    """Whether two sources of one document id are the same document: the same path or URL, or
    the same file under a folder that moved (both paths end in the id and the same extension).
    Sources recorded as "" (collections from before sources were recorded) match any."""
    if not stored or not incoming or stored == incoming:
        return True
    if "://" in stored or "://" in incoming:
        return False
    a, b = PurePosixPath(stored.replace("\\", "/")), PurePosixPath(incoming.replace("\\", "/"))
    tail = f"/{document_id}"
    return a.suffix == b.suffix and str(a.with_suffix("")).endswith(tail) and str(b.with_suffix("")).endswith(tail)


class IngestStatus(StrEnum):
    """What ingesting a document did, as the retriever's knowledge base reports it and as the
    IngestResponse sends it (retriever.proto's IngestStatus)."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"

    def to_pb(self) -> retriever_pb2.IngestStatus:
        return _INGEST_STATUS_TO_PB[self]

    @classmethod
    def from_pb(cls, value: int) -> IngestStatus:
        """A status from the wire; one this client does not know counts as failed."""
        return _PB_TO_INGEST_STATUS.get(value, cls.FAILED)


_INGEST_STATUS_TO_PB: dict[IngestStatus, retriever_pb2.IngestStatus] = {
    IngestStatus.ADDED: retriever_pb2.INGEST_STATUS_ADDED,
    IngestStatus.UPDATED: retriever_pb2.INGEST_STATUS_UPDATED,
    IngestStatus.UNCHANGED: retriever_pb2.INGEST_STATUS_UNCHANGED,
    IngestStatus.FAILED: retriever_pb2.INGEST_STATUS_FAILED,
}
_PB_TO_INGEST_STATUS: dict[int, IngestStatus] = {v: k for k, v in _INGEST_STATUS_TO_PB.items()}
