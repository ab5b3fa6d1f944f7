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
5. The default collections as the product builds them (the English sample: all-MiniLM-L6-v2 and,
   beside it on each point, the multilingual vector; the Korean sample: the multilingual model):
   Korean questions over the English one, English over the Korean one, English over English,
   without the multilingual vector (before) and with it (after).

5. Real corpora (bench/corpora.py, `--sets libreoffice,libreoffice-ko,...`: only this section
   runs): ingest time and chunks, hit rate@1/@5, MRR@10, key facts in the first passage and in
   the top five, off-topic questions whose best match falls below the collection model's score
   threshold, the best-match cosine of answerable and off-topic questions, and the procedure
   preference for "how do I" questions off and at several margins.

Run: python bench/retrieval_quality.py [--backend edge|server] [--sets libreoffice,libreoffice-ko]
Targets: English hit rate@5 >= 0.9, MRR@10 >= 0.75, hybrid no worse than dense-only; Korean
hit@5 >= 0.85 from BM25 alone and >= 0.90 hybrid; cross-lingual hit@5 >= 0.70; no question of
the mixed collection ranks the other language's version first; Korean questions over the default
English collection hit@5 >= 0.85 with English hit@5 kept at 1.000.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.common import knowledge_base, sample_knowledge_base  # noqa: E402
from services.retriever.embedding import DEFAULT_MODEL, MULTILINGUAL_USE, Embedders  # noqa: E402
from supportbot.core.language import detect_language  # noqa: E402
from supportbot.evaluation.retrieval import mean, score_ranking  # noqa: E402
from supportbot.sample import (  # noqa: E402
    HELPCENTER,
    KOREAN_COLLECTION,
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
    for item in golden:
        query = conversational_query(item, by_id)
        # The model the question is searched with (the multilingual vector's for a Korean
        # question over an English collection that keeps one), and so its threshold.
        searched = kb.query_embedder(kb.collection_name(collection), detect_language(query))[0]
        threshold = kb.settings.threshold_for(searched.model_name)
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


def show(title: str, results: dict[str, dict[str, float]], metrics: tuple[str, ...] = METRICS) -> None:
    table = Table(title=title)
    table.add_column("configuration")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, scores in results.items():
        table.add_row(name, *(f"{scores[m]:.3f}" if scores[m] == scores[m] else "-" for m in metrics))
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


CORPUS_METRICS = ("hit@1", "hit@5", "mrr@10", "key facts @1", "key facts @5", "off-topic declined")


# Every format a help center folder may hold (the sample's is Markdown, HTML and PDF); only HTML
# was read, so `--sets sample` measured 5 of its pages.
PAGE_SUFFIXES = {".html", ".htm", ".md", ".markdown", ".txt", ".pdf"}


def corpus_knowledge_base(corpus, cache: Path, embedders: Embedders):  # type: ignore[no-untyped-def]
    """The corpus in a collection of its own, each page under its relative path, sent as one
    stream as `supportbot ingest` sends a folder; the model is the one the product picks for a
    new collection (by the language of its first pages)."""
    import time

    from services.retriever.embedding import SparseEmbedder
    from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
    from services.retriever.server import build_store
    from services.retriever.settings import RetrieverSettings

    folder = corpus.pages(cache)
    settings = RetrieverSettings(data_dir=Path(tempfile.mkdtemp(prefix="supportbot-corpus-")))
    kb = KnowledgeBase(settings, build_store(settings), embedders.get(""), SparseEmbedder(), embedders)
    started = time.perf_counter()
    failed: list[str] = []
    documents = (
        DocumentInput(content=path.read_bytes(), source_path=str(path), document_id=str(path.relative_to(folder).with_suffix("")))
        for path in sorted(folder.rglob("*")) if path.suffix.lower() in PAGE_SUFFIXES
    )
    for outcome in kb.ingest_many(corpus.collection, documents):
        if outcome.status == "failed":
            failed.append(f"{outcome.document_id}: {outcome.error}")
    kb.finish_ingest(corpus.collection)
    return kb, time.perf_counter() - started, failed


def evaluate_corpus(kb, corpus, golden: list[dict]) -> tuple[dict[str, float], list[float], list[float]]:  # type: ignore[no-untyped-def]
    rows: dict[str, list[float]] = {name: [] for name in CORPUS_METRICS}
    threshold = kb.settings.threshold_for(kb.embedder_for(corpus.collection).model_name)
    answerable_best, off_topic_best = [], []
    for item in golden:
        hits = kb.search(item["question"], collection=corpus.collection, top_k=10, score_threshold=-1).hits
        best = max((hit.dense_score for hit in hits), default=0.0)
        if not item["answerable"]:
            off_topic_best.append(best)
            rows["off-topic declined"].append(1.0 if best < threshold else 0.0)
            continue
        answerable_best.append(best)
        ranked = list(dict.fromkeys(hit.chunk["document_id"] for hit in hits))
        relevant = set(item["relevant_document_ids"])
        at1, at5, at10 = (score_ranking(ranked, relevant, k) for k in (1, 5, 10))
        rows["hit@1"].append(at1.hit_rate)
        rows["hit@5"].append(at5.hit_rate)
        rows["mrr@10"].append(at10.mrr)
        first, five = (" ".join(hit.chunk["text"] for hit in hits[:k]).casefold() for k in (1, 5))
        facts = [fact.casefold() for fact in item["key_facts"]]
        rows["key facts @1"].append(mean([1.0 if fact in first else 0.0 for fact in facts]))
        rows["key facts @5"].append(mean([1.0 if fact in five else 0.0 for fact in facts]))
    return {name: mean(values) for name, values in rows.items()}, answerable_best, off_topic_best


def corpora_section(names: list[str], cache: Path) -> None:
    from bench.corpora import CORPORA
    from supportbot.evaluation.retrieval import mean as average

    embedders = Embedders()
    for name in names:
        corpus = CORPORA[name]
        golden = [json.loads(line) for line in corpus.golden.read_text().splitlines() if line.strip()]
        kb, seconds, failed = corpus_knowledge_base(corpus, cache, embedders)
        _, documents, chunks, model = kb.stats(corpus.collection)[0]
        kind = "HELD-OUT" if corpus.held_out else "dev set"
        console.print(f"[bold]{name}[/] ({kind}; {corpus.source}): {documents} pages, {chunks} chunks, "
                      f"model {model}, ingested in {seconds:.0f} s; {len(failed)} pages not indexed")
        for line in failed[:5]:
            console.print(f"  not indexed: {line}")
        results = {}
        margins = (None, 0.05, 0.1, 0.2) if hasattr(kb.settings, "procedure_margin") else (None,)
        default_margin = getattr(kb.settings, "procedure_margin", None)
        best: tuple[list[float], list[float]] = ([], [])
        for margin in margins:
            if default_margin is not None:
                kb.settings.procedure_margin = -1.0 if margin is None else margin  # negative: promotes nothing
            label = "procedures not preferred" if margin is None else f"procedures preferred, margin {margin}"
            if default_margin is None:
                label = "hybrid"
            results[label], *scores = evaluate_corpus(kb, corpus, golden)
            if margin == default_margin or default_margin is None:
                best = (scores[0], scores[1])
        show(f"{name}: {sum(g['answerable'] for g in golden)} answerable, {sum(not g['answerable'] for g in golden)} "
             "off-topic questions, hybrid top 10", results, CORPUS_METRICS)
        answerable, off_topic = best
        threshold = kb.settings.threshold_for(model)
        console.print(f"best-match cosine ({model}, threshold {threshold}): answerable min {min(answerable):.3f} "
                      f"median {sorted(answerable)[len(answerable) // 2]:.3f} mean {average(answerable):.3f}; "
                      f"off-topic {', '.join(f'{s:.3f}' for s in sorted(off_topic))}")
        kb.store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["edge", "server"], default="edge")
    parser.add_argument("--sets", default="", help="real corpora of bench/corpora.py to evaluate (only that section runs)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    args = parser.parse_args()
    if args.sets:
        corpora_section([name for name in args.sets.split(",") if name], args.cache)
        return
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

    korean_documents = {str(path.relative_to(KOREAN_HELPCENTER).with_suffix("")) for path in KOREAN_HELPCENTER.rglob("*.md")}
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

    results = {}
    for label, multilingual_vector in (("before: primary vector only", False), ("after: multilingual vector beside it", True)):
        english_default = sample_knowledge_base(args.backend, multilingual_vector=multilingual_vector)
        korean_default = sample_knowledge_base(args.backend, folder=KOREAN_HELPCENTER, collection=KOREAN_COLLECTION,
                                               multilingual_vector=multilingual_vector)
        results[f"Korean over English, {label}"] = evaluate(english_default, korean, "hybrid")
        results[f"English over English, {label}"] = evaluate(english_default, english, "hybrid")
        results[f"English ({len(covered)}) over Korean, {label}"] = evaluate(korean_default, covered, "hybrid", KOREAN_COLLECTION)
    show(f"Default collections as the product builds them, hybrid ({args.backend} backend)", results)


if __name__ == "__main__":
    main()
