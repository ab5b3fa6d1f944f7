"""Answer quality, side by side for every answer mode, on the same questions:

- key-fact recall (share of each question's key facts the answer states), cited rate (grounded
  answers with at least one citation), degenerate answers (a repeated line or a 0.2 share of
  repeated word 4-grams, counted by supportbot/evaluation/degeneration.py, independent of the
  repetition detector that stops generation), faithfulness of generated text (embedding
  similarity of each answer sentence to a source sentence: left out for quoted answers, which
  are their sources' sentences by construction), token F1 against the reference answer;
- whether the answer reads as one (supportbot/evaluation/answer_form.py, on the text the
  customer sees): answers opening with a sentence that depends on one not shown (from the
  hand-annotated bench/data/dependent_openers.jsonl; openers not annotated are counted too),
  lists without their lead-in, answers citing one article under two numbers, answers whose
  citation numbers do not run 1, 2, 3 in reading order;
- knowing when not to answer: abstention precision (declined questions that the help center
  does not cover) and recall (uncovered questions declined), accuracy, answerable questions
  lost; whole-turn latency p50/p95 (one question at a time);
- on the sets of bench/corpora.py (`--sets`): sample, korean, python-faq (a dev set: it has
  shaped code), off-topic-en, off-topic-ko;
- "before" is the answer path this project shipped first, measured in the same run: the
  model's answer with no repetition stop, repetition penalty 1.0 and 256 tokens, called
  grounded when the verifier keeps any of its sentences (as generative answers are).

Every mode answers the same questions: all of a set's, or with `--limit N` a stratified sample
of N that keeps the set's share of unanswerable questions.

Through the running stack (`make up`), or `--in-process`: the retriever's knowledge base and the
gateway's answer composer in this process, extractive mode only (no model), the conversation's
follow-ups searched together with the question they follow as the gateway does. Without the
retriever's highlights (Source.highlights), `--highlights stand-in` scores each source sentence
against the question with the collection's embedder as the retriever does.
`--calibrate` (in-process) prints the answerability signals and the weights and threshold that
separate the dev sets best (supportbot/answers/answerability.py), the penalty per question word
the collection never uses (the retriever's SearchResponse.unknown_terms) among them.

Run: python bench/answer_quality.py [--modes extractive,verified,generative,before] [--limit 16]
     [--sets sample,korean,python-faq] [--in-process [--highlights stand-in] [--calibrate]]
     [--decoding-sweep] [--threshold-sweep] [--json out.json] [--openers-out first.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.corpora import CORPORA, DATA, Corpus  # noqa: E402
from services.gateway.domain import SearchResult  # noqa: E402
from supportbot.evaluation import answer_form, degeneration, heuristic  # noqa: E402
from supportbot.evaluation.scoring import EvalSettings  # noqa: E402
from supportbot.v1 import chat_pb2, common_pb2, generator_pb2  # noqa: E402

console = Console()
DEPENDENT_OPENERS = DATA / "dependent_openers.jsonl"
MODES = {
    "extractive": chat_pb2.ANSWER_MODE_EXTRACTIVE,
    "verified": chat_pb2.ANSWER_MODE_VERIFIED,
    "generative": chat_pb2.ANSWER_MODE_GENERATIVE,
}
# Quoted answers are their sources' sentences: faithfulness is 1 by construction, not measured.
QUOTING_MODES = {"extractive"}
BEFORE_MAX_TOKENS = 256
DECODING_MAX_TOKENS = 160
# The support threshold "before" answers are verified with to call them grounded (the gateway's).
BEFORE_SUPPORT_THRESHOLD = 0.6


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
    cited_documents: list[str] = field(default_factory=list)
    answer_seconds: float | None = None  # the answer stage alone (in-process runs)

    @property
    def contexts(self) -> list[str]:
        return [s.text for s in self.sources]


@dataclass
class Column:
    outcomes: list[Outcome] = field(default_factory=list)

    def figures(self, embed, support: float, *, quoting: bool) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
        answerable = [o for o in self.outcomes if o.item["answerable"]]
        grounded = [o for o in self.outcomes if o.grounded]
        facts = [heuristic.key_fact_recall(o.answer, o.item["key_facts"]) for o in answerable if o.item.get("key_facts")]
        faithful = [] if quoting else [
            heuristic.faithfulness(o.answer, o.contexts, embed, support) for o in grounded if o.contexts and o.answer
        ]
        seconds = sorted(o.seconds for o in self.outcomes)
        answering = sorted(o.answer_seconds for o in self.outcomes if o.answer_seconds is not None)
        declined = [o for o in self.outcomes if not o.grounded]
        uncovered = [o for o in self.outcomes if not o.item["answerable"]]
        dependent, standalone = answer_form.load_dependent_openers(DEPENDENT_OPENERS)
        openers = [answer_form.first_sentence(o.answer) for o in grounded]

        def mean(values: list[float]) -> float | None:
            return statistics.fmean(values) if values else None

        def count(values) -> float:  # type: ignore[no-untyped-def]
            return float(sum(1 for v in values if v))

        return {
            "questions": len(self.outcomes),
            "key_fact_recall": mean(facts),
            "cited_rate": mean([float(o.cited) for o in grounded]),
            "degenerate (independent count)": count(degeneration.measure(o.answer).degenerate for o in self.outcomes),
            "faithfulness_embedding": mean(faithful),
            "token_f1": mean([heuristic.token_f1(o.answer, o.item["reference_answer"]) for o in answerable]),
            "opens on a sentence it depends on": count(opener in dependent for opener in openers),
            "openers not annotated": count(opener not in dependent and opener not in standalone for opener in openers),
            "lists without lead-in": count(answer_form.list_without_lead_in(o.answer) for o in grounded),
            "article under two numbers": count(answer_form.articles_under_two_numbers(o.cited_documents) for o in grounded),
            "citations out of reading order": count(not answer_form.citations_in_reading_order(o.answer) for o in grounded),
            "abstention_precision": mean([float(not o.item["answerable"]) for o in declined]),
            "abstention_recall": mean([float(not o.grounded) for o in uncovered]),
            "abstention_accuracy": mean([float(o.grounded == o.item["answerable"]) for o in self.outcomes]),
            "answerable declined": count(not o.grounded for o in answerable),
            "answer_words": mean([float(len(o.answer.split())) for o in self.outcomes]),
            "at_token_limit": float(sum(o.finish == common_pb2.FINISH_REASON_LENGTH for o in self.outcomes)),
            "extractive_fallbacks": float(sum(o.path == chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK for o in self.outcomes)),
            "turn_p50_s": seconds[len(seconds) // 2] if seconds else None,
            "turn_p95_s": seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] if seconds else None,
            "answer_stage_p50_ms": 1000 * answering[len(answering) // 2] if answering else None,
        }


def asked_query(item: dict, parent: dict | None) -> str:
    return f"{parent['question']} {item['question']}" if parent else item["question"]


def measured_grounding(text: str, sources: list[common_pb2.Source]) -> bool:
    """Whether the verifier keeps any sentence of a model's text (how the gateway calls a
    generated answer grounded), rather than assuming it."""
    from supportbot.answers.compose import verify
    from supportbot.answers.grounding import Evidence

    return bool(text.strip() and sources and verify(Evidence(sources), text, threshold=BEFORE_SUPPORT_THRESHOLD).kept)


class Stack:
    """The questions asked through the running stack's gateway (`make up`)."""

    def __init__(self, admin, customer) -> None:  # type: ignore[no-untyped-def]
        self.admin, self.customer = admin, customer

    async def ensure(self, corpus: Corpus, cache: Path) -> None:
        from supportbot.client import documents_from_paths

        try:
            stats = await self.admin.stats(corpus.collection)
            if stats.collections and stats.collections[0].documents:
                return
        except Exception:  # noqa: BLE001 (not there yet)
            pass
        folder = corpus.pages(cache)
        if folder is None:
            return
        documents = [d for _, d in documents_from_paths([folder])]
        async for _ in self.admin.ingest(documents, collection=corpus.collection):
            pass

    async def ask(self, item: dict, parent: dict | None, collection: str, mode: str) -> Outcome:
        if mode == "before":
            return await self.ask_generator(item, parent, collection, max_tokens=BEFORE_MAX_TOKENS, penalty=1.0, stop=False)
        client, session_id = self.customer, ""
        if parent is not None:  # a follow-up is asked in its parent's conversation
            session_id, _, _ = await client.ask(parent["question"], collection=collection, answer_mode=MODES[mode],
                                                bypass_answer_cache=True)
        started = time.perf_counter()
        session_id, result, sources = await client.ask(
            item["question"], session_id=session_id, collection=collection, answer_mode=MODES[mode], bypass_answer_cache=True
        )
        seconds = time.perf_counter() - started
        return Outcome(item, result.answer, result.grounded, bool(result.citations), result.finish_reason,
                       result.answer_path, list(sources), seconds, [c.document_id for c in result.citations])

    async def ask_generator(
        self, item: dict, parent: dict | None, collection: str, *, max_tokens: int, penalty: float, stop: bool
    ) -> Outcome:
        """The model's answer to the retrieved sources, called directly with these decoding settings."""
        started = time.perf_counter()
        try:
            sources = list((await self.admin.search(asked_query(item, parent), collection=collection, top_k=4)).results)
        except Exception:  # noqa: BLE001 (no collection: nothing retrieved)
            sources = []
        if not sources:
            return Outcome(item, "", False, False, common_pb2.FINISH_REASON_NOT_GENERATED, 0, [], time.perf_counter() - started)
        result = None
        async for event in self.admin.generator_stub.Generate(generator_pb2.GenerateRequest(
            question=item["question"], sources=sources, max_tokens=max_tokens, repetition_penalty=penalty,
            allow_repetition=not stop,
        )):
            if event.HasField("result"):
                result = event.result
        assert result is not None
        return Outcome(item, result.text, measured_grounding(result.text, sources), bool(result.citations),
                       result.finish_reason, chat_pb2.ANSWER_PATH_GENERATED, sources, time.perf_counter() - started,
                       [sources[c.index - 1].document_id for c in result.citations if 1 <= c.index <= len(sources)])


class InProcess:
    """The retriever's knowledge base and the gateway's answer composer in this process:
    extractive answers without the stack (no model, no network hops, so latency is the
    retrieval and composition only)."""

    def __init__(self, highlights: str, *, answerability: bool = True) -> None:
        from services.gateway.answering import AnswerComposer
        from services.gateway.settings import GatewaySettings
        from services.retriever.server import build_knowledge_base
        from services.retriever.settings import RetrieverSettings

        self.kb = build_knowledge_base(RetrieverSettings(data_dir=Path(tempfile.mkdtemp(prefix="answer-quality-"))))
        self.settings = GatewaySettings(answerability_enabled=answerability)
        self.composer = AnswerComposer(self.settings, None)  # type: ignore[arg-type]
        self.highlights = highlights
        self.ingested: set[str] = set()

    async def ensure(self, corpus: Corpus, cache: Path) -> None:
        from services.retriever.knowledge_base import DocumentInput
        from supportbot.client import documents_from_paths

        if corpus.collection in self.ingested:
            return
        folder = corpus.pages(cache)
        assert folder is not None, f"{corpus.name}: no pages to ingest"
        # One stream, as `supportbot ingest` sends a folder: the collection's model is chosen
        # from its first pages together.
        documents = (DocumentInput(content=document.content, source_path=str(path)) for path, document in documents_from_paths([folder]))
        list(self.kb.ingest_many(corpus.collection, documents))
        self.kb.finish_ingest(corpus.collection)
        self.ingested.add(corpus.collection)

    def search(self, query: str, collection: str) -> SearchResult:
        """The retriever's answer as the gateway receives it (sources and the question's words
        the collection never uses), through the knowledge base's search and the server's own
        conversion of its hits."""
        from services.retriever.server import source_message
        from supportbot.core.errors import NotFound

        try:
            # With highlights, as the gateway always asks (services/gateway/convert.py): the
            # composer picks the sentences it quotes by them.
            outcome = self.kb.search(query[-self.settings.backends.max_query_chars:], collection=collection,
                                     top_k=self.settings.backends.top_k, highlights=True)
        except NotFound:
            return SearchResult()
        sources = [source_message(h.chunk, h.score, h.dense_score, h.highlights) for h in outcome.hits]
        if self.highlights == "stand-in" and sources and not any(s.highlights for s in sources):
            stand_in_highlights(sources, query, self.kb.embedder_for(self.kb.existing_collection(collection)))
        return SearchResult(sources, [], outcome.embedding_model, outcome.unknown_terms)

    async def ask(self, item: dict, parent: dict | None, collection: str, mode: str) -> Outcome:
        from services.gateway.domain import AnswerMode, ChatRequest
        from services.gateway.pipeline.context import TurnContext

        assert mode == "extractive", "--in-process answers in extractive mode only (no model)"
        started = time.perf_counter()
        found = self.search(asked_query(item, parent), collection)
        sources = found.sources
        turn = TurnContext(ChatRequest(item["question"]), item["question"], AnswerMode(MODES[mode]), sources=sources,
                           unknown_terms=found.unknown_terms, follows=parent["question"] if parent else "")
        answer = turn.answer
        answering = time.perf_counter()
        if not sources:
            self.composer.fixed(answer, self.settings.fixed_replies.reply("ungrounded", "en"), "no source matched the question")
        else:
            async for _ in self.composer.stream(turn):
                pass
        done = time.perf_counter()
        return Outcome(item, answer.text, answer.grounded, bool(answer.citations), answer.finish, answer.path, sources,
                       done - started, [c.document_id for c in answer.citations], done - answering)


_SENTENCE = re.compile(r"[^\n.!?。]+(?:[.!?。]+|$)")


def stand_in_highlights(sources: list[common_pb2.Source], query: str, embedder) -> None:  # type: ignore[no-untyped-def]
    """Source.highlights as the retriever fills them (its sentences in text order, each with
    its cosine similarity to the query under the collection's embedder, offsets into the text),
    for runs against a retriever that does not fill them yet."""
    import numpy as np

    spans = [[(m.start(), m.end()) for m in _SENTENCE.finditer(s.text) if m.group().strip()] for s in sources]
    texts = [s.text[a:b].strip() for s, found in zip(sources, spans, strict=True) for a, b in found]
    if not texts:
        return
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    question = np.asarray(embedder.embed_query(query), dtype=np.float32)
    scores = iter((vectors @ question).tolist())
    for source, found in zip(sources, spans, strict=True):
        for a, b in found:
            source.highlights.add(text=source.text[a:b].strip(), score=next(scores), start=a, end=b)


def stratified(items: list[dict], limit: int) -> list[dict]:
    """`limit` questions spread over the set that keep its share of unanswerable ones (and
    every follow-up's parent stays available to ask it after)."""
    if limit <= 0 or limit >= len(items):
        return items
    unanswerable = [i for i in items if not i["answerable"]]
    answerable = [i for i in items if i["answerable"]]
    wanted_unanswerable = round(limit * len(unanswerable) / len(items))
    chosen = _spread(answerable, limit - wanted_unanswerable) + _spread(unanswerable, wanted_unanswerable)
    order = {id(i): n for n, i in enumerate(items)}
    return sorted(chosen, key=lambda i: order[id(i)])


def _spread(items: list[dict], limit: int) -> list[dict]:
    if limit <= 0:
        return []
    if limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def run_sets(runner, args, embed_for, support) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    report: dict[str, dict] = {}
    openers: list[dict] = []
    for set_name in args.sets.split(","):
        corpus = CORPORA[set_name]
        await runner.ensure(corpus, args.cache)
        items = load(corpus.golden)
        by_id = {i["id"]: i for i in items}
        chosen = stratified(items, args.limit)
        report[set_name] = {}
        for mode in args.modes.split(","):
            column = Column()
            for item in chosen:
                column.outcomes.append(await runner.ask(item, by_id.get(item.get("follow_up_of", "")), corpus.collection, mode))
            embed = embed_for(corpus.language)
            report[set_name][mode] = column.figures(embed, support, quoting=mode in QUOTING_MODES)
            openers.extend({"set": set_name, "mode": mode, "id": o.item["id"], "sentence": answer_form.first_sentence(o.answer),
                            "answer": o.answer, "cited_documents": o.cited_documents} for o in column.outcomes if o.grounded)
            if args.threshold_sweep and set_name == "sample" and mode == "generative":
                report["thresholds"] = threshold_sweep(column, [0.4, 0.5, 0.6, 0.7, 0.8], embed, support)
            console.print(f"[dim]{set_name} {mode}: {len(chosen)} questions done[/dim]")
        print_table(f"{set_name} ({len(chosen)} questions, every mode on the same)", report[set_name])
    if args.openers_out:
        args.openers_out.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in openers))
    return report


async def calibrate(args) -> None:  # type: ignore[no-untyped-def]
    """The answerability signals of every question of the dev sets (answerable golden
    questions, the unanswerable ones and the off-topic ones), and the weights and per-language
    thresholds that decline the most uncovered questions while losing no answerable one.
    Off-topic questions with an even number are held back from the choice and reported apart.
    `--calibration-rows` reuses the signals a previous run wrote with `--json`."""
    rows = json.loads(args.calibration_rows.read_text())["rows"] if args.calibration_rows else await signals(args)
    language = {name: corpus.language for name, corpus in CORPORA.items()}
    results = []
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    # Question words the collection never uses: the weight on how far each one's closest word in
    # the passages falls short of the closeness (rows of an older --json have none).
    unknown_grid = list(itertools.product([0.0, 0.5, 1.0, 2.0, 3.0, 5.0], [0.4, 0.45, 0.5, 0.55, 0.6]))
    for w_cov, w_sup, (w_unk, closeness) in itertools.product(grid, grid, unknown_grid):

        def score(r: dict, w_cov: float = w_cov, w_sup: float = w_sup, w_unk: float = w_unk, closeness: float = closeness) -> float:
            shortfall = sum(max(0.0, closeness - nearest) for _, _, nearest in r.get("unknown_terms", []))
            return r["similarity"] + w_cov * r["coverage"] + w_sup * r["support"] - w_unk * shortfall

        declined, margins, thresholds, held_back, held_back_declined = 0, [], {}, 0, 0
        for lang in ("en", "ko"):
            retrieved = [r for r in rows if language[r["set"]] == lang and r["retrieved"]]
            chosen = [r for r in retrieved if not r["held_back"]]
            lowest = min(score(r) for r in chosen if r["answerable"])
            below = [score(r) for r in chosen if not r["answerable"] and score(r) < lowest]
            # Halfway between the lowest answerable question and the highest uncovered one below it.
            thresholds[lang] = (lowest + max(below)) / 2 if below else lowest
            declined += len(below)
            margins.append(lowest - max(below) if below else 0.0)
            held_back += sum(1 for r in retrieved if r["held_back"])
            held_back_declined += sum(1 for r in retrieved if r["held_back"] and score(r) < thresholds[lang])
        results.append((declined, min(margins), w_cov, w_sup, w_unk, closeness, thresholds["en"], thresholds["ko"],
                        held_back_declined, held_back))
    results.sort(key=lambda r: (r[0], r[1]), reverse=True)
    table = Table(title="answerability: similarity + w_cov coverage + w_sup support - w_unk unknown words' shortfall "
                        "from closeness (no answerable question lost)")
    for column in ("uncovered retrieved, declined", "margin", "coverage w", "support w", "unknown word w", "closeness",
                   "threshold en", "threshold ko", "held back declined"):
        table.add_column(column, justify="right")
    for row in results[:8]:
        table.add_row(str(row[0]), *(f"{v:.3f}" for v in row[1:8]), f"{row[8]} of {row[9]}")
    console.print(table)
    # The choice keeps a margin (0.005 or more): a threshold that all but touches an answerable
    # question's score loses it to the next run's noise.
    with_margin = [r for r in results if r[1] >= 0.005]
    best_without = max((r for r in with_margin if r[4] == 0.0), key=lambda r: (r[0], r[1]), default=None)
    best_with = max((r for r in with_margin if r[4] > 0.0), key=lambda r: (r[0], r[1]), default=None)
    for label, best in (("without the unknown-word penalty", best_without), ("with it", best_with)):
        if best is not None:
            console.print(f"best {label} (margin >= 0.005): {best[0]} declined, margin {best[1]:.3f}, coverage w {best[2]}, "
                          f"support w {best[3]}, unknown word w {best[4]}, closeness {best[5]}, thresholds "
                          f"{best[6]:.3f} / {best[7]:.3f}, held back declined {best[8]} of {best[9]}")
    answerable = [r for r in rows if r["answerable"] and r["retrieved"]]
    console.print(f"answerable questions with a word the collection never uses: "
                  f"{sum(1 for r in answerable if r.get('unknown_terms'))} of {len(answerable)}")
    chosen = [r for r in rows if not r["held_back"]]
    console.print(f"chosen on {sum(1 for r in chosen if not r['answerable'])} uncovered questions "
                  f"({sum(1 for r in chosen if not r['answerable'] and r['retrieved'])} with a passage retrieved; "
                  f"the others get the 'not covered' reply already) and {sum(1 for r in chosen if r['answerable'])} answerable")
    if args.json and not args.calibration_rows:
        args.json.write_text(json.dumps({"rows": rows, "best": results[:8]}, indent=2))


async def signals(args) -> list[dict]:  # type: ignore[no-untyped-def]
    from supportbot.answers.answerability import coverage, unknown_in_question
    from supportbot.answers.compose import extractive_answer
    from supportbot.answers.grounding import Evidence

    runner = InProcess(args.highlights, answerability=False)
    rows = []
    for set_name in args.sets.split(","):
        corpus = CORPORA[set_name]
        await runner.ensure(corpus, args.cache)
        items = load(corpus.golden)
        by_id = {i["id"]: i for i in items}
        for item in items:
            parent = by_id.get(item.get("follow_up_of", ""))
            found = runner.search(asked_query(item, parent), corpus.collection)
            sources = found.sources
            evidence = Evidence(sources)
            context = parent["question"] if parent else ""
            composed = extractive_answer(item["question"], evidence, context=context) if sources else None
            held_back = set_name.startswith("off-topic") and int(re.findall(r"\d+", item["id"])[-1]) % 2 == 0
            rows.append({
                "set": set_name, "id": item["id"], "answerable": item["answerable"], "held_back": held_back,
                "retrieved": bool(sources),
                "similarity": max((s.dense_score for s in sources), default=0.0),
                "coverage": coverage(item["question"], evidence, context) if sources else 0.0,
                "support": composed.relevance if composed else 0.0,
                # The question's words the collection never uses, each with its closest word in the passages.
                "unknown_terms": [[t.term, t.nearest_word, t.nearest_similarity]
                                  for t in unknown_in_question(item["question"], found.unknown_terms)],
            })
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="extractive,verified,generative,before")
    parser.add_argument("--sets", default="sample,korean,python-faq")
    parser.add_argument("--limit", type=int, default=0, help="questions per set, stratified (0: all)")
    parser.add_argument("--in-process", action="store_true", help="extractive answers without the stack")
    parser.add_argument("--highlights", choices=("retriever", "stand-in"), default="retriever",
                        help="where sentence scores come from when the retriever leaves Source.highlights empty")
    parser.add_argument("--calibrate", action="store_true", help="choose the answerability weights (in-process)")
    parser.add_argument("--calibration-rows", type=Path, help="with --calibrate: the signals of an earlier --json")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--openers-out", type=Path, help="write each answer's first sentence here (for annotation)")
    parser.add_argument("--decoding-sweep", action="store_true", help="compare repetition penalties (sample set)")
    parser.add_argument("--penalties", default="1.0,1.1,1.2")
    parser.add_argument("--threshold-sweep", action="store_true", help="re-verify the generative answers at several thresholds")
    args = parser.parse_args()
    if args.calibrate:
        await calibrate(args)
        return
    from services.retriever.embedding import DenseEmbedder, UniversalSentenceEncoder

    embedders: dict[str, object] = {}

    def embed_for(language: str):  # type: ignore[no-untyped-def]
        # Faithfulness compares answer and source sentences by meaning: Korean needs the multilingual encoder.
        if language not in embedders:
            embedders[language] = (UniversalSentenceEncoder() if language == "ko" else DenseEmbedder()).embed_documents
        return embedders[language]

    support = EvalSettings().support_similarity
    if args.in_process:
        report = await run_sets(InProcess(args.highlights), args, embed_for, support)
    else:
        from supportbot.client import SupportbotClient
        from supportbot.core.auth import local_key
        from supportbot.core.settings import default_data_dir

        keys = (args.data_dir or default_data_dir()) / "api-keys.json"
        # A customer key chats in the default collection only; the agent key asks in every set's.
        async with SupportbotClient(api_key=local_key(keys, "admin")) as admin, \
                SupportbotClient(api_key=local_key(keys, "agent")) as customer:
            stack = Stack(admin, customer)
            report = await run_sets(stack, args, embed_for, support)
            if "thresholds" in report:
                print_table("verification threshold (sample, generative answers re-verified)", report["thresholds"])
            if args.decoding_sweep:
                report["decoding"] = await decoding_sweep(stack, args, embed_for("en"), support)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


async def decoding_sweep(stack: Stack, args, embed, support: float) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    items = load(CORPORA["sample"].golden)
    by_id = {i["id"]: i for i in items}
    sweep = {}
    for penalty in (float(p) for p in args.penalties.split(",")):
        column = Column()
        for item in stratified(items, args.limit or 16):
            parent = by_id.get(item.get("follow_up_of", ""))
            column.outcomes.append(await stack.ask_generator(
                item, parent, "", max_tokens=DECODING_MAX_TOKENS, penalty=penalty, stop=True
            ))
        sweep[f"penalty {penalty}"] = column.figures(embed, support, quoting=False)
    print_table(f"decoding (sample, {DECODING_MAX_TOKENS} tokens, repetition stop on)", sweep)
    return sweep


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
