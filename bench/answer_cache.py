"""How close two questions must be for the answer cache to treat them as one (no stack, the
retriever's embedding model only).

The sample golden set's first questions play the cached questions. For some of them,
`bench/data/paraphrases-*.jsonl` holds customer-style paraphrases (which should hit their
question) and near misses: questions worded almost the same that need another answer ("per year"
for "per month", "apple pay" for "paypal", an added "after a firmware update"), which must not.

The thresholds are chosen on one part and reported on the other. The split is fixed and by golden
question (every paraphrase and near miss of a question is in one part): the golden ids in sorted
order, alternately `tune` (even positions) and `report` (odd positions). On the tune part this
sweeps both thresholds (similarity alone; similarity when the content words are the same) and
picks the pair with the most paraphrase hits and no hit on another question and no near miss
served, the strictest pair among equals; it then reports that pair and the gateway's defaults on
the report part, which played no part in the choice.

A lookup is the gateway's (`services/gateway/answer_cache.py`): the `answer_cache_candidates`
closest cached questions at or above the lower threshold, closest first, the first that passes
`same_question` answering. (The gateway also needs the cited chunks retrieved again, which needs
the stack: `python bench/gateway_bench.py --only cache`.)

Run: python bench/answer_cache.py
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from services.gateway.answer_cache import same_question  # noqa: E402
from services.gateway.settings import AnswerCacheSettings  # noqa: E402
from services.retriever.embedding import DenseEmbedder  # noqa: E402
from supportbot.answers.text import terms  # noqa: E402
from supportbot.evaluation.records import load_golden  # noqa: E402
from supportbot.sample import GOLDEN_SET  # noqa: E402

DATA = Path(__file__).parent / "data"
SPLITS = {"tune": DATA / "paraphrases-tune.jsonl", "report": DATA / "paraphrases-report.jsonl"}
SIMILARITIES = (0.85, 0.88, 0.90, 0.93, 0.95, 0.97)
SAME_WORDS = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.93, 0.95)
console = Console()


def load_split(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Probe:
    golden_id: str  # the question it paraphrases, or the one it nearly repeats
    text: str
    similarities: np.ndarray  # to every cached question


@dataclass(frozen=True)
class Outcome:
    hit: int
    wrong: int
    served: int
    paraphrases: int
    near_misses: int

    @property
    def hit_rate(self) -> float:
        return self.hit / self.paraphrases

    @property
    def safe(self) -> bool:
        return not self.wrong and not self.served

    def cell(self) -> str:
        return f"{self.hit_rate:.3f} {self.wrong}/{self.served}"


class Bench:
    def __init__(self) -> None:
        self.embedder = DenseEmbedder()
        cached = [item for item in load_golden(GOLDEN_SET) if not item.follow_up_of]
        self.ids = [item.id for item in cached]
        self.questions = {item.id: item.question for item in cached}
        self.matrix = np.array([self.embedder.embed_query(self.questions[i]) for i in self.ids], dtype=np.float32)

    def probes(self, records: list[dict], kind: str) -> list[Probe]:
        return [
            Probe(r["golden_id"], text, self.matrix @ np.asarray(self.embedder.embed_query(text), dtype=np.float32))
            for r in records for text in r.get(kind, [])
        ]

    def answered_by(self, probe: Probe, settings: AnswerCacheSettings) -> str | None:
        """The cached question whose answer the gateway would serve (sources aside)."""
        floor = min(settings.answer_cache_similarity, settings.answer_cache_same_words_similarity)
        for index in np.argsort(-probe.similarities)[: settings.answer_cache_candidates]:
            similarity = float(probe.similarities[index])
            if similarity < floor:
                break
            if same_question(similarity, probe.text, self.questions[self.ids[index]], settings):
                return self.ids[index]
        return None

    def outcome(self, paraphrases: list[Probe], near_misses: list[Probe], settings: AnswerCacheSettings) -> Outcome:
        answers = [(p.golden_id, self.answered_by(p, settings)) for p in paraphrases]
        return Outcome(
            hit=sum(golden == served for golden, served in answers),
            wrong=sum(served is not None and golden != served for golden, served in answers),
            served=sum(self.answered_by(p, settings) is not None for p in near_misses),
            paraphrases=len(paraphrases),
            near_misses=len(near_misses),
        )

    def same_words_pairs(self, paraphrases: list[Probe]) -> list[float]:
        """Similarities of the paraphrases whose content words are those of their own question:
        the only pairs the same-words threshold decides."""
        index = {golden: i for i, golden in enumerate(self.ids)}
        return sorted(
            float(p.similarities[index[p.golden_id]]) for p in paraphrases
            if set(terms(p.text)) == set(terms(self.questions[p.golden_id]))
        )


def settings_with(defaults: AnswerCacheSettings, similarity: float, same_words: float) -> AnswerCacheSettings:
    return defaults.model_copy(update={"answer_cache_similarity": similarity, "answer_cache_same_words_similarity": same_words})


def main() -> None:
    bench = Bench()
    defaults = AnswerCacheSettings()
    splits = {name: load_split(path) for name, path in SPLITS.items()}
    paraphrases = {name: bench.probes(records, "paraphrases") for name, records in splits.items()}
    near_misses = {name: bench.probes(records, "near_misses") for name, records in splits.items()}

    # The same-words threshold relaxes the other one: pairs where it would be the stricter are left out.
    tune = {
        (similarity, same_words): bench.outcome(paraphrases["tune"], near_misses["tune"], settings_with(defaults, similarity, same_words))
        for similarity in SIMILARITIES for same_words in SAME_WORDS if same_words <= similarity
    }
    table = Table(title=(
        f"Tune part: {len(paraphrases['tune'])} paraphrases and {len(near_misses['tune'])} near misses of "
        f"{len(splits['tune'])} golden questions ({defaults.answer_cache_candidates} candidates a lookup); "
        "each cell: paraphrases hit / hits on another question / near misses served"
    ))
    table.add_column("similarity \\ same words", justify="right")
    for same_words in SAME_WORDS:
        table.add_column(f"{same_words:.2f}", justify="right")
    for similarity in SIMILARITIES:
        table.add_row(f"{similarity:.2f}", *(tune[pair].cell() if (pair := (similarity, same_words)) in tune else "–"
                                             for same_words in SAME_WORDS))
    console.print(table)

    # The most hits with nothing wrong served; among equals the strictest pair.
    chosen = max((pair for pair, outcome in tune.items() if outcome.safe), key=lambda pair: (tune[pair].hit, pair))
    pairs = {name: bench.same_words_pairs(paraphrases[name]) for name in splits}
    for name, found in pairs.items():
        console.print(
            f"{name} part: {len(found)} paraphrases with their question's content words, similarity "
            + (", ".join(f"{s:.3f}" for s in found) if found else "none")
        )
    console.print(f"chosen on the tune part: similarity {chosen[0]:.2f}, same words {chosen[1]:.2f}")

    report = Table(title=(
        f"Report part (not used to choose): {len(paraphrases['report'])} paraphrases and "
        f"{len(near_misses['report'])} near misses of {len(splits['report'])} golden questions"
    ))
    for column in ("setting", "similarity", "same words", "paraphrases hit", "wrong question", "near misses served"):
        report.add_column(column, justify="right")
    rows = {"chosen on tune": chosen, "gateway default": (defaults.answer_cache_similarity, defaults.answer_cache_same_words_similarity)}
    for label, (similarity, same_words) in rows.items():
        outcome = bench.outcome(paraphrases["report"], near_misses["report"], settings_with(defaults, similarity, same_words))
        report.add_row(label, f"{similarity:.2f}", f"{same_words:.2f}", f"{outcome.hit}/{outcome.paraphrases} ({outcome.hit_rate:.3f})",
                       str(outcome.wrong), f"{outcome.served}/{outcome.near_misses}")
    console.print(report)
    everything = [*near_misses["tune"], *near_misses["report"]]
    closest = sorted(everything, key=lambda p: -float(p.similarities.max()))[:5]
    console.print("closest near misses (both parts): " + "; ".join(
        f"{p.text!r} -> {bench.questions[bench.ids[int(p.similarities.argmax())]]!r} {float(p.similarities.max()):.3f}"
        for p in closest
    ))


if __name__ == "__main__":
    main()
