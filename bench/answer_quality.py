"""Answer quality, side by side for every answer mode, through the running stack (`make up`):

- key-fact recall (share of each question's key facts the answer states), cited rate (grounded
  answers with at least one citation), degenerate rate (a repeated line, sentence or 6-gram),
  faithfulness (embedding: answer sentences a source sentence supports), token F1 against the
  reference answer, abstention accuracy, answer length, answers at the token limit, and
  whole-turn latency p50/p95 (client wall time, one question at a time);
- on two sets: the sample help center's golden set (the dev set the thresholds were chosen on)
  and a held-out public corpus nobody here wrote: the Python FAQ pages of Debian's
  python3.11-doc package (bench/data/python_faq_golden.jsonl), ingested as collection
  `python-faq` on first use; and the Korean sample help center's golden set (`--sets korean`,
  collection helpcenter-ko as `supportbot up` ingests it; faithfulness with the multilingual
  encoder);
- "before" is the answer path this project shipped until now, measured in the same run: the
  model's answer with no repetition stop, repetition penalty 1.0 and 256 tokens;
- `--decoding-sweep` compares repetition penalties for the generated answer (with the
  repetition stop on), which is how the gateway's decoding defaults were chosen.

Run: python bench/answer_quality.py [--modes extractive,verified,generative,before]
     [--generated-limit 20] [--sets sample,python-faq] [--data-dir D] [--decoding-sweep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.answers.repetition import is_degenerate  # noqa: E402
from supportbot.client import SupportbotClient, documents_from_paths  # noqa: E402
from supportbot.core.auth import local_key  # noqa: E402
from supportbot.core.settings import default_data_dir  # noqa: E402
from supportbot.evaluation import heuristic  # noqa: E402
from supportbot.evaluation.scoring import EvalSettings  # noqa: E402
from supportbot.sample import GOLDEN_SET, KOREAN_COLLECTION, KOREAN_GOLDEN_SET  # noqa: E402
from supportbot.v1 import chat_pb2, common_pb2, generator_pb2  # noqa: E402

console = Console()
HERE = Path(__file__).resolve().parent
PYTHON_FAQ_GOLDEN = HERE / "data" / "python_faq_golden.jsonl"
PYTHON_FAQ_COLLECTION = "python-faq"
# Debian's package with the Python documentation; its FAQ pages are the held-out corpus.
PYTHON_DOC_PACKAGE = "python3.11-doc"
PYTHON_FAQ_DIR_IN_PACKAGE = "usr/share/doc/python3.11/html/faq"
MODES = {
    "extractive": chat_pb2.ANSWER_MODE_EXTRACTIVE,
    "verified": chat_pb2.ANSWER_MODE_VERIFIED,
    "generative": chat_pb2.ANSWER_MODE_GENERATIVE,
}
BEFORE_MAX_TOKENS = 256
DECODING_MAX_TOKENS = 160


def python_faq_pages(cache: Path) -> Path:
    """The FAQ's HTML pages from Debian's package (apt-get download; no root needed)."""
    pages = cache / "python-faq"
    if pages.is_dir() and any(pages.glob("*.html")):
        return pages
    work = Path(tempfile.mkdtemp(prefix="python-doc-"))
    subprocess.run(["apt-get", "download", PYTHON_DOC_PACKAGE], cwd=work, check=True, capture_output=True)
    deb = next(work.glob("*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    pages.mkdir(parents=True, exist_ok=True)
    for page in (work / "x" / PYTHON_FAQ_DIR_IN_PACKAGE).glob("*.html"):
        if page.name != "index.html":
            shutil.copy(page, pages / page.name)
    shutil.rmtree(work)
    return pages


@dataclass
class Outcome:
    item: dict
    answer: str
    grounded: bool
    cited: bool
    finish: int
    path: int
    sources: list[common_pb2.Source]
    seconds: float

    @property
    def contexts(self) -> list[str]:
        return [s.text for s in self.sources]


@dataclass
class Column:
    outcomes: list[Outcome] = field(default_factory=list)

    def figures(self, embed, support: float) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
        answerable = [o for o in self.outcomes if o.item["answerable"]]
        grounded = [o for o in self.outcomes if o.grounded]
        facts = [heuristic.key_fact_recall(o.answer, o.item["key_facts"]) for o in answerable if o.item.get("key_facts")]
        faithful = [heuristic.faithfulness(o.answer, o.contexts, embed, support) for o in grounded if o.contexts and o.answer]
        seconds = sorted(o.seconds for o in self.outcomes)

        def mean(values: list[float]) -> float | None:
            return statistics.fmean(values) if values else None

        return {
            "questions": len(self.outcomes),
            "key_fact_recall": mean(facts),
            "cited_rate": mean([float(o.cited) for o in grounded]),
            "degenerate_rate": mean([float(is_degenerate(o.answer)) for o in self.outcomes]),
            "faithfulness_embedding": mean(faithful),
            "token_f1": mean([heuristic.token_f1(o.answer, o.item["reference_answer"]) for o in answerable]),
            "abstention_accuracy": mean([float(o.grounded == o.item["answerable"]) for o in self.outcomes]),
            "answer_words": mean([float(len(o.answer.split())) for o in self.outcomes]),
            "at_token_limit": float(sum(o.finish == common_pb2.FINISH_REASON_LENGTH for o in self.outcomes)),
            "extractive_fallbacks": float(sum(o.path == chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK for o in self.outcomes)),
            "turn_p50_s": seconds[len(seconds) // 2] if seconds else None,
            "turn_p95_s": seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] if seconds else None,
        }


async def ask(client: SupportbotClient, item: dict, parent: dict | None, collection: str, mode: int) -> Outcome:
    session_id = ""
    if parent is not None:  # a follow-up is asked in its parent's conversation
        session_id, _, _ = await client.ask(parent["question"], collection=collection, answer_mode=mode, bypass_answer_cache=True)
    started = time.perf_counter()
    session_id, result, sources = await client.ask(
        item["question"], session_id=session_id, collection=collection, answer_mode=mode, bypass_answer_cache=True
    )
    seconds = time.perf_counter() - started
    return Outcome(item, result.answer, result.grounded, bool(result.citations), result.finish_reason,
                   result.answer_path, list(sources), seconds)


async def ask_before(client: SupportbotClient, item: dict, parent: dict | None, collection: str) -> Outcome:
    """The answer path as it was: retrieval, then the model's text as it comes, uncut."""
    return await ask_generator(client, item, parent, collection, max_tokens=BEFORE_MAX_TOKENS, penalty=1.0, stop=False)


async def ask_generator(
    client: SupportbotClient, item: dict, parent: dict | None, collection: str, *, max_tokens: int, penalty: float, stop: bool
) -> Outcome:
    """The model's answer to the retrieved sources, called directly with these decoding settings."""
    started = time.perf_counter()
    query = f"{parent['question']} {item['question']}" if parent else item["question"]
    try:
        sources = list((await client.search(query, collection=collection, top_k=4)).results)
    except Exception:  # noqa: BLE001 (no collection: nothing retrieved)
        sources = []
    if not sources:
        return Outcome(item, "", False, False, common_pb2.FINISH_REASON_NOT_GENERATED, 0, [], time.perf_counter() - started)
    result = None
    async for event in client.generator_stub.Generate(generator_pb2.GenerateRequest(
        question=item["question"], sources=sources, max_tokens=max_tokens, repetition_penalty=penalty,
        allow_repetition=not stop,
    )):
        if event.HasField("result"):
            result = event.result
    assert result is not None
    return Outcome(item, result.text, True, bool(result.citations), result.finish_reason, chat_pb2.ANSWER_PATH_GENERATED,
                   sources, time.perf_counter() - started)


async def ensure_python_faq(client: SupportbotClient, cache: Path) -> None:
    try:
        stats = await client.stats(PYTHON_FAQ_COLLECTION)
        if stats.collections and stats.collections[0].documents:
            return
    except Exception:  # noqa: BLE001 (not there yet)
        pass
    pages = python_faq_pages(cache)
    documents = [d for _, d in documents_from_paths([pages])]
    async for _ in client.ingest(documents, collection=PYTHON_FAQ_COLLECTION):
        pass


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="extractive,verified,generative,before")
    parser.add_argument("--sets", default="sample,python-faq")
    parser.add_argument("--generated-limit", type=int, default=20, help="questions per set for modes that run the model")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--decoding-sweep", action="store_true", help="compare repetition penalties (sample set)")
    parser.add_argument("--penalties", default="1.0,1.1,1.2")
    parser.add_argument("--threshold-sweep", action="store_true", help="re-verify the generative answers at several thresholds")
    args = parser.parse_args()
    keys = args.data_dir / "api-keys.json"
    from services.retriever.embedding import DenseEmbedder, UniversalSentenceEncoder

    embedder = DenseEmbedder()
    embed = embedder.embed_documents
    support = EvalSettings().support_similarity
    sets = {"sample": (GOLDEN_SET, ""), "python-faq": (PYTHON_FAQ_GOLDEN, PYTHON_FAQ_COLLECTION),
            "korean": (KOREAN_GOLDEN_SET, KOREAN_COLLECTION)}
    # Faithfulness compares answer and source sentences by meaning: Korean needs the multilingual encoder.
    embed_for = {"korean": UniversalSentenceEncoder().embed_documents}
    report: dict[str, dict[str, dict]] = {}
    # A customer key chats in the default collection only; the agent key asks in both sets'.
    async with SupportbotClient(api_key=local_key(keys, "admin")) as admin, \
            SupportbotClient(api_key=local_key(keys, "agent")) as customer:
        for set_name in args.sets.split(","):
            path, collection = sets[set_name]
            if collection == PYTHON_FAQ_COLLECTION:
                await ensure_python_faq(admin, args.cache)
            items = load(path)
            by_id = {i["id"]: i for i in items}
            report[set_name] = {}
            for mode in args.modes.split(","):
                chosen = items if mode == "extractive" else _spread(items, args.generated_limit)
                column = Column()
                for item in chosen:
                    parent = by_id.get(item.get("follow_up_of", ""))
                    if mode == "before":
                        column.outcomes.append(await ask_before(admin, item, parent, collection))
                    else:
                        column.outcomes.append(await ask(customer, item, parent, collection, MODES[mode]))
                report[set_name][mode] = column.figures(embed_for.get(set_name, embed), support)
                if args.threshold_sweep and set_name == "sample" and mode == "generative":
                    report["thresholds"] = threshold_sweep(column, [0.4, 0.5, 0.6, 0.7, 0.8], embed, support)
                console.print(f"[dim]{set_name} {mode}: {len(chosen)} questions done[/dim]")
            print_table(set_name, report[set_name])
        if "thresholds" in report:
            print_table("verification threshold (sample, generative answers re-verified)", report["thresholds"])
        if args.decoding_sweep:
            items = load(GOLDEN_SET)
            by_id = {i["id"]: i for i in items}
            sweep = {}
            for penalty in (float(p) for p in args.penalties.split(",")):
                column = Column()
                for item in _spread(items, args.generated_limit):
                    parent = by_id.get(item.get("follow_up_of", ""))
                    column.outcomes.append(await ask_generator(
                        admin, item, parent, "", max_tokens=DECODING_MAX_TOKENS, penalty=penalty, stop=True
                    ))
                sweep[f"penalty {penalty}"] = column.figures(embed, support)
            report["decoding"] = sweep
            print_table(f"decoding (sample, {DECODING_MAX_TOKENS} tokens, repetition stop on)", sweep)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def threshold_sweep(column: Column, thresholds: list[float], embed, support: float) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """The verification threshold against the model's raw answers (no new generation): what each
    threshold keeps, how faithful and how informative the kept sentences are."""
    from supportbot.answers.compose import render, verify
    from supportbot.answers.grounding import Evidence

    table = {}
    for threshold in thresholds:
        kept_share, faithful, facts = [], [], []
        for outcome in column.outcomes:
            if not outcome.sources or not outcome.answer:
                continue
            verifier = verify(Evidence(outcome.sources), outcome.answer, threshold=threshold,
                              truncated=outcome.finish == common_pb2.FINISH_REASON_LENGTH)
            kept_share.append(len(verifier.kept) / max(len(verifier.verdicts), 1))
            text = render(verifier.kept)
            if text:
                faithful.append(heuristic.faithfulness(text, outcome.contexts, embed, support))
            if outcome.item.get("key_facts"):
                facts.append(heuristic.key_fact_recall(text, outcome.item["key_facts"]))
        table[f"threshold {threshold}"] = {
            "sentences_kept": statistics.fmean(kept_share) if kept_share else None,
            "answers_with_a_kept_sentence": float(len(faithful)),
            "faithfulness_embedding": statistics.fmean(faithful) if faithful else None,
            "key_fact_recall": statistics.fmean(facts) if facts else None,
        }
    return table


def _spread(items: list[dict], limit: int) -> list[dict]:
    """`limit` items spread over the set (answerable and not, every category), in order."""
    if limit <= 0 or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def print_table(set_name: str, columns: dict[str, dict]) -> None:
    table = Table(title=f"answer quality: {set_name}")
    table.add_column("measure")
    for mode in columns:
        table.add_column(mode, justify="right")
    for measure in next(iter(columns.values())):
        row = []
        for figures in columns.values():
            value = figures[measure]
            row.append("–" if value is None else f"{value:.3f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}")
        table.add_row(measure, *row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
