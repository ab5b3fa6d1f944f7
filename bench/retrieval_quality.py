"""Retrieval quality on the sample golden set: hit rate@1/@5, MRR@10, recall@5, nDCG@5, for
dense-only and hybrid search, side by side in one run.

Run: python bench/retrieval_quality.py [--backend edge|server]
Targets: hit rate@5 >= 0.9, MRR@10 >= 0.75, hybrid no worse than dense-only on any metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import sample_knowledge_base  # noqa: E402
from supportbot.evaluation.retrieval import mean, score_ranking  # noqa: E402
from supportbot.sample import conversational_query, load_golden_set  # noqa: E402


def evaluate(kb, mode: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    golden = load_golden_set()
    by_id = {item["id"]: item for item in golden}
    rows: dict[str, list[float]] = {"hit@1": [], "hit@5": [], "mrr@10": [], "recall@5": [], "ndcg@5": []}
    unanswerable_rejected = []
    for item in golden:
        query = conversational_query(item, by_id)
        outcome = kb.search(query, mode=mode, top_k=10, score_threshold=-1)
        ranked = [hit.chunk["document_id"] for hit in outcome.hits]
        if not item["answerable"]:
            best = max((hit.dense_score for hit in outcome.hits), default=0.0)
            unanswerable_rejected.append(1.0 if best < kb.settings.score_threshold else 0.0)
            continue
        relevant = set(item["relevant_document_ids"])
        at1, at5, at10 = (score_ranking(ranked, relevant, k) for k in (1, 5, 10))
        rows["hit@1"].append(at1.hit_rate)
        rows["hit@5"].append(at5.hit_rate)
        rows["mrr@10"].append(at10.mrr)
        rows["recall@5"].append(at5.recall)
        rows["ndcg@5"].append(at5.ndcg)
    scores = {name: mean(values) for name, values in rows.items()}
    scores["unanswerable below threshold"] = mean(unanswerable_rejected)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["edge", "server"], default="edge")
    args = parser.parse_args()
    kb = sample_knowledge_base(args.backend)
    results = {mode: evaluate(kb, mode) for mode in ("dense", "hybrid")}
    table = Table(title=f"Retrieval quality on the golden set ({args.backend} backend)")
    table.add_column("metric")
    for mode in results:
        table.add_column(mode, justify="right")
    for metric in results["dense"]:
        table.add_row(metric, *(f"{results[mode][metric]:.3f}" for mode in results))
    Console().print(table)


if __name__ == "__main__":
    main()
