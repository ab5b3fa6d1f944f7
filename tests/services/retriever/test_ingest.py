"""Ingest: document ids by relative path, the collision error, the move from file-stem ids, the
pipeline's per-document outcomes and atomic replacement, the multilingual vector beside the
primary one. The real Qdrant engine (both deployments) with stand-in embedders: the logic needs
no model (the models' own tests are in test_retriever.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from services.retriever import ingestion, parse_processes
from services.retriever.embedding import Embedders, SparseEmbedder
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
from services.retriever.parsing import ParsedDocument
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import DENSE, MULTILINGUAL, EdgeStore, QdrantServerStore
from supportbot.client import count_documents, iter_documents
from supportbot.core.documents import document_id_for, same_source
from supportbot.v1 import retriever_pb2_grpc
from tests.fakes import embedding_of


class StandInEmbedder:
    """Same words, same unit vector (tests.fakes.embedding_of); counts words as tokens."""

    max_seq_length = 256

    def __init__(self, name: str, dimension: int) -> None:
        self.model_name, self.dimension = name, dimension
        self.calls: list[int] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.asarray([embedding_of(t, self.dimension) for t in texts], dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_query(self, text: str) -> list[float]:
        return embedding_of(text, self.dimension)


ENGLISH_MODEL = "stand-in/english"
MULTILINGUAL_MODEL = "stand-in-multilingual"


def make_kb(backend: str, tmp_path: Path, **settings) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    settings = RetrieverSettings(
        data_dir=tmp_path, backend=backend, multilingual_embedding_model=MULTILINGUAL_MODEL, **settings
    )
    store = EdgeStore(settings.resolved_index_path()) if backend == "edge" else QdrantServerStore(location=":memory:")
    english, multilingual = StandInEmbedder(ENGLISH_MODEL, 16), StandInEmbedder(MULTILINGUAL_MODEL, 24)
    return KnowledgeBase(settings, store, english, SparseEmbedder(), Embedders(loaded=[english, multilingual]))


@pytest.fixture(params=["edge", "server"])
def kb(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    knowledge_base = make_kb(request.param, tmp_path)
    yield knowledge_base
    knowledge_base.store.close()


def page(title: str, body: str = "") -> bytes:
    return f"# {title}\n\n{body or f'How to use {title} in the help center.'}\n".encode()


# -- ids --------------------------------------------------------------------------------------
def test_ids_are_relative_paths_without_extension(tmp_path: Path) -> None:
    for module in ("scalc", "swriter", "sbasic/shared"):
        folder = tmp_path / "help" / "text" / module
        folder.mkdir(parents=True)
        (folder / "main0101.html").write_text(f"<h1>{module} menu</h1><p>File menu of {module}.</p>")
    (tmp_path / "help" / "notes.bin").write_bytes(b"\0")  # not a document type: skipped
    documents = list(iter_documents([tmp_path / "help"]))
    assert [d.document_id for d in documents] == [
        "text/sbasic/shared/main0101", "text/scalc/main0101", "text/swriter/main0101",
    ]
    assert count_documents([tmp_path / "help"]) == 3
    # A file given by itself keeps its stem; odd characters become dashes.
    assert document_id_for(tmp_path / "help/text/scalc/main0101.html") == "main0101"
    assert document_id_for("/x/My Guide (v2).md", "/x") == "My-Guide-v2"
    assert document_id_for("C:\\help\\a b\\c.md", "C:\\help") == "a-b/c"


def test_same_source_tells_a_moved_folder_from_another_document() -> None:
    assert same_source("/old/help/text/scalc/x.html", "/new/help/text/scalc/x.html", "text/scalc/x")
    assert not same_source("/help/text/x.html", "/help/text/x.md", "text/x")
    assert not same_source("https://help.example/x", "/help/x.md", "x")
    assert same_source("", "/help/x.md", "x")  # chunks from before sources were recorded


def test_nested_pages_of_one_name_all_stay(kb: KnowledgeBase, tmp_path: Path) -> None:
    for module in ("scalc", "swriter", "simpress"):
        (tmp_path / "help" / module).mkdir(parents=True)
        (tmp_path / "help" / module / "main0101.md").write_text(f"# {module} menus\n\nThe {module} File menu.\n")
    documents = [DocumentInput(d.content, d.source_path, d.document_id) for d in iter_documents([tmp_path / "help"])]
    outcomes = list(kb.ingest_many("", documents))
    assert sorted((o.document_id, o.status) for o in outcomes) == [
        ("scalc/main0101", "added"), ("simpress/main0101", "added"), ("swriter/main0101", "added"),
    ]
    assert kb.stats()[0][1] == 3


def test_an_id_held_by_another_source_is_an_error_naming_both(kb: KnowledgeBase) -> None:
    first = kb.ingest("", DocumentInput(page("Formulas"), "/help/a/formula.md", "guide/formula"))
    assert first.status == "added"
    clash = kb.ingest("", DocumentInput(b"<h1>Other formulas</h1><p>More.</p>", "/help/b/formula.html", "guide/formula"))
    assert clash.status == "failed"
    assert "/help/a/formula.md" in clash.error and "/help/b/formula.html" in clash.error and "guide/formula" in clash.error
    # Nothing stored was lost, and the same clash inside one call is caught too.
    assert kb.search("Formulas", score_threshold=-1).hits[0].chunk["title"] == "Formulas"
    outcomes = list(kb.ingest_many("", [
        DocumentInput(page("Charts"), "/h/x/chart.md", "chart"), DocumentInput(page("Graphs"), "/h/y/chart.md", "chart"),
    ]))
    assert [o.status for o in outcomes] == ["added", "failed"] and "/h/x/chart.md" in outcomes[1].error


def test_a_moved_folder_updates_its_documents(kb: KnowledgeBase) -> None:
    assert kb.ingest("", DocumentInput(page("Charts"), "/old/help/c/chart.md", "c/chart")).status == "added"
    moved = kb.ingest("", DocumentInput(page("Charts", "Charts, revised."), "/new/help/c/chart.md", "c/chart"))
    assert (moved.status, moved.version) == ("updated", 2)


def test_reingest_moves_documents_from_file_stem_ids(kb: KnowledgeBase) -> None:
    """A collection built when ids were file stems: the page stored as "main0101" came from
    swriter (it had overwritten calc's); re-ingesting with relative ids stores both and drops
    the old id once its own page is in."""
    legacy_source = "/help/text/swriter/main0101.md"
    assert kb.ingest("", DocumentInput(page("Writer menu"), legacy_source, "main0101")).status == "added"
    outcomes = list(kb.ingest_many("", [
        DocumentInput(page("Calc menu"), "/help/text/scalc/main0101.md", "text/scalc/main0101"),
        DocumentInput(page("Writer menu"), legacy_source, "text/swriter/main0101"),
    ]))
    assert [(o.document_id, o.status, o.migrated_from) for o in outcomes] == [
        ("text/scalc/main0101", "added", ""), ("text/swriter/main0101", "added", "main0101"),
    ]
    assert kb.store.document_version("helpcenter", "main0101") is None
    assert kb.stats()[0][1] == 2


# -- the pipeline -----------------------------------------------------------------------------
def test_a_failing_document_fails_alone(kb: KnowledgeBase) -> None:
    documents = [
        DocumentInput(page("Refunds"), "refunds.md"),
        DocumentInput(b"%PDF-1.4 not really", "broken.pdf"),
        DocumentInput(page("Bad id"), "x.md", document_id="../etc/passwd"),
        DocumentInput(b"# Big\n\n" + b"word " * 400, "huge.md"),
        DocumentInput(page("Shipping"), "shipping.md"),
    ]
    kb.settings.max_document_bytes = 1000
    outcomes = {o.source_path: o for o in kb.ingest_many("", documents)}
    assert {p: o.status for p, o in outcomes.items()} == {
        "refunds.md": "added", "broken.pdf": "failed", "x.md": "failed", "huge.md": "failed", "shipping.md": "added",
    }
    assert "over the limit" in outcomes["huge.md"].error and "invalid document id" in outcomes["x.md"].error
    assert kb.stats()[0][1] == 2


def test_an_unchanged_document_is_not_parsed_again(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    def documents(shipping: str = "", refunds_title: str = "") -> list[DocumentInput]:
        return [DocumentInput(page("Refunds"), "/h/refunds.md", "refunds", title=refunds_title),
                DocumentInput(page("Shipping", shipping), "/h/shipping.md", "shipping")]

    assert [o.status for o in kb.ingest_many("", documents())] == ["added", "added"]
    parsed: list[str] = []
    parse = ingestion.parse_document

    def spy(content: bytes, path: str, mime: str = "") -> ParsedDocument:
        parsed.append(path)
        return parse(content, path, mime)

    # Both places that parse: the language sample, and parsing and chunking (threads run it here).
    monkeypatch.setattr(ingestion, "parse_document", spy)
    monkeypatch.setattr(parse_processes, "parse_document", spy)
    assert [o.status for o in kb.ingest_many("", documents())] == ["unchanged", "unchanged"] and parsed == []
    # A changed body, or a changed title given with the same body, is parsed and stored again.
    changed = list(kb.ingest_many("", documents("Shipping, revised.", "Refunds and returns")))
    assert [(o.status, o.version) for o in changed] == [("updated", 2), ("updated", 2)]
    assert sorted(parsed) == ["/h/refunds.md", "/h/shipping.md"]


@pytest.mark.parametrize("trim", [True, False])
def test_free_memory_is_handed_back_after_each_group_stored_when_set(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch,
                                                                       trim: bool) -> None:
    released: list[bool] = []
    monkeypatch.setattr(ingestion, "release_free_memory", lambda: released.append(True) or True)
    kb.settings.malloc_trim_after_commit, kb.settings.ingest_embed_chunks = trim, 1
    outcomes = list(kb.ingest_many("", [DocumentInput(page(f"Page {i}"), f"/h/p{i}.md", f"p{i}") for i in range(3)]))
    assert [o.status for o in outcomes] == ["added"] * 3
    assert len(released) == (3 if trim else 0)


def test_a_version_stored_without_an_input_hash_is_unchanged_after_parsing(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Collections built before input hashes were recorded keep working: no re-embedding."""
    with monkeypatch.context() as before:
        before.setattr(DocumentInput, "input_hash", property(lambda self: ""))
        assert kb.ingest("", DocumentInput(page("Refunds"), "/h/refunds.md", "refunds")).status == "added"
    again = kb.ingest("", DocumentInput(page("Refunds"), "/h/refunds.md", "refunds"))
    assert (again.status, again.version) == ("unchanged", 1)


def test_a_stopped_ingest_embeds_nothing_more(tmp_path: Path) -> None:
    """A call cut off sets the stop: the pipeline ends at its next step, so a retry of the same
    documents does not race a second embedding of them."""
    import threading

    kb = make_kb("edge", tmp_path, ingest_embed_chunks=8)
    stop = threading.Event()
    documents = [DocumentInput(page(f"Topic {i}"), f"topic-{i}.md") for i in range(60)]
    outcomes = []
    for outcome in kb.ingest_many("", documents, stop=stop):
        outcomes.append(outcome)
        stop.set()
    assert 0 < len(outcomes) < 60 and all(o.status == "added" for o in outcomes)
    assert kb.stats()[0][1] == len(outcomes)  # what was answered is stored, nothing more
    kb.store.close()


def test_chunks_are_embedded_across_documents_in_large_batches(tmp_path: Path) -> None:
    kb = make_kb("edge", tmp_path, ingest_embed_chunks=64)
    documents = [DocumentInput(page(f"Topic {i}"), f"topic-{i}.md") for i in range(150)]
    outcomes = list(kb.ingest_many("", documents))
    assert [o.status for o in outcomes] == ["added"] * 150
    calls = kb.dense.calls
    assert len(calls) == 3 and sum(calls) == 150 and min(calls[:-1]) >= 64  # not one call per document
    # Run again with nothing changed: nothing is embedded.
    assert {o.status for o in kb.ingest_many("", documents)} == {"unchanged"} and len(kb.dense.calls) == 3
    kb.store.close()


def test_a_changed_document_is_replaced_atomically_under_concurrent_ingest_and_search(tmp_path: Path) -> None:
    """Writers of one document take turns and each search sees whole versions only, never none.
    (The in-process engine: qdrant-client's local mode, which stands in for a server elsewhere,
    is not safe for concurrent use; a Qdrant server is.)"""
    kb = make_kb("edge", tmp_path)
    def version(n: int) -> bytes:
        sections = "\n\n".join(f"## Part {p}\n\nRevision {n} of part {p} of the refund policy." for p in range(4))
        return f"# Refunds\n\n{sections}\n".encode()

    kb.ingest("", DocumentInput(version(0), "refunds.md"))
    stop = threading.Event()
    seen: list[set[int]] = []
    problems: list[str] = []

    def search() -> None:
        while not stop.is_set():
            hits = kb.search("refund policy part", top_k=20, score_threshold=-1, filter={"document_id": "refunds"}).hits
            versions = {h.chunk["version"] for h in hits}
            by_version = {v: {h.chunk["ordinal"] for h in hits if h.chunk["version"] == v} for v in versions}
            if not hits:
                problems.append("no version searchable")
            # A version is either whole (all four parts) or, only while its successor is being
            # written, it and that whole successor are both there.
            if any(len(ordinals) != 4 for ordinals in by_version.values()):
                problems.append(f"a half-written version: {by_version}")
            seen.append(versions)

    def write(revisions: range) -> None:
        for n in revisions:
            kb.ingest("", DocumentInput(version(n), "refunds.md"))

    readers = [threading.Thread(target=search) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(range(start, 40, 2),)) for start in (1, 2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not problems, problems[:3]
    final = kb.store.document_version("helpcenter", "refunds")
    assert final is not None and final.number == 40  # 39 changes after the first, none lost or doubled
    assert {h.chunk["version"] for h in kb.search("refund policy", top_k=20, score_threshold=-1).hits} == {40}
    kb.store.close()


# -- the multilingual vector ------------------------------------------------------------------
def test_an_english_collection_keeps_a_multilingual_vector_used_for_other_languages(kb: KnowledgeBase) -> None:
    kb.ingest("", DocumentInput(page("Payment methods", "We accept PayPal and cards."), "payment-methods.md"))
    assert kb.store.has_vector("helpcenter", DENSE) and kb.store.has_vector("helpcenter", MULTILINGUAL)
    english = kb.search("Can I pay with PayPal?", score_threshold=-1)
    korean = kb.search("페이팔로 결제할 수 있나요?", score_threshold=-1)
    assert english.embedding_model == ENGLISH_MODEL and len(english.query_embedding) == 16
    assert korean.embedding_model == MULTILINGUAL_MODEL and len(korean.query_embedding) == 24
    assert korean.hits and korean.hits[0].chunk["document_id"] == "payment-methods"
    # The dense score is the multilingual vector's cosine to the question.
    stored = kb.multilingual_companion(kb.dense).embed_documents(
        ["Payment methods\nWe accept PayPal and cards."])[0]
    assert korean.hits[0].dense_score == pytest.approx(float(np.dot(stored, korean.query_embedding)), abs=1e-5)


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_collections_without_the_multilingual_vector_fall_back_then_get_it(backend: str, tmp_path: Path) -> None:
    old = make_kb(backend, tmp_path, multilingual_vector=False)
    old.ingest("", DocumentInput(page("Payment methods"), "payment-methods.md"))
    if backend == "server":  # the same in-memory instance, its settings changed
        old.settings.multilingual_vector = True
        reopened = old
    else:
        old.store.close()
        reopened = make_kb("edge", tmp_path)  # the setting on now; the collection has no such vector
    assert not reopened.store.has_vector("helpcenter", MULTILINGUAL)
    outcome = reopened.search("페이팔로 결제할 수 있나요?", score_threshold=-1)
    assert outcome.embedding_model == ENGLISH_MODEL and outcome.hits
    # The next ingest adds it to every point, the old ones included.
    assert reopened.ingest("", DocumentInput(page("Shipping"), "shipping.md")).status == "added"
    assert reopened.store.has_vector("helpcenter", MULTILINGUAL) and reopened.store.collections() == ["helpcenter"]
    assert all(p.multilingual is not None for p in reopened.store.scroll_points("helpcenter"))
    korean = reopened.search("페이팔로 결제할 수 있나요?", score_threshold=-1)
    assert korean.embedding_model == MULTILINGUAL_MODEL and {h.chunk["document_id"] for h in korean.hits} == {"payment-methods", "shipping"}
    reopened.store.close()


def test_cross_lingual_feedback_moves_the_question_toward_its_best_passages(kb: KnowledgeBase) -> None:
    from services.retriever.stores import QueryPlan

    kb.ingest("", DocumentInput(page("Payment methods", "We accept PayPal and cards."), "payment-methods.md"))
    kb.ingest("", DocumentInput(page("Shipping", "Parcels ship in two days."), "shipping.md"))
    question = kb.multilingual_companion(kb.dense).embed_query("페이팔로 결제할 수 있나요?")
    plan = QueryPlan(dense=question, sparse=([], []), mode="hybrid", limit=5, filter={}, mmr_lambda=None, using=MULTILINGUAL)
    best = kb.store.query("helpcenter", QueryPlan(dense=question, sparse=([], []), mode="dense", limit=1, filter={},
                                                  mmr_lambda=None, using=MULTILINGUAL))[0].dense_vector
    moved = kb.feedback_query("helpcenter", plan)
    assert np.linalg.norm(moved) == pytest.approx(1.0, abs=1e-5)
    assert float(np.dot(moved, best)) > float(np.dot(question, best))
    kb.settings.cross_lingual_feedback_passages = 0
    assert kb.feedback_query("helpcenter", plan) == question


def test_a_multilingual_primary_keeps_no_second_vector(tmp_path: Path) -> None:
    kb = make_kb("edge", tmp_path, collection_models={"ko": MULTILINGUAL_MODEL})
    kb.ingest("ko", DocumentInput("# 결제 수단\n\n페이팔과 카드로 결제할 수 있습니다.\n".encode(), "payment-methods.md"))
    assert not kb.store.has_vector("ko", MULTILINGUAL)
    assert kb.search("Can I pay with PayPal?", collection="ko", score_threshold=-1).embedding_model == MULTILINGUAL_MODEL
    kb.store.close()


# -- the client: batches and retries, against a real gRPC server with a scripted retriever ------
class ScriptedRetriever(retriever_pb2_grpc.RetrieverServiceServicer):
    """Answers each document added; fails a call after `answer_then_fail[i]` answers on the
    i-th call (None: the call succeeds), as a server closing the connection would."""

    def __init__(self, answer_then_fail: list[int | None], code=None) -> None:  # type: ignore[no-untyped-def]
        import grpc

        self.script = list(answer_then_fail)
        self.code = code or grpc.StatusCode.UNAVAILABLE
        self.calls: list[list[str]] = []
        self.flags: list[list[bool]] = []

    async def Ingest(self, request_iterator, context):  # type: ignore[no-untyped-def]  # noqa: N802
        from supportbot.v1 import retriever_pb2

        requests = [r async for r in request_iterator]
        self.calls.append([r.document.document_id for r in requests])
        self.flags.append([r.more_batches for r in requests])
        fail_after = self.script.pop(0) if self.script else None
        for answered, request in enumerate(requests):
            if fail_after is not None and answered == fail_after:
                await context.abort(self.code, "max connection age")
            yield retriever_pb2.IngestResponse(
                document_id=request.document.document_id, source_path=request.document.source_path,
                status=retriever_pb2.INGEST_STATUS_ADDED, chunks=2, stage_seconds={"embed": 0.5},
            )
        if fail_after is not None:
            await context.abort(self.code, "max connection age")


async def run_client(servicer, documents, batching):  # type: ignore[no-untyped-def]
    import grpc

    from supportbot.client import SupportbotClient
    from supportbot.v1 import retriever_pb2_grpc

    server = grpc.aio.server()
    retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with SupportbotClient(retriever=f"127.0.0.1:{port}") as client:
            return await client.ingest_documents(iter(documents), collection="kb", total=len(documents), batching=batching)
    finally:
        await server.stop(0)


def documents_named(count: int, size: int = 10):  # type: ignore[no-untyped-def]
    from supportbot.v1 import retriever_pb2

    return [retriever_pb2.Document(document_id=f"d{i}", source_path=f"/h/d{i}.md", content=b"x" * size) for i in range(count)]


async def test_the_client_sends_bounded_batches_and_builds_the_index_after_the_last() -> None:
    from supportbot.client import IngestBatching

    servicer = ScriptedRetriever([])
    report = await run_client(servicer, documents_named(7, size=100), IngestBatching(documents=3, bytes=250))
    assert [len(call) for call in servicer.calls] == [2, 2, 2, 1]  # 250 bytes hold two documents
    assert [set(flags) for flags in servicer.flags] == [{True}, {True}, {True}, {False}]
    assert (report.added, report.chunks, report.done, report.retries) == (7, 14, 7, 0)
    assert report.stage_seconds == {"embed": 2.0}
    assert report.finished is not None and report.elapsed == report.elapsed  # frozen once it ended


async def test_a_batch_cut_off_is_sent_again_without_what_was_answered() -> None:
    from supportbot.client import IngestBatching

    servicer = ScriptedRetriever([2, None])
    report = await run_client(servicer, documents_named(5), IngestBatching(documents=5, backoff_s=0.01))
    assert servicer.calls == [["d0", "d1", "d2", "d3", "d4"], ["d2", "d3", "d4"]]
    assert (report.added, report.retries, report.stored_before_retry) == (5, 1, 0)


async def test_a_batch_too_slow_for_the_connection_is_split_then_given_up_with_the_report() -> None:
    from supportbot.client import IngestBatching, IngestInterrupted

    servicer = ScriptedRetriever([0, 0, None, None])
    report = await run_client(servicer, documents_named(4), IngestBatching(documents=4, attempts=4, backoff_s=0.01))
    # A second failure without an answer halves the call; smaller calls get through, and only
    # the last of them builds the index.
    assert [len(call) for call in servicer.calls] == [4, 4, 2, 2] and report.added == 4
    assert [set(flags) for flags in servicer.flags[2:]] == [{True}, {False}]
    with pytest.raises(IngestInterrupted) as stopped:
        await run_client(ScriptedRetriever([1, 0, 0, 0]), documents_named(4), IngestBatching(attempts=4, backoff_s=0.01))
    assert stopped.value.report.added == 1 and "max connection age" in stopped.value.reason


async def test_a_permanent_error_is_not_retried() -> None:
    import grpc

    from supportbot.client import IngestBatching

    servicer = ScriptedRetriever([0], code=grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await run_client(servicer, documents_named(2), IngestBatching(backoff_s=0.01))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED and len(servicer.calls) == 1
