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
    # Collections whose model is English-only keep a vector of the multilingual model beside
    # their own on every point, so a Korean question finds the English help center
    # (bench/retrieval_quality.py, cross-lingual section; its cost: bench/ingest_bench.py).
    multilingual_vector: bool = True
    # A question searched with that vector moves toward its best few passages first (pseudo-
    # relevance feedback; KnowledgeBase.feedback_query has the evidence). 0 turns it off.
    cross_lingual_feedback_passages: int = Field(default=3, ge=0, le=20)
    cross_lingual_feedback_weight: float = Field(default=0.2, ge=0, le=2)
    embedding_batch_size: int = Field(default=64, ge=1)
    # A batch of the sentence-transformers model also stays under this many padded tokens (its
    # longest text x its texts): the model's activations grow with the batch's padded size, and
    # each size they take stays in the process's heap (services/retriever/memory.py; README,
    # "Benchmarks", the ingest row). 0: batches of embedding_batch_size texts, whatever their length.
    embedding_batch_tokens: int = Field(default=4096, ge=0)
    # glibc's mmap threshold, fixed at start when not 0 (services/retriever/memory.py): blocks of
    # this size and more are mapped on their own and go back to the system when freed. 0 (the
    # default) leaves glibc's dynamic threshold, and the trim below hands back what the heaps keep.
    # Whole LibreOffice help, both vectors (bench/ingest_bench.py --per-document 0, one machine):
    # fixed at 128 KiB 430 s, peak 1,896 MB; 0 with the trim 389 s, peak 1,854 MB (every model
    # activation mapped afresh and faulted in cost the embedders 20%: 64.8 -> 51.6 chunks/s alone).
    malloc_mmap_threshold_bytes: int = Field(default=0, ge=0, le=32 * 1024 * 1024)
    # After each ingest group is stored, glibc hands its heaps' free pages back (malloc_trim), so
    # the heap that grew for the model's activations does not keep what it grew to.
    malloc_trim_after_commit: bool = True
    # The ingest pipeline (services/retriever/ingestion.py): threads that parse and chunk while
    # the models embed (when ingest_parse_processes is 0, or the model offers no tokenizer a
    # worker process can load), documents in flight through them, and chunks embedded and
    # upserted as one group (across documents; bench/ingest_bench.py).
    ingest_parse_workers: int = Field(default=2, ge=1)
    # Processes that parse and chunk instead of those threads (services/retriever/parse_processes.py):
    # in threads the parsing took the GIL from the model's Python side. 0: the threads above.
    # Whole LibreOffice help, both vectors (bench/ingest_bench.py --per-document 0 --embed-sample
    # 1500, 2 cores, same machine, two runs each): threads 515 / 475 s, 35.4 / 38.4 chunks/s, 88% /
    # 73% of the embedders alone, retriever peak RSS 1,930 / 1,981 MB; 2 processes 395 / 371 s,
    # 46.1 / 49.1 chunks/s, - / 82% (the first run's embedders were timed beside another job),
    # peak 1,740 / 1,932 MB and 56-59 MB per worker; hit@5 0.80 in all four. 1 process: not run.
    ingest_parse_processes: int = Field(default=2, ge=0)
    # A document a parse process spends longer on fails (the process is stopped and replaced).
    ingest_parse_timeout_s: float = Field(default=300.0, gt=0)
    ingest_parse_window: int = Field(default=96, ge=2)
    ingest_embed_chunks: int = Field(default=256, ge=1)
    # Documents (and their bytes) a server takes from one Ingest call before it commits them,
    # whatever a client sends in one call: what bounds the retriever's memory.
    ingest_call_window_documents: int = Field(default=256, ge=1)
    ingest_call_window_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
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
    # For a "how do I" question, a procedure (steps, menu paths) goes ahead of a passage that is
    # not one and is at most this much more similar (cosine) (knowledge_base.prefer_procedures).
    # On the LibreOffice dev set (`bench/retrieval_quality.py --sets libreoffice`, 20 how-to
    # questions): off 0.55 hit@1 / 0.95 hit@5 / 0.727 MRR; 0.05: 0.65 / 1.00 / 0.783; 0.1 and
    # 0.2: 0.65 / 0.95 / 0.779 (one question apart: a dev-set choice, not yet confirmed held out).
    procedure_margin: float = Field(default=0.05, ge=0, le=2)
    # Sentence embeddings kept for highlights (SearchRequest.include_highlights), and the words of
    # returned passages an unknown query word is compared with (SearchResponse.unknown_terms).
    highlight_cache_size: int = Field(default=20000, ge=0)
    # Candidates each ranking contributes to fusion, as a multiple of top_k.
    candidate_factor: int = Field(default=4, ge=1, le=20)
    max_query_chars: int = Field(default=2000, ge=1)

    # Chunk size and overlap, in tokens of the embedding model's tokenizer.
    chunk_tokens: int = Field(default=200, ge=16)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    # A numbered procedure of up to this many tokens stays whole in one chunk, past the dense
    # model's window if need be (its first steps say what it does; BM25 indexes every word): split
    # with the usual budget, "12. Click Insert Slides." of LibreOffice's photo album went to a
    # chunk of its own that the question did not retrieve. 0 vs 400 on the dev sets (README,
    # "A numbered procedure stays in one chunk"): answer key facts libreoffice-id 0.525 -> 0.550,
    # the nine others the same; retrieval hit@1 libreoffice 0.650 -> 0.750, libreoffice-wc-ko hit@5
    # 0.583 -> 0.542. 0: procedures are split like any text.
    procedure_chunk_tokens: int = Field(default=400, ge=0)
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
