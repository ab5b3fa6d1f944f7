"""Ingestion as a pipeline rather than a loop over documents: worker threads (or worker processes,
RetrieverSettings.ingest_parse_processes: services/retriever/parse_processes.py) parse and chunk
the next documents while the current group's chunks are embedded together (one large batch across
documents, which the models sort by length), and a group's new versions are upserted in one call.

What the per-document loop guaranteed still holds: a document's new version is written whole
(one upsert) before its old version is deleted, so a search sees the old version or the new one
and never half of one; and writers of one collection commit under the collection's lock, each
reading the stored version at commit time, so two writers never interleave a document's
versions (the later commit is the newer version)."""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from services.retriever.chunking import Chunk, document_hash
from services.retriever.embedding import Embedder
from services.retriever.memory import release_free_memory
from services.retriever.parse_processes import (
    ParseJob,
    ParseProcesses,
    ParseResult,
    Submitted,
    prepare,
)
from services.retriever.parsing import DocumentError, parse_document
from services.retriever.stores import DocumentVersion, StoredPoint, point_id
from supportbot.core.documents import (
    MAX_DOCUMENT_ID_CHARS,
    document_id_for,
    legacy_document_id,
    same_source,
)
from supportbot.core.language import ENGLISH, UNDETERMINED, detect_language

if TYPE_CHECKING:
    import numpy as np

    from services.retriever.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)
# Documents whose language chooses a new collection's model. The GIMP manual in Korean (partly
# translated, its first page a navigation-only index) got the English model from its first page
# and its Korean questions found the right page in the top five for 9 of 14; chosen from the
# first pages with text it gets the multilingual model (bench/retrieval_quality.py --sets gimp-ko).
LANGUAGE_SAMPLE_DOCUMENTS = 16
_CHUNK_FIELDS = ("chunk_id", "document_id", "ordinal", "title", "heading_path", "text", "url", "collection", "content_hash", "metadata")
_DOCUMENT_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._/-]{{0,{MAX_DOCUMENT_ID_CHARS - 1}}}$")


@dataclass
class DocumentInput:
    content: bytes
    source_path: str = ""
    document_id: str = ""
    mime_type: str = ""
    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """Where the document came from (its file path, else its URL): what tells two documents
        of one id apart."""
        return self.source_path or self.url

    @property
    def input_hash(self) -> str:
        """The hash of everything parsing reads: the same input parses to the same document, so a
        stored version with this hash is unchanged without parsing it again (a re-run of an ingest
        of 2,561 LibreOffice help pages spent 98% of its time parsing; bench/ingest_bench.py)."""
        return document_hash(self.content, self.title, self.url, {**self.metadata, "\0source": self.source_path, "\0mime": self.mime_type})


@dataclass
class IngestOutcome:
    document_id: str
    status: str  # added, updated, unchanged, failed
    chunks: int = 0
    error: str = ""
    # The document's version once stored (see stores.DocumentVersion); 0 when it failed.
    version: int = 0
    source_path: str = ""
    # The id the document had in a collection built before ids were relative paths, when this
    # ingest moved it to its new id.
    migrated_from: str = ""


def derive_document_id(source_path: str) -> str:
    """The id of a document sent without one: the stem of its path (clients that ingest a
    folder send the path relative to it; see supportbot.core.documents.document_id_for)."""
    return document_id_for(source_path)


class StageTimes:
    """Seconds spent per pipeline stage (parse counts the workers' time, so stages overlap)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def add(self, name: str, seconds: float) -> None:
        """Seconds spent elsewhere (a parse worker process's own clock)."""
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seconds)


@dataclass
class _Prepared:
    """A parsed, chunked document that differs from the stored version it was compared with."""

    document: DocumentInput
    document_id: str
    url: str
    content_hash: str
    chunks: list[Chunk]
    input_hash: str = ""

    @property
    def texts(self) -> list[str]:
        return [chunk.embedding_text() for chunk in self.chunks]


class _Pending(Protocol):
    """A document in stage 1: a thread's future, a worker process's job, or an outcome known."""

    def result(self) -> _Prepared | IngestOutcome: ...


@dataclass
class _Ready:
    outcome: IngestOutcome

    def result(self) -> IngestOutcome:
        return self.outcome


@dataclass
class _InProcess:
    """A document parsed and chunked in a worker process (services/retriever/parse_processes.py)."""

    pipeline: IngestPipeline
    processes: ParseProcesses
    submitted: Submitted
    job: ParseJob
    document: DocumentInput
    received: str
    previous: DocumentVersion | None

    def result(self) -> _Prepared | IngestOutcome:
        done = self.processes.result(self.submitted, self.job)
        return self.pipeline._prepared(self.document, self.job, done, self.received, self.previous)  # noqa: SLF001


class IngestPipeline:
    """One ingest of a stream of documents into one collection."""

    def __init__(
        self, kb: KnowledgeBase, collection: str, times: StageTimes | None = None, stop: threading.Event | None = None
    ) -> None:
        self.kb = kb
        # Set when the caller went away (a call cut off): the pipeline ends at its next step
        # rather than embed what a retry will send again.
        self.stop = stop or threading.Event()
        self.collection = collection
        self.settings = kb.settings
        self.store = kb.store
        self.times = times or StageTimes()
        self.embedder: Embedder | None = None
        self.multilingual: Embedder | None = None
        self._group: list[_Prepared] = []
        self._group_chunks = 0

    # -- the stream -------------------------------------------------------------------------
    def run(self, documents: Iterable[DocumentInput]) -> Iterator[IngestOutcome]:
        stream = iter(documents)
        # A collection's model is chosen once, from the language of its first pages; one page
        # alone misleads on real help centers (a navigation-only index, an untranslated page).
        sample = list(itertools.islice(stream, 1 if self.kb.model_of(self.collection) else LANGUAGE_SAMPLE_DOCUMENTS))
        if not sample:
            return
        refusal = self._open_collection(sample)
        if refusal:
            for document in itertools.chain(sample, stream):
                yield IngestOutcome(self._id_of(document), "failed", error=refusal, source_path=document.source_path)
            return
        # Documents in flight in the parse workers: what bounds memory, with the group below.
        window = max(2, self.settings.ingest_parse_window)
        documents = itertools.chain(sample, stream)
        processes = self.kb.parse_processes()
        counter = getattr(self.embedder, "portable_token_counter", None)
        if processes is not None and counter is not None:
            yield from self._run_in_processes(documents, processes, counter(), window)
        else:
            with ThreadPoolExecutor(self.settings.ingest_parse_workers, thread_name_prefix="ingest-parse") as pool:
                pending: deque[_Pending] = deque()
                for document in documents:
                    if self.stop.is_set():
                        return
                    pending.append(pool.submit(self._prepare_safely, document))
                    if len(pending) >= window:
                        yield from self._take(pending, keep=window // 2)
                yield from self._take(pending, keep=0)
        if self._group and not self.stop.is_set():
            yield from self._commit(self._flush())

    def _run_in_processes(
        self, documents: Iterable[DocumentInput], processes: ParseProcesses, count: Callable[[str], int], window: int,
    ) -> Iterator[IngestOutcome]:
        """Stage 1 in worker processes: each document is checked against its stored version
        here (an unchanged one is never sent), then parsed and chunked in a worker."""
        pending: deque[_Pending] = deque()
        for document in documents:
            if self.stop.is_set():
                return
            pending.append(self._submit_to(processes, count, document))
            if len(pending) >= window:
                yield from self._take(pending, keep=window // 2)
        yield from self._take(pending, keep=0)

    def _submit_to(self, processes: ParseProcesses, count: Callable[[str], int], document: DocumentInput) -> _Pending:
        try:
            checked = self._check(document)
        except Exception as error:  # noqa: BLE001 (as _prepare_safely)
            checked = IngestOutcome(self._id_of(document), "failed", error=f"could not be read: {error}", source_path=document.source_path)
        if isinstance(checked, IngestOutcome):
            return _Ready(checked)
        previous, received = checked
        job = self._job(document, previous, count)
        return _InProcess(self, processes, processes.submit(job), job, document, received, previous)

    def _take(self, pending: deque[_Pending], keep: int) -> Iterator[IngestOutcome]:
        """Takes finished preparations in order until `keep` are left in flight; a group that
        holds enough chunks for one large embedding batch is committed."""
        while len(pending) > keep:
            result = pending.popleft().result()
            if isinstance(result, IngestOutcome):
                yield result
                continue
            self._group.append(result)
            self._group_chunks += len(result.chunks)
            if self._group_chunks >= self.settings.ingest_embed_chunks:
                if self.stop.is_set():
                    return
                yield from self._commit(self._flush())

    def _flush(self) -> list[_Prepared]:
        group, self._group, self._group_chunks = self._group, [], 0
        return group

    # -- the collection ---------------------------------------------------------------------
    def _open_collection(self, sample: list[DocumentInput]) -> str:
        """Picks the collection's model (a new collection: by the language of the stream's first
        documents) and creates it; returns why nothing can go in, or ""."""
        kb, collection = self.kb, self.collection
        with kb.collection_lock(collection):
            model = kb.model_of(collection)
            configured = self.settings.collection_models.get(collection)
            if model is not None and configured and configured != model:
                return (
                    f"collection {collection!r} holds embeddings of {model}, but SUPPORTBOT_RETRIEVER_COLLECTION_MODELS "
                    f"names {configured} for it; embeddings of two models do not compare: ingest into a new collection"
                )
            if model is None:
                model = kb.model_for_new(collection, self._language_of_sample(sample))
                if self.store.has_collection(collection):
                    # It holds no point: every page sent to it so far failed (a navigation-only
                    # index page, say). It was made for a model chosen from nothing; make it anew.
                    self.store.drop_collection(collection)
                    kb.forget_vectors(collection)
            embedder = kb.embedders.get(model or kb.dense.model_name)
            multilingual = kb.multilingual_companion(embedder)
            self.store.ensure_collection(collection, embedder.dimension, multilingual.dimension if multilingual else None)
            if multilingual is not None and not kb.has_multilingual_vector(collection):
                with self.times.stage("add_multilingual_vector"):
                    self._add_multilingual_vector(embedder, multilingual)
            self.embedder = embedder
            self.multilingual = multilingual if kb.has_multilingual_vector(collection) else None
        return ""

    def _add_multilingual_vector(self, primary: Embedder, multilingual: Embedder) -> None:
        """A collection built before the multilingual vector gets one on re-ingest: its points
        are copied, with that vector added, into a new collection that then takes its place
        (searches use the old one meanwhile)."""
        collection = self.collection
        rebuilt = f"{collection}.adding-multilingual"
        if self.store.has_collection(rebuilt):
            self.store.drop_collection(rebuilt)  # a rebuild that broke off: start over
        self.store.ensure_collection(rebuilt, primary.dimension, multilingual.dimension)
        batch: list[StoredPoint] = []

        def flush() -> None:
            texts = [Chunk(**{f: p.payload[f] for f in _CHUNK_FIELDS}).embedding_text() for p in batch]
            for point, vector in zip(batch, multilingual.embed_documents(texts), strict=True):
                point.multilingual = vector.tolist()
            self.store.upsert(rebuilt, batch)
            batch.clear()

        for point in self.store.scroll_points(collection):
            batch.append(point)
            if len(batch) >= self.settings.ingest_embed_chunks:
                flush()
        if batch:
            flush()
        self.store.replace_collection(collection, rebuilt)
        self.kb.forget_vectors(collection)
        log.info("multilingual vector added", extra={"collection": collection, "points": self.store.count_points(collection)})

    def _language_of_sample(self, sample: list[DocumentInput]) -> str:
        """The language most of these documents are written in, pages with no text left out.
        A tie goes to the language that is not English: the multilingual model it then picks
        reads English too, while the English model reads nothing else."""
        votes = Counter(language for language in map(self._language_of, sample) if language != UNDETERMINED)
        if not votes:
            return UNDETERMINED
        return max(votes, key=lambda language: (votes[language], language != ENGLISH))

    def _language_of(self, document: DocumentInput) -> str:
        try:
            parsed = parse_document(document.content, document.source_path, document.mime_type)
        except DocumentError:
            return "und"
        return detect_language(" ".join([document.title or parsed.title, *(s.text for s in parsed.sections)])[:4000])

    def _id_of(self, document: DocumentInput) -> str:
        return document.document_id or derive_document_id(document.source_path or document.url)

    # -- stage 1: parse and chunk (worker threads) -------------------------------------------
    def _prepare_safely(self, document: DocumentInput) -> _Prepared | IngestOutcome:
        """One document's failure, whatever it is, fails that document and not its batch."""
        try:
            return self._prepare(document)
        except Exception as error:  # noqa: BLE001 (reported per document, logged by the server)
            return IngestOutcome(self._id_of(document), "failed", error=f"could not be read: {error}", source_path=document.source_path)

    def _check(self, document: DocumentInput) -> IngestOutcome | tuple[DocumentVersion | None, str]:
        """What is known before parsing: the document's outcome when it is refused or unchanged
        (its stored version has the same input hash), else its stored version and input hash."""
        document_id = self._id_of(document)

        def failed(error: str) -> IngestOutcome:
            return IngestOutcome(document_id, "failed", error=error, source_path=document.source_path)

        if not _DOCUMENT_ID.fullmatch(document_id):
            return failed(f"invalid document id {document_id!r}")
        if len(document.content) > self.settings.max_document_bytes:
            return failed(f"document is {len(document.content)} bytes, over the limit of {self.settings.max_document_bytes}")
        received = document.input_hash
        with self.times.stage("lookup"):
            previous = self.store.document_version(self.collection, document_id)
        if previous is not None:
            if not same_source(previous.source, document.source, document_id):
                return failed(collision(document_id, previous.source, document.source))
            if previous.input_hash == received:
                return IngestOutcome(document_id, "unchanged", version=previous.number, source_path=document.source_path)
        return previous, received

    def _prepare(self, document: DocumentInput) -> _Prepared | IngestOutcome:
        """Stage 1 in a worker thread: the same parsing and chunking a worker process runs
        (services.retriever.parse_processes.prepare), counting tokens with the embedder itself."""
        checked = self._check(document)
        if isinstance(checked, IngestOutcome):
            return checked
        previous, received = checked
        assert self.embedder is not None
        job = self._job(document, previous, self.embedder.count_tokens)
        return self._prepared(document, job, prepare(job), received, previous)

    def _job(self, document: DocumentInput, previous: DocumentVersion | None, count: Callable[[str], int]) -> ParseJob:
        """What parsing and chunking one document takes, as plain data a worker process can take."""
        assert self.embedder is not None
        return ParseJob(
            document.content, document.source_path, document.mime_type, document.title, document.url, document.metadata,
            self._id_of(document), self.collection, budget=min(self.settings.chunk_tokens, self.embedder.max_seq_length - 32),
            overlap=self.settings.chunk_overlap_tokens, procedure_budget=self.settings.procedure_chunk_tokens,
            count=count, previous_content_hash=previous.content_hash if previous is not None else "",
        )

    def _prepared(self, document: DocumentInput, job: ParseJob, done: ParseResult, received: str,
                  previous: DocumentVersion | None) -> _Prepared | IngestOutcome:
        """A parse's result as stage 1's: the document prepared, failed, or unchanged (a version
        stored before input hashes were recorded that parses to the same content)."""
        self.times.add("parse", done.seconds)
        if done.error:
            return IngestOutcome(job.document_id, "failed", error=done.error, source_path=document.source_path)
        if done.unchanged:
            assert previous is not None
            return IngestOutcome(job.document_id, "unchanged", version=previous.number, source_path=document.source_path)
        return _Prepared(document, job.document_id, done.url, done.content_hash, done.chunks, received)

    # -- stages 2 and 3: embed a group together, commit it under the collection's lock -------
    def _commit(self, group: list[_Prepared]) -> Iterator[IngestOutcome]:
        assert self.embedder is not None
        texts = [text for prepared in group for text in prepared.texts]
        with self.times.stage("embed"):
            dense = self.embedder.embed_documents(texts)
        multilingual = None
        if self.multilingual is not None:
            with self.times.stage("embed_multilingual"):
                multilingual = self.multilingual.embed_documents(texts)
        with self.times.stage("sparse"):
            sparse = [self.kb.sparse.embed_document(text) for text in texts]
        outcomes: list[IngestOutcome] = []
        with self.kb.collection_lock(self.collection):
            points: list[StoredPoint] = []
            replaced: list[tuple[str, str]] = []  # (document id, hash kept)
            moved: list[str] = []
            claimed: dict[str, str] = {}  # ids written by this group, by source
            offset = 0
            for prepared in group:
                span = slice(offset, offset + len(prepared.chunks))
                offset += len(prepared.chunks)
                document, document_id = prepared.document, prepared.document_id
                with self.times.stage("lookup"):
                    previous = self.store.document_version(self.collection, document_id)
                earlier = claimed.get(document_id)
                if earlier is not None and earlier != document.source:
                    outcomes.append(IngestOutcome(document_id, "failed", error=collision(document_id, earlier, document.source), source_path=document.source_path))
                    continue
                if previous is not None and not same_source(previous.source, document.source, document_id):
                    outcomes.append(IngestOutcome(document_id, "failed", error=collision(document_id, previous.source, document.source), source_path=document.source_path))
                    continue
                if earlier is not None or (previous is not None and previous.content_hash == prepared.content_hash):
                    # The same document twice in one group, or another writer stored this version first.
                    number = previous.number if previous is not None else 1
                    outcomes.append(IngestOutcome(document_id, "unchanged", version=number, source_path=document.source_path))
                    continue
                claimed[document_id] = document.source
                version = previous.number + 1 if previous is not None else 1
                points.extend(
                    self._points(prepared, version, dense[span], None if multilingual is None else multilingual[span], sparse[span])
                )
                if previous is not None:
                    replaced.append((document_id, prepared.content_hash))
                legacy = self._legacy_id(document, document_id)
                if legacy:
                    moved.append(legacy)
                outcomes.append(IngestOutcome(
                    document_id, "added" if previous is None else "updated", len(prepared.chunks), version=version,
                    source_path=document.source_path, migrated_from=legacy,
                ))
            if points:
                with self.times.stage("upsert"):
                    self.store.upsert(self.collection, points)
                self.kb.remember_model(self.collection, self.embedder.model_name)
            # Only once the new versions are stored do the old ones go.
            with self.times.stage("delete"):
                for document_id, keep in replaced:
                    self.store.delete_document(self.collection, document_id, keep_hash=keep)
                for legacy in moved:
                    self.store.delete_document(self.collection, legacy)
        if self.settings.malloc_trim_after_commit:
            release_free_memory()
        yield from outcomes

    def _legacy_id(self, document: DocumentInput, document_id: str) -> str:
        """The document's id in a collection built when ids were file stems, when it is still
        stored under it (the same source: its recorded path, or for chunks that recorded none,
        the URL they fell back to)."""
        if not document.source_path:
            return ""
        legacy = legacy_document_id(document.source_path)
        if legacy == document_id:
            return ""
        stored = self.store.document_version(self.collection, legacy)
        if stored is None:
            return ""
        if stored.source:
            return legacy if stored.source == document.source_path else ""
        return legacy if stored.url in (document.source_path, document.url) and stored.url else ""

    def _points(
        self, prepared: _Prepared, version: int, dense: np.ndarray, multilingual: np.ndarray | None,
        sparse: Sequence[tuple[list[int], list[float]]],
    ) -> list[StoredPoint]:
        assert self.embedder is not None
        source = prepared.document.source
        return [
            StoredPoint(
                id=point_id(chunk.chunk_id, chunk.content_hash),
                dense=vector.tolist(),
                sparse=terms,
                multilingual=None if multilingual is None else multilingual[i].tolist(),
                payload={
                    "chunk_id": chunk.chunk_id,
                    "document_id": chunk.document_id,
                    "ordinal": chunk.ordinal,
                    "title": chunk.title,
                    "heading_path": chunk.heading_path,
                    "url": chunk.url,
                    "source": source,
                    "collection": chunk.collection,
                    "text": chunk.text,
                    "content_hash": chunk.content_hash,
                    "input_hash": prepared.input_hash,
                    "version": version,
                    "embedding_model": self.embedder.model_name,
                    "language": detect_language(chunk.text),
                    # How much of the passage is steps or menu paths: search puts procedures first
                    # for "how do I" questions (knowledge_base.prefer_procedures).
                    "procedure": chunk.procedure,
                    "metadata": chunk.metadata,
                },
            )
            for i, (chunk, vector, terms) in enumerate(zip(prepared.chunks, dense, sparse, strict=True))
        ]


def collision(document_id: str, held_by: str, incoming: str) -> str:
    return (
        f"document id {document_id!r} is already held by {held_by or 'another document'}; {incoming} would overwrite it. "
        "Give one of them another id (ingest their folders as one, or set document_id), or delete the other first"
    )


