"""Retriever benchmarks, printed side by side (figures, not assertions):

1. Ingest rate (chunks/s, parsing, embedding and storage included) on the sample help center and
   on a synthetic corpus (default 100k chunks).
2. Search latency p50/p95 at 10k and 100k chunks, with the query embedding excluded and included,
   for the embedded engine (qdrant-edge-py) and qdrant-client's local mode in the same run.
3. The English embedder (all-MiniLM-L6-v2) beside the multilingual one (universal-sentence-encoder-
   multilingual v3) on the English and the Korean sample help centers: ingest rate, and whole
   search latency (query embedding, Korean morphology and search) over the golden questions.

4. Search with and without highlights (every result's sentences scored against the question with
   the collection's embedder) on the sample help centers: the added latency, with the sentence
   cache cold (first pass over the golden questions) and warm (second pass), the two variants
   alternating question by question.

Run: python bench/retriever_bench.py [--ingest-chunks 100000] [--sizes 10000,100000] [--only models,highlights]
Target: search p95 under 5 ms at 100k chunks with the embedded engine (embedding excluded).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import knowledge_base, sample_knowledge_base  # noqa: E402
from services.retriever.embedding import (  # noqa: E402
    DEFAULT_MODEL,
    MULTILINGUAL_USE,
    DenseEmbedder,
    Embedders,
    SparseEmbedder,
)
from services.retriever.stores import EdgeStore, QdrantServerStore, QueryPlan, StoredPoint, point_id  # noqa: E402
from supportbot.sample import HELPCENTER, KOREAN_GOLDEN_SET, KOREAN_HELPCENTER, load_golden_set  # noqa: E402

console = Console()
TOPICS = ["refund", "invoice", "password", "hub", "bulb", "shipping", "return", "warranty", "schedule", "alexa"]
VERBS = ["reset", "cancel", "update", "track", "connect", "download", "replace", "pair", "export", "change"]


def synthetic_text(rng: random.Random, index: int) -> str:
    topic, verb = rng.choice(TOPICS), rng.choice(VERBS)
    days = rng.randint(1, 30)
    return (
        f"Article {index}: how to {verb} your {topic}. Open the Lumio app, go to Settings and choose "
        f"{verb.capitalize()} {topic}. It takes about {days} days. If it fails, restart the {topic} "
        f"and try again, or contact support with reference {index * 7919 % 100003}."
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_ingest(dense: DenseEmbedder, sparse: SparseEmbedder, chunks: int) -> list[tuple[str, int, float]]:
    rows = []
    started = time.perf_counter()
    kb = sample_knowledge_base("edge")
    sample_chunks = kb.stats()[0][2]
    rows.append(("sample help center (edge)", sample_chunks, time.perf_counter() - started))
    kb.store.close()

    rng = random.Random(7)
    store = EdgeStore(Path(tempfile.mkdtemp(prefix="supportbot-ingest-")))
    store.ensure_collection("bench", dense.dimension)
    batch = 512
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"embedding and storing {chunks} synthetic chunks", total=chunks)
        for offset in range(0, chunks, batch):
            texts = [synthetic_text(rng, i) for i in range(offset, min(offset + batch, chunks))]
            vectors = dense.embed_documents(texts)
            store.upsert(
                "bench",
                [
                    StoredPoint(point_id(f"bench/{offset + i}", "h"), v.tolist(), sparse.embed_document(t), {"document_id": str(offset + i), "text": t})
                    for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
                ],
            )
            progress.advance(task, len(texts))
        store.optimize("bench")
    rows.append(("synthetic corpus (edge, HNSW built)", chunks, time.perf_counter() - started))
    store.close()
    return rows


def fill(store, size: int, dense_dim: int, sparse: SparseEmbedder) -> float:  # type: ignore[no-untyped-def]
    """Random unit vectors stand in for embeddings: search cost does not depend on what they mean."""
    rng = np.random.default_rng(size)
    text_rng = random.Random(size)
    store.ensure_collection("bench", dense_dim)
    started = time.perf_counter()
    for offset in range(0, size, 2000):
        count = min(2000, size - offset)
        vectors = rng.standard_normal((count, dense_dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [synthetic_text(text_rng, offset + i) for i in range(count)]
        store.upsert(
            "bench",
            [
                StoredPoint(point_id(f"bench/{offset + i}", "h"), vectors[i].tolist(), sparse.embed_document(texts[i]), {"document_id": str(offset + i), "text": texts[i]})
                for i in range(count)
            ],
        )
    store.optimize("bench")
    return time.perf_counter() - started


def bench_search(dense: DenseEmbedder, sparse: SparseEmbedder, sizes: list[int]) -> list[tuple]:
    questions = [item["question"] for item in load_golden_set()]
    rows = []
    for size in sizes:
        stores = {
            "edge (in-process engine)": EdgeStore(Path(tempfile.mkdtemp(prefix="supportbot-search-"))),
            "qdrant-client local mode": QdrantServerStore(location=":memory:"),
        }
        for name, store in stores.items():
            with console.status(f"loading {size} chunks into {name}"):
                load_s = fill(store, size, dense.dimension, sparse)
            excluded, included = [], []
            for mode in ("hybrid",):
                for repeat in range(3):
                    for question in questions:
                        t0 = time.perf_counter()
                        vector = dense.model.encode([question], normalize_embeddings=True)[0].tolist()
                        sparse_vector = sparse.embed_query(question)
                        t1 = time.perf_counter()
                        store.query("bench", QueryPlan(vector, sparse_vector, mode, 5, {}, None, (2.0, 1.0), 2, 4))
                        t2 = time.perf_counter()
                        if repeat:  # the first pass warms caches
                            excluded.append((t2 - t1) * 1000)
                            included.append((t2 - t0) * 1000)
            rows.append((size, name, load_s, percentile(excluded, 50), percentile(excluded, 95), percentile(included, 50), percentile(included, 95)))
            store.close()
    return rows


def bench_models() -> list[tuple[str, str, int, float, float, float]]:
    """(help center, model, chunks, ingest seconds, search p50 ms, search p95 ms)."""
    embedders = Embedders()
    for name in (DEFAULT_MODEL, MULTILINGUAL_USE):
        embedders.get(name).embed_query("warm up")
    rows = []
    for label, folder, golden in (("English", HELPCENTER, load_golden_set()), ("Korean", KOREAN_HELPCENTER, load_golden_set(KOREAN_GOLDEN_SET))):
        for model in (DEFAULT_MODEL, MULTILINGUAL_USE):
            started = time.perf_counter()
            kb = knowledge_base([(folder, "")], model, embedders)
            seconds = time.perf_counter() - started
            timings = []
            for item in golden * 3:  # repeated questions hit the query cache: unique text each time
                started = time.perf_counter()
                kb.search(f"{item['question']} {len(timings)}", collection="kb", top_k=5)
                timings.append((time.perf_counter() - started) * 1000)
            rows.append((label, model.split("/")[-1], kb.stats("kb")[0][2], seconds, percentile(timings, 50), percentile(timings, 95)))
            kb.store.close()
    return rows


def bench_highlights() -> list[tuple[str, str, float, float, float, float]]:
    """(help center, cache, p50 without, p50 with, p95 without, p95 with) in ms, top 5, hybrid."""
    embedders = Embedders()
    rows = []
    for label, folder, golden, model in (("English", HELPCENTER, load_golden_set(), DEFAULT_MODEL),
                                         ("Korean", KOREAN_HELPCENTER, load_golden_set(KOREAN_GOLDEN_SET), MULTILINGUAL_USE)):
        kb = knowledge_base([(folder, "")], model, embedders)
        kb.search("warm up", collection="kb", top_k=5)
        for cache in ("cold", "warm"):
            without, with_ = [], []
            for index, item in enumerate(golden):
                question = f"{item['question']} {cache}"  # a new text each pass: the query cache does not answer
                order = (False, True) if index % 2 else (True, False)
                for highlights in order:
                    started = time.perf_counter()
                    # distinct texts, so neither variant meets the other's cached query embedding
                    kb.search(f"{question} {'h' if highlights else 'n'}", collection="kb", top_k=5, highlights=highlights)
                    (with_ if highlights else without).append((time.perf_counter() - started) * 1000)
            rows.append((label, cache, percentile(without, 50), percentile(with_, 50), percentile(without, 95), percentile(with_, 95)))
        kb.store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest-chunks", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--only", default="ingest,search,models", help="Comma-separated sections to run.")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    if "highlights" in sections:
        table = Table(title="Search with highlights (sentences of the top 5 scored with the collection's embedder), ms")
        for column in ("help center", "sentence cache", "p50 without", "p50 with", "p95 without", "p95 with", "p50 ratio"):
            table.add_column(column, justify="left" if column in ("help center", "sentence cache") else "right")
        for label, cache, p50, p50h, p95, p95h in bench_highlights():
            table.add_row(label, cache, f"{p50:.1f}", f"{p50h:.1f}", f"{p95:.1f}", f"{p95h:.1f}", f"{p50h / p50:.2f}x")
        console.print(table)
    if "models" in sections:
        models = Table(title="English vs multilingual embedder, sample help centers (search: embedding + morphology + search, top 5)")
        for column in ("help center", "model", "chunks", "ingest chunks/s", "search p50 ms", "search p95 ms"):
            models.add_column(column, justify="left" if column in ("help center", "model") else "right")
        for label, model, chunks, seconds, p50, p95 in bench_models():
            models.add_row(label, model, str(chunks), f"{chunks / seconds:.0f}", f"{p50:.1f}", f"{p95:.1f}")
        console.print(models)
    if not sections & {"ingest", "search"}:
        return
    dense, sparse = DenseEmbedder(), SparseEmbedder()

    ingest = Table(title="Ingest rate (parsing, dense + BM25 embedding, storage)")
    for column in ("corpus", "chunks", "seconds", "chunks/s"):
        ingest.add_column(column, justify="right" if column != "corpus" else "left")
    if "ingest" in sections:
        for corpus, chunks, seconds in bench_ingest(dense, sparse, args.ingest_chunks):
            ingest.add_row(corpus, str(chunks), f"{seconds:.1f}", f"{chunks / seconds:.0f}")
        console.print(ingest)
    if "search" not in sections:
        return

    search = Table(title="Hybrid search latency, top 5 (ms; 'with embedding' adds the query's dense + BM25 embedding)")
    for column in ("chunks", "engine", "load s", "p50", "p95", "p50 with embedding", "p95 with embedding"):
        search.add_column(column, justify="right" if column != "engine" else "left")
    rows = bench_search(dense, sparse, [int(s) for s in args.sizes.split(",")])
    for size, name, load_s, p50, p95, p50e, p95e in rows:
        search.add_row(str(size), name, f"{load_s:.1f}", f"{p50:.2f}", f"{p95:.2f}", f"{p50e:.2f}", f"{p95e:.2f}")
    console.print(search)
    for size in sorted({r[0] for r in rows}):
        edge, local = (r for r in rows if r[0] == size)
        console.print(f"{size} chunks: qdrant-client local mode p95 / edge p95 = {local[4] / edge[4]:.1f}x")


if __name__ == "__main__":
    main()
