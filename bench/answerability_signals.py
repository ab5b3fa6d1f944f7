"""Collection-relative answerability signals, measured beside the current ones (issue 28, item 6).

The current decision (supportbot/answers/answerability.py) adds the best passage's cosine, half
the question's lexical coverage and an unknown-word penalty, against one threshold per language.
Under the multilingual encoder that Korean collections use, cosines are compressed (about
0.2-0.5 for everything), and answerable and off-topic questions overlap. The candidates here
judge the best cosine against the collection itself:

- peak: the best dense similarity minus the mean (or median) of the next k (off-topic: a flat
  list; answerable: one passage stands out);
- z: the best similarity as a z-score against the question's similarities to the collection's
  chunks (all of them, and a fixed random 256), the hubness / background normalisation;
- wig: the mean of the top 5 minus the question's mean similarity to the collection (weighted
  information gain, Zhou & Croft), and nqc: the standard deviation of the top 10 over that mean's
  magnitude (normalised query commitment, Shtok et al.), the score-based query performance
  predictors;
- csls: 2 x best - r_q - r_d (cross-domain similarity local scaling): r_q the question's mean
  similarity to its 10 nearest chunks, r_d the best chunk's mean similarity to its 10 nearest
  chunks (a hub chunk near everything counts less);
- centered: the best cosine after subtracting the collection's mean vector from the question and
  the chunks (global centering, a hubness reduction);
- gateway peak: the same peak over the hits the gateway already receives (top 4 hybrid sources'
  dense scores): needs nothing new from the retriever.

Step 1, `--collect` (in-process, heavy: ingests every corpus): one row per question of the dev
sets with the current signals and the candidates' inputs, written as JSON.
Step 2, `--analyse` (cheap): per language, for each candidate, the current score (its
similarity weighed 1, 0.5 or 0) plus w x the candidate (a weight grid), a threshold halfway
between the lowest answerable question of the choosing half and the highest uncovered one below
it, and what that declines on the checking half: uncovered questions declined and answerable
ones lost (also with 1 and 2 answerable questions allowed lost on the choosing half); then, per
collection, each signal's AUC and what a threshold of the collection's own could decline at zero
answerable lost (the bound on any per-collection normalisation of that signal).

Findings (rows: bench/data/answerability_candidates.json, 2026-12-01): no candidate declines
more than one more Korean uncovered question at the same answerable loss on the checking half,
with either split (README "Knowing when not to answer"); inside each real Korean collection the raw cosine separates better (AUC 0.875-0.90) than
any collection-relative candidate (peak 0.38-0.88, z 0.28-0.83), and even a threshold of the
collection's own declines at most 4 of gimp-ko's 8, 5 of libreoffice-wc-ko's 8 and 6 of
libreoffice-dm-ko's 8 uncovered questions without losing an answerable one: the overlap is
inside each collection, which no collection-wide normalisation moves.

Run: flock /tmp/supportbot-heavy.lock python bench/answerability_signals.py --collect --out rows.json
     python bench/answerability_signals.py --analyse --rows bench/data/answerability_candidates.json [--split sets|parity]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from bench.answer_quality import InProcess, asked_query, load  # noqa: E402
from bench.corpora import CORPORA  # noqa: E402

SETS = (
    "sample,python-faq,gimp,libreoffice,off-topic-en,"
    "korean,libreoffice-ko,gimp-ko,libreoffice-wc-ko,libreoffice-dm-ko,off-topic-ko"
)
TOP = 20
BACKGROUND_SAMPLE = 256
NEIGHBOURS = 10
# One question's signals (see collect).
Row = dict[str, Any]


class Collection:
    """A collection's chunk vectors (the named vector its questions are searched with), their
    mean, and each chunk's mean similarity to its nearest other chunks (r_d of CSLS)."""

    def __init__(self, runner: InProcess, name: str, using: str) -> None:
        kb = runner.kb
        collection = kb.existing_collection(name)
        points = list(kb.store.scroll_points(collection))
        vectors = [p.multilingual if using != "dense" else p.dense for p in points]
        self.ids = [str(p.payload.get("chunk_id", p.id)) for p in points]
        self.matrix = np.asarray(vectors, dtype=np.float32)
        self.index = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        mean = self.matrix.mean(axis=0)
        self.mean = mean
        self.centered = self.matrix - mean
        self.centered /= np.maximum(np.linalg.norm(self.centered, axis=1, keepdims=True), 1e-12)
        similarities = self.matrix @ self.matrix.T
        np.fill_diagonal(similarities, -np.inf)
        k = min(NEIGHBOURS, len(self.ids) - 1)
        self.r_d = (
            np.sort(similarities, axis=1)[:, -k:].mean(axis=1) if k > 0 else np.zeros(len(self.ids))
        )
        rng = np.random.default_rng(0)
        self.sample = rng.choice(
            len(self.ids), size=min(BACKGROUND_SAMPLE, len(self.ids)), replace=False
        )


def candidate_inputs(
    runner: InProcess, collection: str, query: str, cache: dict[str, Collection]
) -> Row:
    """The question's dense similarities to every chunk of the collection (with the embedder and
    named vector the retriever would search it with) and what the candidates need of them."""
    from supportbot.core.language import detect_language

    kb = runner.kb
    name = kb.existing_collection(collection)
    embedder, using = kb.query_embedder(name, detect_language(query))
    key = f"{name}/{using}"
    if key not in cache:
        cache[key] = Collection(runner, name, using)
    chunks = cache[key]
    q = np.asarray(
        embedder.embed_query(query[-runner.settings.backends.max_query_chars :]), dtype=np.float32
    )
    similarities = chunks.matrix @ q
    order = np.argsort(-similarities)
    best = int(order[0])
    centered_q = q - chunks.mean
    centered_q /= max(float(np.linalg.norm(centered_q)), 1e-12)
    sample = similarities[chunks.sample]
    return {
        "model": embedder.model_name,
        "vector": using,
        "chunks": len(chunks.ids),
        "top": [round(float(s), 5) for s in similarities[order[:TOP]]],
        "bg_mean": float(similarities.mean()),
        "bg_std": float(similarities.std()),
        "bg256_mean": float(sample.mean()),
        "bg256_std": float(sample.std()),
        "r_d": float(chunks.r_d[best]),
        "centered_top": float((chunks.centered @ centered_q).max()),
    }


async def collect(args: argparse.Namespace) -> None:
    from supportbot.answers.answerability import coverage, unknown_in_question
    from supportbot.answers.compose import extractive_answer
    from supportbot.answers.grounding import Evidence

    runner = InProcess(args.highlights, answerability=False)
    rows: list[Row] = []
    cache: dict[str, Collection] = {}
    for set_name in args.sets.split(","):
        corpus = CORPORA[set_name]
        started = time.perf_counter()
        await runner.ensure(corpus, args.cache)
        ingested = time.perf_counter()
        items = load(corpus.golden)
        by_id = {i["id"]: i for i in items}
        for item in items:
            parent = by_id.get(item.get("follow_up_of", ""))
            query = asked_query(item, parent)
            found = runner.search(query, corpus.collection)
            sources = found.sources
            evidence = Evidence(sources)
            context = parent["question"] if parent else ""
            composed = (
                extractive_answer(item["question"], evidence, context=context) if sources else None
            )
            rows.append(
                {
                    "set": set_name,
                    "language": corpus.language,
                    "id": item["id"],
                    "question": item["question"],
                    "answerable": item["answerable"],
                    "retrieved": bool(sources),
                    "similarity": max((s.dense_score for s in sources), default=0.0),
                    "coverage": coverage(item["question"], evidence, context) if sources else 0.0,
                    "support": composed.relevance if composed else 0.0,
                    "unknown_terms": [
                        [t.term, t.nearest_word, t.nearest_similarity]
                        for t in unknown_in_question(item["question"], found.unknown_terms)
                    ],
                    # The dense scores of the sources the gateway receives, in their order.
                    "gateway_dense": [round(float(s.dense_score), 5) for s in sources],
                    **candidate_inputs(runner, corpus.collection, query, cache),
                }
            )
        print(
            f"{set_name}: {len(items)} questions, ingest {ingested - started:.0f} s, "
            f"questions {time.perf_counter() - ingested:.0f} s",
            flush=True,
        )
        args.out.write_text(json.dumps({"sets": args.sets, "rows": rows}, ensure_ascii=False))


# -- analysis ---------------------------------------------------------------------------------


def current_score(row: Row) -> float:
    """The product's score today (answerability.py's weights; same-language questions)."""
    from supportbot.answers.answerability import (
        COVERAGE_WEIGHT,
        SIMILARITY_WEIGHT,
        SUPPORT_WEIGHT,
        UNKNOWN_TERM_WEIGHT,
    )

    return float(
        SIMILARITY_WEIGHT * row["similarity"]
        + COVERAGE_WEIGHT * row["coverage"]
        + SUPPORT_WEIGHT * row["support"]
        - UNKNOWN_TERM_WEIGHT * _shortfall(row)
    )


def _shortfall(row: Row) -> float:
    from supportbot.answers.answerability import UNKNOWN_TERM_CLOSENESS

    return float(
        sum(max(0.0, UNKNOWN_TERM_CLOSENESS - nearest) for _, _, nearest in row["unknown_terms"])
    )


def _peak(
    top: list[float], k: int, middle: Callable[[list[float]], float] = statistics.fmean
) -> float:
    rest = top[1 : k + 1]
    return top[0] - middle(rest) if rest else 0.0


CANDIDATES: dict[str, Callable[[Row], float]] = {
    "none": lambda r: 0.0,
    "peak5": lambda r: _peak(r["top"], 5),
    "peak10": lambda r: _peak(r["top"], 10),
    "peak19": lambda r: _peak(r["top"], 19),
    "peak10-median": lambda r: _peak(r["top"], 10, statistics.median),
    "gap1": lambda r: r["top"][0] - r["top"][1] if len(r["top"]) > 1 else 0.0,
    "gateway-peak": lambda r: _peak(r["gateway_dense"], 3) if len(r["gateway_dense"]) > 1 else 0.0,
    "z-all": lambda r: (r["top"][0] - r["bg_mean"]) / max(r["bg_std"], 1e-6),
    "z-256": lambda r: (r["top"][0] - r["bg256_mean"]) / max(r["bg256_std"], 1e-6),
    "best-minus-bg": lambda r: r["top"][0] - r["bg_mean"],
    "wig5": lambda r: statistics.fmean(r["top"][:5]) - r["bg_mean"],
    "nqc10": lambda r: statistics.pstdev(r["top"][:10]) / max(abs(r["bg_mean"]), 1e-3),
    "csls": lambda r: 2 * r["top"][0] - statistics.fmean(r["top"][:NEIGHBOURS]) - r["r_d"],
    "centered": lambda r: r["centered_top"],
    # Not collection-relative: the current score's own parts reweighed, for comparison (a
    # positive weight on the shortfall takes back part of the unknown-word penalty).
    "unknown-shortfall": lambda r: _shortfall(r),
    "coverage": lambda r: r["coverage"],
}
# Candidates on another scale than a cosine (a z-score, a ratio): their weights run smaller.
WEIGHTS = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
SMALL_WEIGHTS = [0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2]
SMALL = {"z-all", "z-256", "nqc10"}
MARGIN = 0.005
SIMILARITY_WEIGHTS = [1.0, 0.5, 0.0]


def split(rows: list[Row], how: str) -> tuple[list[Row], list[Row]]:
    """Choosing and checking halves. `sets`: whole collections apart (the written sample sets,
    python-faq, libreoffice-ko and gimp choose; the rest check), and off-topic questions by the
    parity of their number (odd choose). `parity`: every set's questions by the parity of their
    position in it (even choose), so every collection is in both halves."""
    choose_sets = {"sample", "python-faq", "gimp", "korean", "libreoffice-ko", "gimp-ko"}
    chosen: list[Row] = []
    checked: list[Row] = []
    position: dict[str, int] = {}
    for row in rows:
        n = position[row["set"]] = position.get(row["set"], -1) + 1
        if how == "parity":
            (chosen if n % 2 == 0 else checked).append(row)
        elif row["set"].startswith("off-topic"):
            number = int(re.findall(r"\d+", row["id"])[-1])
            (chosen if number % 2 == 1 else checked).append(row)
        else:
            (chosen if row["set"] in choose_sets else checked).append(row)
    return chosen, checked


def scored(
    row: Row, signal: Callable[[Row], float], weight: float, similarity_weight: float = 1.0
) -> float:
    """The current score with `similarity_weight` x the best cosine instead of 1 x, plus
    `weight` x the candidate."""
    return (
        current_score(row)
        - (1.0 - similarity_weight) * float(row["similarity"])
        + weight * signal(row)
    )


Score = Callable[[Row], float]


def choose(rows: list[Row], score: Score, allowed_lost: int) -> tuple[float, int, float]:
    """The threshold that loses at most `allowed_lost` retrieved answerable questions of `rows`,
    halfway between the answerable question it keeps lowest and the highest uncovered one below
    it; the uncovered questions it declines, and its margin."""
    scores = [(score(r), r["answerable"]) for r in rows if r["retrieved"]]
    answerable = sorted(s for s, a in scores if a)
    lowest = answerable[allowed_lost] if len(answerable) > allowed_lost else 0.0
    below = [s for s, a in scores if not a and s < lowest]
    threshold = (lowest + max(below)) / 2 if below else lowest - MARGIN
    margin = lowest - max(below) if below else 1.0
    return threshold, len(below), margin


def outcome(rows: list[Row], score: Score, threshold: float) -> tuple[int, int, int, int, int]:
    """Uncovered questions declined (those the retriever returns nothing for are declined
    already), of how many; answerable ones lost by the decision, lost by the retriever's floor
    (nothing returned), of how many."""
    declined = lost = floor = 0
    for r in rows:
        refused = not r["retrieved"] or score(r) < threshold
        if r["answerable"]:
            lost += r["retrieved"] and refused
            floor += not r["retrieved"]
        else:
            declined += refused
    return (
        declined,
        sum(not r["answerable"] for r in rows),
        lost,
        floor,
        sum(r["answerable"] for r in rows),
    )


def separation(rows: list[Row], signal: Score) -> float:
    """AUC: the chance a retrieved answerable question scores above a retrieved uncovered one;
    0.5 is no separation."""
    pos = [signal(r) for r in rows if r["answerable"] and r["retrieved"]]
    neg = [signal(r) for r in rows if not r["answerable"] and r["retrieved"]]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def per_set(rows: list[Row], score: Score, threshold: float) -> str:
    parts = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        d, nd, lost, floor, _ = outcome([r for r in rows if r["set"] == set_name], score, threshold)
        parts.append(
            f"{set_name} {d}/{nd}"
            + (f" lost {lost}" if lost else "")
            + (f" (+{floor} floor)" if floor else "")
        )
    return ", ".join(parts)



def collection_rows(rows: list[dict], set_name: str) -> list[dict]:
    """One collection's questions; the sample help centers' own off-topic files with theirs."""
    off_topic = {"sample": "off-topic-en", "korean": "off-topic-ko"}.get(set_name)
    return [r for r in rows if r["set"] in (set_name, off_topic)]

def analyse(args: argparse.Namespace) -> None:
    from supportbot.answers.answerability import THRESHOLDS

    rows = json.loads(args.rows.read_text())["rows"]
    for language in ("en", "ko"):
        mine = [r for r in rows if r["language"] == language]
        chosen, checked = split(mine, args.split)
        print(
            f"\n== {language}: choose on {len(chosen)} questions ({sum(not r['answerable'] for r in chosen)} uncovered: "
            f"{', '.join(dict.fromkeys(r['set'] for r in chosen))}), check on {len(checked)} "
            f"({sum(not r['answerable'] for r in checked)} uncovered: {', '.join(dict.fromkeys(r['set'] for r in checked))}); "
            f"split: {args.split}"
        )
        product = THRESHOLDS[language]
        print(
            f"product today (threshold {product}): all {language} sets: {per_set(mine, current_score, product)}"
        )
        print(
            f"{'candidate':>14} {'AUC':>5} {'AUC+':>5} | {'may lose':>8} {'sim w':>5} {'w':>5} {'thr':>6} "
            f"{'chose':>5} {'all*':>4} | {'check: declined':>15} {'lost':>4} | per check set: declined (answerable lost)"
        )
        for name, signal in CANDIDATES.items():
            weights = [0.0] if name == "none" else SMALL_WEIGHTS if name in SMALL else WEIGHTS
            # The baseline: today's score, its threshold chosen on the same half.
            grid = (
                [(1.0, 0.0)]
                if name == "none"
                else [(a, w) for a in SIMILARITY_WEIGHTS for w in weights]
            )
            for allowed in (0, 1, 2):
                # The weights that decline the most on the choosing half with a margin; ties to the
                # full similarity weight and the smaller candidate weight.
                trials = []
                for a, w in grid:
                    score = functools.partial(scored, signal=signal, weight=w, similarity_weight=a)
                    threshold, declined, margin = choose(chosen, score, allowed)
                    _, in_sample, _ = choose(mine, score, allowed)
                    trials.append(
                        (
                            (margin >= MARGIN, declined, a, -w),
                            threshold,
                            score,
                            a,
                            w,
                            declined,
                            in_sample,
                        )
                    )
                _, threshold, score, a, w, declined, _ = max(trials, key=lambda t: t[0])
                best_in_sample = max(t[6] for t in trials)
                d, nd, lost, floor, na = outcome(checked, score, threshold)
                auc = separation(mine, signal) if name != "none" else float("nan")
                print(
                    f"{name:>14} {auc:5.3f} {separation(mine, score):5.3f} | {allowed:8d} {a:5.2f} {w:5.2f} {threshold:6.3f} "
                    f"{declined:5d} {best_in_sample:4d} | {d:>7d} of {nd:<5d} {lost:>4d} | {per_set(checked, score, threshold)}"
                )
    print(
        "\nPer set, the AUC of each signal alone within one collection (retrieved questions; a collection-wide shift "
        "of scores cannot fix what overlaps inside one collection):"
    )
    names = ["similarity", "current", *[n for n in CANDIDATES if n != "none"]]
    signals: list[Score] = [lambda r: r["similarity"], current_score, *[c for n, c in CANDIDATES.items() if n != "none"]]
    sets = [s for s in dict.fromkeys(r["set"] for r in rows) if not s.startswith("off-topic")]
    print(f"{'set':>18} " + " ".join(f"{n[:9]:>9}" for n in names))
    for set_name in sets:
        mine = collection_rows(rows, set_name)
        print(f"{set_name:>18} " + " ".join(f"{separation(mine, sig):9.3f}" for sig in signals))
    print(
        "\nPer set, uncovered questions declined (of all, the retriever's empty answers included) by each signal "
        "alone with a threshold of the set's own, just under its lowest answerable question (in-sample: the most "
        "any per-collection normalisation of that signal could decline at zero answerable questions lost):"
    )
    print(f"{'set':>18} " + " ".join(f"{n[:9]:>9}" for n in names))
    for set_name in sets:
        mine = collection_rows(rows, set_name)
        cells = []
        for sig in signals:
            lowest = min((sig(r) for r in mine if r["answerable"] and r["retrieved"]), default=0.0)
            declined = sum(
                1 for r in mine if not r["answerable"] and (not r["retrieved"] or sig(r) < lowest)
            )
            cells.append(f"{declined:>4d}/{sum(not r['answerable'] for r in mine):<4d}")
        print(f"{set_name:>18} " + " ".join(cells))
    print(
        "\nAUC: the candidate alone separating retrieved answerable from uncovered questions (all the language's sets); "
        "AUC+: the chosen combination. chose: uncovered retrieved questions declined on the choosing half; all*: the most "
        "any weight declines choosing on all the language's questions at once (in-sample, an upper bound). lost: "
        "answerable questions the decision refuses on the check half (floor: the retriever returned nothing)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collect", action="store_true", help="ingest and record the rows (heavy)")
    parser.add_argument(
        "--analyse", action="store_true", help="choose and check on recorded rows (cheap)"
    )
    parser.add_argument("--sets", default=SETS)
    parser.add_argument("--out", type=Path, default=Path("answerability_rows.json"))
    parser.add_argument("--rows", type=Path, default=Path("answerability_rows.json"))
    parser.add_argument("--split", choices=("sets", "parity"), default="sets")
    parser.add_argument("--highlights", choices=("retriever", "stand-in"), default="retriever")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench"
    )
    args = parser.parse_args()
    if args.collect:
        asyncio.run(collect(args))
    if args.analyse:
        analyse(args)


if __name__ == "__main__":
    main()
