from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from supportbot.core.settings import ServiceSettings


class RetrieverSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_RETRIEVER_", extra="ignore")

    port: int = 50052
    metrics_port: int = 9102

    # A sentence-transformers model name or path; empty means the bundled all-MiniLM-L6-v2. It
    # builds English collections. A collection records the model that built it and is always
    # searched with that one; ingesting with another is refused.
    embedding_model: str = ""
    # For collections whose first document is not English: "use-multilingual-v3" (Google's
    # universal-sentence-encoder-multilingual, installed with the retriever, no hub needed), or a
    # sentence-transformers model such as sentence-transformers/paraphrase-multilingual-mpnet-base-v2
    # or intfloat/multilingual-e5-base in production.
    multilingual_embedding_model: str = "use-multilingual-v3"
    # Explicit choices per collection, e.g. {"helpcenter-ko": "use-multilingual-v3"} (JSON).
    collection_models: dict[str, str] = Field(default_factory=dict)
    embedding_batch_size: int = Field(default=64, ge=1)
    # Query embeddings kept in memory so repeated questions skip the model.
    query_cache_size: int = Field(default=4096, ge=0)

    # "edge": Qdrant's engine in-process, on disk under data_dir/qdrant.
    # "server": a Qdrant server or cluster through qdrant-client (qdrant_url), or qdrant-client's
    # local mode when qdrant_location is set (":memory:" or a path).
    backend: Literal["edge", "server"] = "edge"
    qdrant_url: str = "http://127.0.0.1:6333"
    qdrant_api_key: str | None = None
    qdrant_prefer_grpc: bool = True
    qdrant_location: str | None = None
    # Collection layout on a Qdrant cluster, applied when the retriever creates a collection:
    # shards spread a collection over the cluster's nodes (set it to a multiple of the node
    # count), each shard is kept on replication_factor nodes, and a write succeeds once
    # write_consistency_factor replicas have it.
    shard_number: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    write_consistency_factor: int = Field(default=1, ge=1)
    index_path: Path | None = None

    default_collection: str = "helpcenter"
    default_top_k: int = Field(default=5, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    # Minimum cosine similarity of a result to the question; below it a result is not relevant.
    # Tuned on the sample golden set (bench/retrieval_quality.py): every answerable question's
    # best match scores above it.
    score_threshold: float = 0.27
    # The same per model where its similarities run lower or higher. The multilingual encoder's
    # run lower: at 0.15 all four unanswerable Korean golden questions fall below it and 40 of the
    # 42 answerable ones keep their article (bench/retrieval_quality.py).
    model_score_thresholds: dict[str, float] = Field(default_factory=lambda: {"use-multilingual-v3": 0.15})
    # Reciprocal-rank fusion of the dense and the BM25 ranking. A small k lets a passage that
    # one ranking puts first beat passages that both rank middling, and the dense ranking counts
    # double: on the golden set this makes hybrid at least as good as dense-only on every metric
    # (the textbook k=60 with equal weights lost 5 points of hit rate@1; bench/retrieval_quality.py).
    rrf_k: int = Field(default=2, ge=1)
    dense_weight: float = Field(default=2.0, gt=0)
    sparse_weight: float = Field(default=1.0, gt=0)
    # In a collection of several languages, a result in the question's language goes ahead of a
    # result in another language whose cosine is at most this much higher (see prefer_language).
    language_margin: float = Field(default=0.1, ge=0, le=2)
    # Candidates each ranking contributes to fusion, as a multiple of top_k.
    candidate_factor: int = Field(default=4, ge=1, le=20)
    max_query_chars: int = Field(default=2000, ge=1)

    # Chunk size and overlap, in tokens of the embedding model's tokenizer.
    chunk_tokens: int = Field(default=200, ge=16)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    # When set, callers need an API key from this file: any role may search, only admin may
    # ingest, delete and read stats.
    api_keys_file: Path | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> RetrieverSettings:
        if self.write_consistency_factor > self.replication_factor:
            raise ValueError(
                f"write_consistency_factor ({self.write_consistency_factor}) cannot exceed "
                f"replication_factor ({self.replication_factor})"
            )
        return self

    def threshold_for(self, model: str) -> float:
        return self.model_score_thresholds.get(model, self.score_threshold)

    def resolved_index_path(self) -> Path:
        return self.index_path or self.data_dir / "qdrant"
