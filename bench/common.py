"""Helpers the benchmarks share: an in-process knowledge base over the sample help center."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from services.retriever.embedding import Embedders, SparseEmbedder  # noqa: E402
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase  # noqa: E402
from services.retriever.server import build_knowledge_base, build_store  # noqa: E402
from services.retriever.settings import RetrieverSettings  # noqa: E402
from supportbot.client import documents_from_paths  # noqa: E402
from supportbot.sample import HELPCENTER  # noqa: E402


def sample_knowledge_base(
    backend: str = "edge", data_dir: Path | None = None, folder: Path = HELPCENTER, collection: str = "", **settings: object
) -> KnowledgeBase:
    """A help center ingested as the product does by default (the sample into the default
    collection), with any settings changed."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="supportbot-bench-"))
    extra = {"qdrant_location": ":memory:"} if backend == "server" else {}
    kb = build_knowledge_base(RetrieverSettings(data_dir=data_dir, backend=backend, **extra, **settings))  # type: ignore[arg-type]
    documents = (DocumentInput(d.content, d.source_path, d.document_id) for _, d in documents_from_paths([folder]))
    for _ in kb.ingest_many(collection, documents):
        pass
    kb.finish_ingest(collection)
    return kb


def knowledge_base(
    folders: list[tuple[Path, str]],
    model: str,
    embedders: Embedders,
    *,
    morphology: bool = True,
    data_dir: Path | None = None,
) -> KnowledgeBase:
    """One collection ("kb") built with `model` from folders, each with a document id prefix
    (a mixed-language collection holds both help centers, whose articles share ids)."""
    # One model alone: no multilingual vector beside it (sample_knowledge_base builds the default).
    settings = RetrieverSettings(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="supportbot-bench-")),
                                 collection_models={"kb": model}, multilingual_vector=False)
    kb = KnowledgeBase(settings, build_store(settings), embedders.get(""), SparseEmbedder(morphology), embedders)
    for folder, prefix in folders:
        for path, document in documents_from_paths([folder]):
            kb.ingest("kb", DocumentInput(content=document.content, source_path=str(path), document_id=prefix + document.document_id))
    kb.finish_ingest("kb")
    return kb
