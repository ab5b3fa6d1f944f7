"""Judge-free variants of the answer metrics: embedding similarity and word overlap stand in for
the judge's verdicts, so `supportbot eval` always has numbers. Each follows the DeepEval
definition of its namesake with "supported" meaning "a sentence of the evidence is at least
`threshold` cosine-similar" instead of "the judge said yes"."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]
"""Texts -> unit-length row vectors (so a dot product is a cosine similarity)."""

_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")


def sentences(text: str) -> list[str]:
    """The text's sentences and list items, without citation markers or bullets."""
    text = _CITATION.sub("", text)
    parts = (part.strip(" \t-*•#>") for part in _SENTENCE_END.split(text))
    return [part for part in parts if len(_WORD.findall(part.lower())) >= 2]


def _context_sentences(contexts: Sequence[str]) -> list[str]:
    return [s for context in contexts for s in sentences(context)]


def supported_fraction(claims: Sequence[str], evidence: Sequence[str], embed: Embed, threshold: float) -> float:
    """The share of claims with a piece of evidence at least `threshold` similar."""
    if not claims:
        return 1.0
    if not evidence:
        return 0.0
    similarity = embed(claims) @ embed(evidence).T
    return float(np.mean(similarity.max(axis=1) >= threshold))


def faithfulness(answer: str, contexts: Sequence[str], embed: Embed, threshold: float) -> float:
    """Claims (sentences) of the answer that the retrieved context supports."""
    return supported_fraction(sentences(answer), _context_sentences(contexts), embed, threshold)


def answer_relevancy(question: str, answer: str, embed: Embed, threshold: float) -> float:
    """Statements (sentences) of the answer that are about the question."""
    return supported_fraction((sentences(answer) or [answer]) if answer.strip() else [], [question], embed, threshold)


def contextual_relevancy(question: str, contexts: Sequence[str], embed: Embed, threshold: float) -> float:
    """Statements of the retrieved context that are about the question."""
    statements = _context_sentences(contexts)
    if not statements:
        return 0.0
    return supported_fraction(statements, [question], embed, threshold)


def contextual_recall(reference_answer: str, contexts: Sequence[str], embed: Embed, threshold: float) -> float:
    """Sentences of the reference answer that the retrieved context supports."""
    return supported_fraction(sentences(reference_answer) or [reference_answer], _context_sentences(contexts), embed, threshold)


def contextual_precision(relevance: Sequence[bool]) -> float:
    """DeepEval's contextual precision with relevance known (by document id) instead of judged:
    the mean of precision@k over the ranks k that hold a relevant chunk."""
    relevant_so_far, total = 0, 0.0
    for rank, relevant in enumerate(relevance, start=1):
        if relevant:
            relevant_so_far += 1
            total += relevant_so_far / rank
    return total / relevant_so_far if relevant_so_far else 0.0


def answer_similarity(answer: str, reference_answer: str, embed: Embed) -> float:
    """Cosine similarity of the answer and the reference answer, clipped to 0..1."""
    if not answer.strip() or not reference_answer.strip():
        return 0.0
    vectors = embed([answer, reference_answer])
    return float(np.clip(vectors[0] @ vectors[1], 0.0, 1.0))


def token_f1(answer: str, reference_answer: str) -> float:
    """SQuAD-style word-overlap F1 between the answer and the reference answer."""
    predicted = Counter(_WORD.findall(_CITATION.sub("", answer).lower()))
    expected = Counter(_WORD.findall(reference_answer.lower()))
    common = sum((predicted & expected).values())
    if not common:
        return 0.0
    precision = common / sum(predicted.values())
    recall = common / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def summary_scores(transcript: str, summary: str, embed: Embed, threshold: float) -> tuple[float, float]:
    """(alignment, coverage) without a judge: summary sentences the conversation supports, and
    conversation sentences the summary covers."""
    said = [s for line in transcript.splitlines() for s in sentences(line.split(":", 1)[-1])]
    summarized = sentences(summary)
    alignment = supported_fraction(summarized, said, embed, threshold) if summarized else 0.0
    coverage = supported_fraction(said, summarized, embed, threshold) if summarized else 0.0
    return alignment, coverage


def key_fact_recall(answer: str, key_facts: Sequence[str]) -> float:
    """Share of the key facts the answer states (each "fact|alternative"; case, markup and dash
    style ignored)."""
    from supportbot.answers.text import normalize, plain

    text = normalize(plain(answer))
    found = sum(any(normalize(alt.strip()) in text for alt in fact.split("|")) for fact in key_facts)
    return found / len(key_facts) if key_facts else 0.0
