"""How close two questions must be for the answer cache to treat them as one (no stack, the
retriever's embedding model only).

The sample golden set's first questions play the cached questions. `bench/data/paraphrases.jsonl`
holds, for each, customer-style paraphrases (which should hit it) and near misses: questions
worded almost the same that need another answer ("per year" for "per month", "apple pay" for
"paypal", an added "after a firmware update"), which must not. For each pair of thresholds
(similarity alone; similarity when the content words are the same) this prints the share of
paraphrases that hit their own question, hits on another question, and near misses that would
be served, with the gateway's rule (`services/gateway/answer_cache.py: same_question`).

Run: python bench/answer_cache.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from services.gateway.answer_cache import same_question  # noqa: E402
from services.gateway.settings import GatewaySettings  # noqa: E402
from services.retriever.embedding import DenseEmbedder  # noqa: E402
from supportbot.evaluation.records import load_golden  # noqa: E402
from supportbot.sample import GOLDEN_SET  # noqa: E402

PARAPHRASES = Path(__file__).parent / "data" / "paraphrases.jsonl"
console = Console()


def main() -> None:
    embedder = DenseEmbedder()
    cached = [item for item in load_golden(GOLDEN_SET) if not item.follow_up_of]
    questions = {item.id: item.question for item in cached}
    ids = list(questions)
    matrix = np.array([embedder.embed_query(questions[i]) for i in ids], dtype=np.float32)
    records = [json.loads(line) for line in PARAPHRASES.read_text().splitlines() if line.strip()]

    def nearest(text: str) -> tuple[str, float]:
        similarities = matrix @ np.asarray(embedder.embed_query(text), dtype=np.float32)
        best = int(similarities.argmax())
        return ids[best], float(similarities[best])

    paraphrases = [(r["golden_id"], q, *nearest(q)) for r in records for q in r.get("paraphrases", [])]
    near_misses = [(r["golden_id"], q, *nearest(q)) for r in records for q in r.get("near_misses", [])]
    defaults = GatewaySettings()
    table = Table(title=f"{len(paraphrases)} paraphrases and {len(near_misses)} near misses of {len(ids)} golden questions")
    for column in ("similarity", "same words", "paraphrases hit", "wrong question", "near misses served"):
        table.add_column(column, justify="right")
    for similarity in (0.85, 0.88, 0.90, 0.93, 0.95, 0.97):
        for same_words in (0.75, 0.80, 0.85):
            settings = defaults.model_copy(update={
                "answer_cache_similarity": similarity, "answer_cache_same_words_similarity": same_words,
            })
            hit = sum(g == n and same_question(s, q, questions[n], settings) for g, q, n, s in paraphrases)
            wrong = sum(g != n and same_question(s, q, questions[n], settings) for g, q, n, s in paraphrases)
            served = sum(same_question(s, q, questions[n], settings) for _, q, n, s in near_misses)
            chosen = (similarity, same_words) == (defaults.answer_cache_similarity, defaults.answer_cache_same_words_similarity)
            table.add_row(f"{similarity:.2f}", f"{same_words:.2f}", f"{hit / len(paraphrases):.3f}", str(wrong), str(served),
                          style="bold" if chosen else None)
    console.print(table)
    hardest = sorted(near_misses, key=lambda r: -r[3])[:5]
    console.print("closest near misses: " + "; ".join(f"{q!r} -> {questions[n]!r} {s:.3f}" for _, q, n, s in hardest))
    console.print(f"the gateway's defaults (bold): similarity {defaults.answer_cache_similarity}, "
                  f"same words {defaults.answer_cache_same_words_similarity}")


if __name__ == "__main__":
    main()
