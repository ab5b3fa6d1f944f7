"""Rank metrics for retrieval, with relevance judged by document id (a document counts once,
at its best rank)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def unique_documents(ranked: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    ordered = []
    for document_id in ranked:
        if document_id not in seen:
            seen.add(document_id)
            ordered.append(document_id)
    return ordered


def hit_rate(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if any(d in relevant for d in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    for rank, document_id in enumerate(ranked[:k], start=1):
        if document_id in relevant:
            return 1.0 / rank
    return 0.0


def precision(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1 for d in ranked[:k] if d in relevant) / k


def recall(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return sum(1 for d in ranked[:k] if d in relevant) / len(relevant) if relevant else 0.0


def ndcg(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, d in enumerate(ranked[:k], start=1) if d in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


@dataclass
class RetrievalScores:
    hit_rate: float
    mrr: float
    precision: float
    recall: float
    ndcg: float


def score_ranking(ranked_chunks_documents: Sequence[str], relevant: set[str], k: int) -> RetrievalScores:
    ranked = unique_documents(ranked_chunks_documents)
    return RetrievalScores(
        hit_rate=hit_rate(ranked, relevant, k),
        mrr=reciprocal_rank(ranked, relevant, k),
        precision=precision(ranked, relevant, k),
        recall=recall(ranked, relevant, k),
        ndcg=ndcg(ranked, relevant, k),
    )


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
