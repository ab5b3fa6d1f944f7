"""Ingestion and search over a VectorStore, independent of which Qdrant deployment backs it."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from services.retriever.chunking import procedure_share
from services.retriever.embedding import (
    DenseEmbedder,
    Embedder,
    Embedders,
    SparseEmbedder,
    is_multilingual,
)
from services.retriever.ingestion import (  # noqa: F401 (the knowledge base's ingest types)
    DocumentInput,
    IngestOutcome,
    IngestPipeline,
    StageTimes,
    derive_document_id,
)
from services.retriever.parse_processes import ParseProcesses
from services.retriever.settings import RetrieverSettings
from services.retriever.stores import DENSE, MULTILINGUAL, QueryPlan, SearchModeName, VectorStore
from supportbot.answers.answerability import UnknownTerm
from supportbot.answers.grounding import Highlight
from supportbot.answers.text import split_units
from supportbot.core.errors import InvalidArgument, NotFound, check_collection_name, require_text
from supportbot.core.language import (
    ENGLISH,
    LANGUAGES,
    UNDETERMINED,
    detect_language,
    hangul_sound_skeletons,
    has_hangul,
    is_how_to,
    korean_noun_runs,
    latin_sound_skeletons,
)

_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
# A word in Latin letters, as a loanword's English spelling is written ("LibreOffice").
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass
class SearchHit:
    chunk: dict[str, Any]
    score: float
    dense_score: float
    highlights: list[Highlight] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.chunk.get("language") or UNDETERMINED


@dataclass
class SearchOutcome:
    collection: str
    hits: list[SearchHit]
    embed_ms: float
    search_ms: float
    query_embedding: list[float] = field(default_factory=list)
    embedding_model: str = ""
    highlight_ms: float = 0.0
    # The question's content words that no passage of the searched collection uses (its BM25
    # vocabulary): "netflix" in "how do I cancel my Netflix subscription?" to a help center that
    # never names it, each with the returned passages' word closest in meaning. The gateway's
    # answerability weighs them (supportbot/answers/answerability.py).
    unknown_terms: list[UnknownTerm] = field(default_factory=list)


def prefer_language(hits: list[SearchHit], language: str, margin: float) -> list[SearchHit]:
    """In a collection of several languages, a passage in the question's language goes ahead of
    one in another language that is no more similar in meaning than `margin` (cosine) above it:
    an English question gets the English version of an article first, not its Korean translation
    that ranked a little higher."""
    def other(hit: SearchHit) -> bool:  # a passage in another language ("und": none to tell)
        return hit.chunk.get("language") not in (language, UNDETERMINED, None)

    if language not in LANGUAGES or not any(other(h) for h in hits):
        return hits
    ordered: list[SearchHit] = []
    for hit in hits:
        position = len(ordered)
        if hit.chunk.get("language") == language:
            passed = [i for i, earlier in enumerate(ordered) if other(earlier) and earlier.dense_score <= hit.dense_score + margin]
            position = passed[0] if passed else position
        ordered.insert(position, hit)
    return ordered


# A passage counts as a procedure when at least this share of its lines are steps, menu paths or
# instructions (chunking.procedure_share): on the saved LibreOffice pages a how-to chunk runs
# 0.5-1.0 and an option's reference description 0 (tests/services/retriever/test_extraction.py); not yet swept by
# bench/retrieval_quality.py --sets libreoffice.
PROCEDURE_SHARE = 0.3


def procedure_of(payload: dict[str, Any]) -> float:
    """Stored at ingest; computed from the text for points stored before it was."""
    stored = payload.get("procedure")
    return float(stored) if stored is not None else procedure_share(payload.get("text", ""))


def prefer_procedures(hits: list[SearchHit], margin: float) -> list[SearchHit]:
    """For a "how do I" question, a passage that is a procedure goes ahead of passages that are
    not (reference descriptions, overviews) and are no more similar in meaning than `margin`
    (cosine) above it: the customer gets the steps, not the option's description."""
    def steps(hit: SearchHit) -> bool:
        return procedure_of(hit.chunk) >= PROCEDURE_SHARE

    if not any(steps(h) for h in hits):
        return hits
    ordered: list[SearchHit] = []
    for hit in hits:
        position = len(ordered)
        if steps(hit):
            passed = [i for i, earlier in enumerate(ordered) if not steps(earlier) and earlier.dense_score <= hit.dense_score + margin]
            position = passed[0] if passed else position
        ordered.insert(position, hit)
    return ordered


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Where each sentence or list item of a passage (supportbot.answers.text.split_units, the
    splitter the answer composer quotes by) lies in it, as character offsets."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for unit in split_units(text):
        # Units of hard-wrapped lines come back joined by spaces: match them whatever the spacing.
        pattern = r"\s+".join(re.escape(word) for word in unit.text.split())
        found = re.compile(pattern).search(text, cursor) if pattern else None
        if found is None:
            continue
        spans.append(found.span())
        cursor = found.end()
    return spans


class KnowledgeBase:
    def __init__(
        self,
        settings: RetrieverSettings,
        store: VectorStore,
        dense: DenseEmbedder | Embedder,
        sparse: SparseEmbedder,
        embedders: Embedders | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dense = dense  # the default model: English collections, and those built before models were recorded
        self.sparse = sparse
        self.embedders = embedders or Embedders(
            settings.embedding_batch_size, settings.query_cache_size, [dense], settings.embedding_batch_tokens
        )
        self._models: dict[str, str] = {}
        self._multilingual: dict[str, bool] = {}
        # Collections written since their index was last built (finish_ingest).
        self.unindexed: set[str] = set()
        # Sentence embeddings for highlights, by (model, sentence): popular passages come back.
        self._sentence_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._sentence_lock = threading.Lock()
        # Writers of one collection take turns, so a document's old and new versions never race.
        self._write_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # Each collection's words in Latin letters by sound skeleton, and its point count then
        # (loanword_spelling).
        self._spellings: dict[str, tuple[int, dict[str, str]]] = {}
        self._spellings_lock = threading.Lock()
        # Ingest's parse worker processes (settings.ingest_parse_processes), started when first
        # needed and shared by the ingests that follow.
        self._parse_processes: ParseProcesses | None = None
        self._parse_processes_lock = threading.Lock()

    # -- validation -------------------------------------------------------------------------
    def collection_name(self, name: str) -> str:
        return check_collection_name(name or self.settings.default_collection)

    def existing_collection(self, name: str) -> str:
        name = self.collection_name(name)
        if not self.store.has_collection(name):
            known = ", ".join(self.store.collections()) or "none yet"
            raise NotFound(f"collection {name!r} does not exist (collections: {known})")
        return name

    # -- embedding models -------------------------------------------------------------------
    def model_of(self, collection: str) -> str | None:
        """The dense model that built the collection (None: it holds nothing yet). Collections
        from before models were recorded were built with the default model."""
        if collection not in self._models:
            recorded = self.store.collection_model(collection) if self.store.has_collection(collection) else None
            if recorded is None:
                return None
            self._models[collection] = recorded or self.dense.model_name
        return self._models[collection]

    def model_for_new(self, collection: str, language: str) -> str:
        """A new collection's model: the one configured for it, else by its first document's
        language (bench/retrieval_quality.py: the English model is best on English, the
        multilingual one on everything else)."""
        configured = self.settings.collection_models.get(collection)
        if configured:
            return configured
        if language in (ENGLISH, UNDETERMINED):
            return self.dense.model_name
        return self.settings.multilingual_embedding_model

    def embedder_for(self, collection: str) -> Embedder:
        return self.embedders.get(self.model_of(collection) or self.dense.model_name)

    def query_embedder(self, collection: str, language: str) -> tuple[Embedder, str]:
        """The model and the named vector a question is searched with: the collection's primary,
        unless the question is in a language that model does not read and the collection keeps
        a multilingual vector (a Korean question over the English help center;
        bench/retrieval_quality.py, cross-lingual section)."""
        primary = self.embedder_for(collection)
        if language in (ENGLISH, UNDETERMINED) or is_multilingual(primary.model_name, self.settings.multilingual_embedding_model):
            return primary, DENSE
        companion = self.multilingual() if self.has_multilingual_vector(collection) else None
        return (companion, MULTILINGUAL) if companion else (primary, DENSE)

    def multilingual(self) -> Embedder | None:
        """The configured multilingual model, loaded on first use; None when none is configured."""
        name = self.settings.multilingual_embedding_model
        return self.embedders.get(name) if name else None

    # -- ingestion (services/retriever/ingestion.py) -----------------------------------------
    def collection_lock(self, collection: str) -> threading.Lock:
        """Writers of one collection take turns at commit; other collections go on meanwhile."""
        with self._locks_lock:
            return self._write_locks.setdefault(collection, threading.Lock())

    def remember_model(self, collection: str, model: str) -> None:
        """Called once points of `model` are written: the collection's index is due."""
        self._models[collection] = model
        self.unindexed.add(collection)

    def multilingual_companion(self, primary: Embedder) -> Embedder | None:
        """The multilingual model whose vector a collection keeps beside its primary one, so a
        question in any language finds its passages; None when the primary model is multilingual
        already, or the setting is off."""
        name = self.settings.multilingual_embedding_model
        if not self.settings.multilingual_vector or not name or is_multilingual(primary.model_name, name):
            return None
        return self.multilingual()

    def has_multilingual_vector(self, collection: str) -> bool:
        """Collections created before the multilingual vector have none: search falls back to the
        primary, and the next ingest into them adds it (IngestPipeline._add_multilingual_vector)."""
        if collection not in self._multilingual:
            self._multilingual[collection] = self.store.has_collection(collection) and self.store.has_vector(collection, MULTILINGUAL)
        return self._multilingual[collection]

    def forget_vectors(self, collection: str) -> None:
        self._multilingual.pop(collection, None)

    def ingest_many(
        self, collection: str, documents: Iterable[DocumentInput], times: StageTimes | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[IngestOutcome]:
        """Ingests a stream of documents through the pipeline; an outcome per document, in the
        order they are committed (none after `stop` is set)."""
        return IngestPipeline(self, self.collection_name(collection), times, stop).run(documents)

    def parse_processes(self) -> ParseProcesses | None:
        """The ingest's parse worker processes, or None when parsing runs in threads."""
        if not self.settings.ingest_parse_processes:
            return None
        with self._parse_processes_lock:
            if self._parse_processes is None:
                self._parse_processes = ParseProcesses(self.settings.ingest_parse_processes, self.settings.ingest_parse_timeout_s)
            return self._parse_processes

    def close_parse_processes(self) -> None:
        with self._parse_processes_lock:
            processes, self._parse_processes = self._parse_processes, None
        if processes is not None:
            processes.close()

    def ingest(self, collection: str, document: DocumentInput) -> IngestOutcome:
        return next(iter(self.ingest_many(collection, [document])))

    def finish_ingest(self, collection: str) -> None:
        """Builds the HNSW index once a batch is in, rather than after every document."""
        collection = self.collection_name(collection)
        if self.store.has_collection(collection):
            with self.collection_lock(collection):
                self.unindexed.discard(collection)
                self.store.optimize(collection)
        self.forget_spellings(collection)

    def delete_documents(self, collection: str, document_ids: list[str]) -> tuple[int, int]:
        collection = self.existing_collection(collection)
        if not document_ids:
            raise InvalidArgument("document_ids is empty: name at least one document to delete")
        documents = chunks = 0
        with self.collection_lock(collection):
            for document_id in document_ids:
                removed = self.store.delete_document(collection, document_id)
                documents += 1 if removed else 0
                chunks += removed
        self.forget_spellings(collection)
        return documents, chunks

    def forget_spellings(self, collection: str) -> None:
        """The collection's words changed: its loanword spellings are read again at the next
        Korean question that needs them (a new version with as many points as the old one would
        keep the old words otherwise)."""
        with self._spellings_lock:
            self._spellings.pop(collection, None)

    # -- search -----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        collection: str = "",
        top_k: int = 0,
        score_threshold: float = 0.0,
        filter: dict[str, str] | None = None,
        mode: SearchModeName = "hybrid",
        mmr: bool = False,
        mmr_lambda: float = 0.0,
        highlights: bool = False,
    ) -> SearchOutcome:
        query = require_text(query, field="query", limit=self.settings.max_query_chars, hint="send the customer's question")
        top_k = top_k or self.settings.default_top_k
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}")
        if not 0.0 <= mmr_lambda <= 1.0:
            raise InvalidArgument(f"mmr_lambda must be between 0 and 1, got {mmr_lambda}")
        for key, value in (filter or {}).items():
            if not _FILTER_KEY.fullmatch(key):
                raise InvalidArgument(f"filter key {key!r} is invalid: use letters, digits, '_' or '-'")
            if not value:
                raise InvalidArgument(f"filter value for {key!r} is empty")
        if not math.isfinite(score_threshold) or not -1.0 <= score_threshold <= 1.0:
            raise InvalidArgument(f"score_threshold must be a number between -1 and 1, got {score_threshold}")
        collection = self.existing_collection(collection)
        language = detect_language(query)
        embedder, using = self.query_embedder(collection, language)
        threshold = self.settings.threshold_for(embedder.model_name) if score_threshold == 0 else score_threshold

        started = time.perf_counter()
        dense = embedder.embed_query(query)
        sparse = self.sparse.embed_query(query)
        embedded = time.perf_counter()
        plan = QueryPlan(
            dense=dense,
            sparse=sparse,
            mode=mode,
            limit=top_k,
            filter=dict(filter or {}),
            mmr_lambda=(mmr_lambda or 0.7) if mmr else None,
            fusion_weights=(self.settings.dense_weight, self.settings.sparse_weight),
            rrf_k=self.settings.rrf_k,
            candidate_factor=self.settings.candidate_factor,
            using=using,
        )
        if using == MULTILINGUAL:
            plan.dense = self.feedback_query(collection, plan)
        raw = self.store.query(collection, plan)
        unknown = self.unknown_terms(collection, query, plan.filter)
        searched = time.perf_counter()
        query_vector = np.asarray(dense, dtype=np.float32)
        hits = []
        for hit in raw:
            cosine = float(np.dot(query_vector, hit.dense_vector)) if hit.dense_vector else 0.0
            if threshold >= 0 and cosine < threshold:
                continue
            hits.append(SearchHit(hit.payload, hit.score, cosine))
        # Reciprocal-rank fusion ties often (rank 1 + rank 2 scores the same as rank 2 + rank 1),
        # and the engine breaks ties arbitrarily. Here the passage BM25 ranked higher (the lower
        # cosine of the two) goes first, so the same question always gets the same order: on the
        # sample golden set that quotes more key facts than the closer match in meaning first
        # (0.831 vs 0.815 key-fact recall, extractive answers).
        if mode == "hybrid" and not mmr:
            hits.sort(key=lambda h: (-round(h.score, 9), h.dense_score, h.chunk.get("chunk_id", "")))
        if is_how_to(query) and not mmr:
            hits = prefer_procedures(hits, self.settings.procedure_margin)
        hits = prefer_language(hits, language, self.settings.language_margin)
        # Korean spellings of the collection's English words, read in the question's sentence:
        # only nouns can be loanwords ("빨갛" of "빨간" sounds like "black").
        spelled = self.loanword_spellings(collection, query) if any(has_hangul(w) for w in unknown) else {}
        nearest = self.nearest_words(unknown, hits, embedder, spelled)
        highlighted = time.perf_counter()
        if highlights and hits:
            self._highlight(hits, query_vector, embedder)
        return SearchOutcome(
            collection, hits, (embedded - started) * 1000, (searched - embedded) * 1000, list(dense), embedder.model_name,
            (time.perf_counter() - highlighted) * 1000 if highlights else 0.0, nearest,
        )

    def nearest_words(
        self, unknown: list[str], hits: list[SearchHit], embedder: Embedder, spelled: dict[str, str] | None = None,
    ) -> list[UnknownTerm]:
        """Each unknown word with the word of the returned passages (titles and text) closest to
        it in meaning under the query's embedder: a synonym the help center uses instead
        ("bitcoin": "cryptocurrency", "2fa": "two-step") or nothing close ("netflix"). Words are
        embedded alone and cached with the highlights' sentences (a help center's vocabulary is
        small and comes back), and only for a question that has an unknown word. A word of `spelled`
        (a Korean spelling of a word the collection writes in Latin letters) is that word
        (similarity 1)."""
        if not unknown:
            return []
        vocabulary = list(dict.fromkeys(
            word for hit in hits
            for word, _ in self.sparse.word_terms(f"{hit.chunk.get('title', '')} {hit.chunk.get('text', '')}")
        ))
        if not vocabulary:
            return [UnknownTerm(word) for word in unknown]
        vectors = self._sentence_embeddings(vocabulary + unknown, embedder)
        table = np.asarray([vectors[word] for word in vocabulary], dtype=np.float32)
        terms = []
        for word in unknown:
            # A Hangul spelling of a word the collection writes in Latin letters ("리브레오피스" for
            # "libreoffice") is that word: the encoder puts the two far apart (0.32 cosine to the
            # passages' closest word), so answerability declined answerable questions over partly
            # translated help centers (libreoffice-dm-ko dm08).
            if spelled and word in spelled:
                terms.append(UnknownTerm(word, spelled[word], 1.0))
                continue
            similarities = table @ np.asarray(vectors[word], dtype=np.float32)
            best = int(np.argmax(similarities))
            terms.append(UnknownTerm(word, vocabulary[best], float(similarities[best])))
        return terms

    def loanword_spellings(self, collection: str, text: str) -> dict[str, str]:
        """The Korean nouns of `text` that spell a word the collection writes in Latin letters,
        by sound ("리브레오피스": "libreoffice"), each with that word; a loanword the analyzer
        splits counts whole, each of its pieces mapped to the word. The collection's Latin words
        are read once and kept by their sound skeletons, read again when its number of points
        changes."""
        runs = korean_noun_runs(text)
        if not runs:
            return {}
        spellings = self._latin_spellings(collection)
        found: dict[str, str] = {}
        for run in runs:
            for first in range(len(run)):
                for last in range(len(run), first, -1):
                    pieces = run[first:last]
                    latin = next((spellings[s] for s in sorted(hangul_sound_skeletons("".join(pieces))) if s in spellings), None)
                    if latin is not None:
                        found.update(dict.fromkeys((*pieces, "".join(pieces)), latin))
                        break
        return found

    def _latin_spellings(self, collection: str) -> dict[str, str]:
        points = self.store.count_points(collection)
        with self._spellings_lock:
            cached = self._spellings.get(collection)
        if cached is None or cached[0] != points:
            spellings: dict[str, str] = {}
            for point in self.store.scroll_points(collection):
                text = f"{point.payload.get('title', '')} {point.payload.get('text', '')}"
                for latin in dict.fromkeys(w.lower() for w in _LATIN_WORD.findall(text)):
                    for skeleton in latin_sound_skeletons(latin):
                        spellings.setdefault(skeleton, latin)
            cached = (points, spellings)
            with self._spellings_lock:
                self._spellings[collection] = cached
        return cached[1]

    def unknown_terms(self, collection: str, text: str, filter: dict[str, str] | None = None) -> list[str]:
        """The content words of `text` (SparseEmbedder.word_terms: English words, Korean content
        morphemes) that no passage of the collection (those `filter` selects) is indexed by: a
        BM25 query of the word's own terms finds no point. One sparse lookup per word, on the
        engine's inverted index, so it stays current with every ingest and delete."""
        unknown = []
        for word, indices in self.sparse.word_terms(text):
            probe = QueryPlan(
                dense=[], sparse=(indices, [1.0] * len(indices)), mode="sparse", limit=1,
                filter=dict(filter or {}), mmr_lambda=None,
            )
            if not self.store.query(collection, probe):
                unknown.append(word)
        return unknown

    def feedback_query(self, collection: str, plan: QueryPlan) -> list[float]:
        """A question searched across languages (the multilingual vector of an English collection)
        moves toward its best few passages before the search that counts (Rocchio pseudo-relevance
        feedback): the passages' English wording fills in what the encoder's cross-lingual match
        of a short question leaves out. Korean golden questions over the English sample, hit@5:
        0.833 without, 0.881 with the 3 best and weight 0.2, the middle of a range of settings
        that all gain (bench/retrieval_quality.py, default collections; chosen on that set)."""
        count, weight = self.settings.cross_lingual_feedback_passages, self.settings.cross_lingual_feedback_weight
        if not count or not weight:
            return plan.dense
        best = self.store.query(collection, replace(plan, mode="dense", limit=count, mmr_lambda=None))
        vectors = [hit.dense_vector for hit in best if hit.dense_vector]
        if not vectors:
            return plan.dense
        moved = np.asarray(plan.dense, dtype=np.float32) + weight * np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
        return [float(x) for x in moved / max(float(np.linalg.norm(moved)), 1e-12)]

    def _sentence_embeddings(self, sentences: list[str], embedder: Embedder) -> dict[str, np.ndarray]:
        """One embedding call for every sentence not seen before, of all results together."""
        found: dict[str, np.ndarray] = {}
        with self._sentence_lock:
            for sentence in sentences:
                key = (embedder.model_name, sentence)
                if key in self._sentence_vectors:
                    self._sentence_vectors.move_to_end(key)
                    found[sentence] = self._sentence_vectors[key]
        missing = list(dict.fromkeys(s for s in sentences if s not in found))
        if missing:
            vectors = embedder.embed_documents(missing)
            with self._sentence_lock:
                for sentence, vector in zip(missing, vectors, strict=True):
                    found[sentence] = vector
                    self._sentence_vectors[(embedder.model_name, sentence)] = vector
                while len(self._sentence_vectors) > self.settings.highlight_cache_size:
                    self._sentence_vectors.popitem(last=False)
        return found

    def _highlight(self, hits: list[SearchHit], query_vector: np.ndarray, embedder: Embedder) -> None:
        spans = [sentence_spans(hit.chunk.get("text", "")) for hit in hits]
        texts = [[hit.chunk.get("text", "")[a:b] for a, b in hit_spans] for hit, hit_spans in zip(hits, spans, strict=True)]
        vectors = self._sentence_embeddings([t for hit_texts in texts for t in hit_texts], embedder)
        for hit, hit_spans, hit_texts in zip(hits, spans, texts, strict=True):
            hit.highlights = [
                Highlight(text, float(np.dot(query_vector, vectors[text])), start, end)
                for (start, end), text in zip(hit_spans, hit_texts, strict=True)
            ]

    def stats(self, collection: str = "") -> list[tuple[str, int, int, str]]:
        names = [self.existing_collection(collection)] if collection else self.store.collections()
        return [(n, self.store.count_documents(n), self.store.count_points(n), self.model_of(n) or "") for n in names]
