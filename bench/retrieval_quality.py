"""Retrieval quality on the golden sets, side by side in one run: hit rate@1/@5, MRR@10,
recall@5, nDCG@5 and unanswerable questions kept below the score threshold.

1. The English help center and golden set: dense-only, BM25-only and hybrid, with the English
   model (all-MiniLM-L6-v2) and the multilingual one (universal-sentence-encoder-multilingual v3).
2. The Korean help center and golden set: the same, and BM25 with whitespace vs morphological
   (Kiwi) tokenization.
3. Cross-lingual: Korean questions over the English help center, English questions over the
   Korean one (the English questions whose articles the Korean help center has).
4. A mixed-language collection (both help centers): how often a question's top five put the other
   language's version of an article ahead of its own language's version.

Run: python bench/retrieval_quality.py [--backend edge|server]
Targets: English hit rate@5 >= 0.9, MRR@10 >= 0.75, hybrid no worse than dense-only; Korean
hit@5 >= 0.85 from BM25 alone and >= 0.90 hybrid; cross-lingual hit@5 >= 0.70; no question of
the mixed collection ranks the other language's version first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import knowledge_base, sample_knowledge_base  # noqa: E402
from services.retriever.embedding import DEFAULT_MODEL, MULTILINGUAL_USE, Embedders  # noqa: E402
from supportbot.evaluation.retrieval import mean, score_ranking  # noqa: E402
from supportbot.sample import (  # noqa: E402
    HELPCENTER,
    KOREAN_GOLDEN_SET,
    KOREAN_HELPCENTER,
    conversational_query,
    load_golden_set,
)

console = Console()
METRICS = ("hit@1", "hit@5", "mrr@10", "recall@5", "ndcg@5", "unanswerable below threshold")


def evaluate(kb, golden: list[dict], mode: str, collection: str = "", document_of: Callable[[str], str] = str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    by_id = {item["id"]: item for item in golden}
    rows: dict[str, list[float]] = {name: [] for name in METRICS}
    threshold = kb.settings.threshold_for(kb.embedder_for(collection or kb.settings.default_collection).model_name)
    for item in golden:
        query = conversational_query(item, by_id)
        outcome = kb.search(query, collection=collection, mode=mode, top_k=10, score_threshold=-1)
        ranked = list(dict.fromkeys(document_of(hit.chunk["document_id"]) for hit in outcome.hits))
        if not item["answerable"]:
            best = max((hit.dense_score for hit in outcome.hits), default=0.0)
            rows["unanswerable below threshold"].append(1.0 if best < threshold else 0.0)
            continue
        relevant = set(item["relevant_document_ids"])
        at1, at5, at10 = (score_ranking(ranked, relevant, k) for k in (1, 5, 10))
        rows["hit@1"].append(at1.hit_rate)
        rows["hit@5"].append(at5.hit_rate)
        rows["mrr@10"].append(at10.mrr)
        rows["recall@5"].append(at5.recall)
        rows["ndcg@5"].append(at5.ndcg)
    return {name: mean(values) for name, values in rows.items()}


def show(title: str, results: dict[str, dict[str, float]]) -> None:
    table = Table(title=title)
    table.add_column("configuration")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for name, scores in results.items():
        table.add_row(name, *(f"{scores[m]:.3f}" if scores[m] == scores[m] else "-" for m in METRICS))
    console.print(table)


def other_language_first(kb, golden: list[dict], own: str, other: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Questions whose top five hold both language versions of a relevant article, and of those,
    how many rank the other language's version first."""
    by_id = {item["id"]: item for item in golden}
    both = wrong = 0
    for item in golden:
        if not item["answerable"]:
            continue
        hits = kb.search(conversational_query(item, by_id), collection="kb", top_k=5, score_threshold=-1).hits
        ranked = list(dict.fromkeys(hit.chunk["document_id"] for hit in hits))
        for document in item["relevant_document_ids"]:
            mine, theirs = own + document, other + document
            if mine in ranked and theirs in ranked:
                both += 1
                wrong += ranked.index(theirs) < ranked.index(mine)
    return both, wrong


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["edge", "server"], default="edge")
    args = parser.parse_args()
    english, korean = load_golden_set(), load_golden_set(KOREAN_GOLDEN_SET)
    embedders = Embedders()

    kb = sample_knowledge_base(args.backend)
    results = {f"MiniLM {mode}": evaluate(kb, english, mode) for mode in ("dense", "sparse", "hybrid")}
    english_use = knowledge_base([(HELPCENTER, "")], MULTILINGUAL_USE, embedders)
    results |= {f"USE-multilingual {mode}": evaluate(english_use, english, mode, "kb") for mode in ("dense", "hybrid")}
    show(f"English golden set ({len(english)} questions) over the English help center ({args.backend} backend)", results)

    results = {}
    for model, label in ((DEFAULT_MODEL, "MiniLM"), (MULTILINGUAL_USE, "USE-multilingual")):
        for morphology in (False, True):
            kb = knowledge_base([(KOREAN_HELPCENTER, "")], model, embedders, morphology=morphology)
            tokens = "morphological" if morphology else "whitespace"
            if model == DEFAULT_MODEL or not morphology:
                results[f"BM25 only, {tokens}"] = evaluate(kb, korean, "sparse", "kb")
            if morphology or model == MULTILINGUAL_USE:
                results[f"{label} hybrid, {tokens} BM25"] = evaluate(kb, korean, "hybrid", "kb")
            if morphology:
                results[f"{label} dense only"] = evaluate(kb, korean, "dense", "kb")
    show(f"Korean golden set ({len(korean)} questions) over the Korean help center", results)

    korean_documents = {path.stem for path in KOREAN_HELPCENTER.rglob("*.md")}
    covered = [item for item in english if not item.get("follow_up_of")
               and (not item["answerable"] or set(item["relevant_document_ids"]) & korean_documents)]
    english_kb = knowledge_base([(HELPCENTER, "")], MULTILINGUAL_USE, embedders)
    korean_kb = knowledge_base([(KOREAN_HELPCENTER, "")], MULTILINGUAL_USE, embedders)
    results = {}
    for mode in ("dense", "hybrid"):
        results[f"Korean questions, English help center, {mode}"] = evaluate(english_kb, korean, mode, "kb")
        results[f"English questions ({len(covered)}), Korean help center, {mode}"] = evaluate(korean_kb, covered, mode, "kb")
    show("Cross-lingual, universal-sentence-encoder-multilingual v3 (no translation)", results)

    mixed = knowledge_base([(HELPCENTER, "en/"), (KOREAN_HELPCENTER, "ko/")], MULTILINGUAL_USE, embedders)

    def document(document_id: str) -> str:
        return document_id.split("/", 1)[1]

    results = {
        "English questions": evaluate(mixed, english, "hybrid", "kb", document),
        "Korean questions": evaluate(mixed, korean, "hybrid", "kb", document),
    }
    show("Mixed-language collection (both help centers), hybrid, USE-multilingual", results)
    for name, golden, own, other in (("English", english, "en/", "ko/"), ("Korean", korean, "ko/", "en/")):
        both, wrong = other_language_first(mixed, golden, own, other)
        console.print(f"{name} questions: {both} relevant articles in the top five in both languages; "
                      f"the other language's version ranked first for {wrong}")


if __name__ == "__main__":
    main()
