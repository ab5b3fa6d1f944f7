"""Where extractive answers lose their key facts, question by question (issue 28: Korean real
corpora). Each answerable question that misses a key fact gets one class, the first that holds:

    e   the fact is not in the page's ingested text at all (extraction, or how the fact is written)
    d   declined although the help center answers it (answerability; the reason is printed)
    a   the right page is not in the retriever's top 5 pages (top 10 passages searched)
    b   the right page is in the top 5, but the answer quotes another article
    c   the answer quotes the right article, and the fact is in the passages retrieved of it,
        but not in the quoted sentences (budget, sentence or section choice)
    c2  the answer quotes the right article, but no retrieved passage of it holds the fact
        (another chunk of the page has it)

Off-topic questions answered are listed too. The answers are the in-process extractive answers
of bench/answer_quality.py (the retriever's knowledge base and the gateway's composer in this
process), so the key-fact recall printed is that bench's.

`--data-dir` keeps the ingested collections between runs: a change to the answer path or to
search (not to ingest) is measured again without ingesting again.

Run: python bench/miss_classes.py --sets gimp-ko,libreoffice-wc-ko,libreoffice-dm-ko,libreoffice-ko
     [--data-dir /tmp/miss-classes] [--json rows.json] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.answer_quality import InProcess, asked_query, load  # noqa: E402
from bench.corpora import CORPORA  # noqa: E402
from supportbot.answers.text import normalize, plain  # noqa: E402

CLASSES = ("a", "b", "c", "c2", "d", "e")


def states(text: str, fact: str) -> bool:
    """As supportbot.evaluation.heuristic.key_fact_recall reads a fact ("fact|alternative")."""
    written = normalize(plain(text))
    return any(normalize(alternative.strip()) in written for alternative in fact.split("|"))


def page_name(document_id: str) -> str:
    """Golden sets name pages by their path in the package; ingested folders by file name."""
    return document_id.rsplit("/", 1)[-1]


class Diagnosis(InProcess):
    """InProcess with its collections in `data_dir` (kept between runs when given), and the
    reason of the last declined answer."""

    def __init__(self, data_dir: Path) -> None:
        from services.gateway.answering import AnswerComposer
        from services.gateway.settings import GatewaySettings
        from services.retriever.server import build_knowledge_base
        from services.retriever.settings import RetrieverSettings

        self.kb = build_knowledge_base(RetrieverSettings(data_dir=data_dir))
        self.settings = GatewaySettings(answerability_enabled=True)
        self.composer = AnswerComposer(self.settings, None)  # type: ignore[arg-type]
        self.highlights = "retriever"
        self.ingested = set(self.kb.store.collections())
        self.reason = ""
        fixed = self.composer.fixed

        def recording(answer, text, reason=""):  # type: ignore[no-untyped-def]
            self.reason = reason
            return fixed(answer, text, reason)

        self.composer.fixed = recording  # type: ignore[method-assign]


async def diagnose(runner: Diagnosis, set_name: str, cache: Path) -> list[dict]:
    corpus = CORPORA[set_name]
    await runner.ensure(corpus, cache)
    pages: dict[str, list[str]] = {}
    for point in runner.kb.store.scroll_points(corpus.collection):
        pages.setdefault(page_name(point.payload.get("document_id", "")), []).append(
            f"{point.payload.get('title', '')}\n{point.payload.get('text', '')}")
    items = load(corpus.golden)
    by_id = {i["id"]: i for i in items}
    rows = []
    for item in items:
        parent = by_id.get(item.get("follow_up_of", ""))
        hits = runner.kb.search(asked_query(item, parent), collection=corpus.collection, top_k=10).hits
        ranked = list(dict.fromkeys(page_name(h.chunk.get("document_id", "")) for h in hits))
        relevant = {page_name(d) for d in item.get("relevant_document_ids") or []}
        rank = next((n for n, page in enumerate(ranked, 1) if page in relevant), None)
        runner.reason = ""
        outcome = await runner.ask(item, parent, corpus.collection, "extractive")
        cited = {page_name(d) for d in outcome.cited_documents}
        row = {"set": set_name, "id": item["id"], "question": item["question"], "answerable": item["answerable"],
               "grounded": outcome.grounded, "rank": rank, "cited": sorted(cited), "relevant": sorted(relevant),
               "key_facts": item.get("key_facts", []), "answer": outcome.answer, "reason": runner.reason, "class": None}
        if item["answerable"] and item.get("key_facts"):
            found = [states(outcome.answer, fact) for fact in item["key_facts"]]
            missing = [fact for fact, ok in zip(item["key_facts"], found, strict=True) if not ok]
            page = "\n".join(text for name in relevant for text in pages.get(name, []))
            retrieved = "\n".join(f"{s.title}\n{s.text}" for s in outcome.sources if page_name(s.document_id) in relevant)
            row["recall"] = sum(found) / len(found)
            if missing:
                row["class"] = (
                    "e" if not all(states(page, fact) for fact in missing)
                    else "d" if not outcome.grounded
                    else "a" if rank is None or rank > 5
                    else "b" if not cited & relevant
                    else "c" if all(states(retrieved, fact) for fact in missing)
                    else "c2"
                )
        elif outcome.grounded:
            row["class"] = "off-topic answered"
        rows.append(row)
    return rows


def summary(set_name: str, rows: list[dict]) -> str:
    answerable = [r for r in rows if r["answerable"] and r["key_facts"]]
    off_topic = [r for r in rows if not r["answerable"]]
    n = max(len(answerable), 1)
    classes = Counter(r["class"] for r in answerable if r["class"])
    return (f"{set_name}: key facts {sum(r['recall'] for r in answerable) / n:.3f} ({len(answerable)} questions), "
            f"hit@1 {sum(r['rank'] == 1 for r in answerable) / n:.3f}, "
            f"hit@5 {sum(1 for r in answerable if r['rank'] and r['rank'] <= 5) / n:.3f}, "
            f"answerable declined {sum(not r['grounded'] for r in answerable)}, "
            f"off-topic declined {sum(not r['grounded'] for r in off_topic)} of {len(off_topic)}; misses: "
            + ", ".join(f"{c} {classes[c]}" for c in CLASSES))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", required=True)
    parser.add_argument("--data-dir", type=Path, help="keep the ingested collections here between runs")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    parser.add_argument("--json", type=Path, help="write every question's row here")
    parser.add_argument("--show", action="store_true", help="print every miss")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="miss-classes-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    runner = Diagnosis(data_dir)
    everything = []
    for set_name in args.sets.split(","):
        rows = await diagnose(runner, set_name, args.cache)
        everything.extend(rows)
        print(summary(set_name, rows), flush=True)
        for row in rows if args.show else []:
            if row["class"]:
                print(f"  [{row['class']}] {row['id']} rank {row['rank']}: {row['question']}\n"
                      f"      facts {row['key_facts']}, page {row['relevant']}, quoted {row['cited']}\n"
                      f"      {row['answer'][:300]!r} {row['reason']}")
    if args.json:
        args.json.write_text(json.dumps(everything, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
