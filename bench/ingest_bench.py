"""Ingest of a real product help center, end to end through a started retriever, beside the
embedders' own rate on the same chunks in the same run (figures, not assertions).

The corpus: Debian's libreoffice-help-en-us (LibreOffice's help center, 2,561 HTML pages,
MPL-2.0), fetched on first use into --cache with

    apt-get download libreoffice-help-en-us && dpkg-deb -x libreoffice-help-en-us_*.deb DIR

(run `apt-get update` once first) and ingested from DIR/usr/share/libreoffice/help/en-US, so a
page's id is its path below it ("text/scalc/guide/line_fix").

Printed:
1. End to end (`SupportbotClient.ingest_paths`, the CLI's path: batches, pipeline, both vectors
   of an English collection): pages/s, chunks/s, wall time; the retriever's per-stage seconds;
   peak RSS (VmHWM) of the retriever and of this client process.
2. The embedders alone on a sample of the same chunks, in this process, in the same run: chunks/s
   of all-MiniLM-L6-v2, of the multilingual encoder, and of both in turn (what an ingest of both
   vectors must do); the end-to-end rate as a share of it.
3. The same command again with nothing changed: its time as a share of the first.
4. hit@5 on questions written for this help center, after the first run and after the re-run
   (with --pages, pages outside the subset count as misses: compare whole runs only).
5. --per-document N: the former per-document loop (each document parsed, embedded in a batch of
   its own chunks, upserted, its old version deleted) beside the pipeline on the first N pages,
   in-process, same models.
6. --synthetic N: peak RSS of a retriever of their own and of the client over N small synthetic
   pages, by kind (memory stays bounded whatever the folder's size).

Run: python bench/ingest_bench.py [--pages 0] [--embed-sample 1500] [--per-document 150] [--synthetic 0 [--synthetic-only]]
Targets (issue 29, 2 cores): end to end >= 80% of the embedders' own rate, the whole help in
<= 7 minutes with both vectors, peak RSS <= 2 GB, re-run <= 10% of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.client import IngestReport, SupportbotClient, count_documents  # noqa: E402

console = Console()
PACKAGE = "libreoffice-help-en-us"
# Customer questions written for this help center, with the page that answers each.
QUESTIONS = [
    ("how do I see the formulas instead of the results in the cells?", "text/scalc/guide/formula_value"),
    ("how can I keep the top row visible when I scroll down?", "text/scalc/guide/line_fix"),
    ("repeat the table heading on every page the table spans", "text/swriter/guide/table_repeat_multiple_headers"),
    ("how do I count the words in my document?", "text/swriter/guide/words_count"),
    ("how do I add page numbers to my document?", "text/swriter/guide/pagenumbers"),
    ("how can I rehearse the timing of my slide show?", "text/simpress/guide/rehearse_timings"),
    ("how do I make negative numbers show in red?", "text/scalc/guide/cellstyle_minusvalue"),
    ("show only the rows that match a value with a filter", "text/scalc/guide/autofilter"),
    ("how do I set the transition between slides?", "text/simpress/guide/animated_slidechange"),
    ("stop LibreOffice from turning web addresses into links", "text/shared/guide/autocorr_url"),
]


def fetch_help(cache: Path) -> Path:
    """The help's en-US folder, downloaded and unpacked on first use."""
    folder = cache / "x" / "usr" / "share" / "libreoffice" / "help" / "en-US"
    if not folder.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", PACKAGE], cwd=cache, check=True, capture_output=True)
        package = sorted(glob.glob(str(cache / f"{PACKAGE}_*.deb")))[-1]
        subprocess.run(["dpkg-deb", "-x", package, str(cache / "x")], check=True)
    return folder


def subset(folder: Path, pages: int, into: Path) -> Path:
    """The first `pages` pages (sorted paths), their folders kept, for shorter runs."""
    if not pages:
        return folder
    for file in sorted(folder.rglob("*.html"))[:pages]:
        target = into / file.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return into


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_peak_rss_mb(pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) of the process's living children, by pid and role: the ingest's parse
    worker processes (RetrieverSettings.ingest_parse_processes) and multiprocessing's resource
    tracker."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            child = int(stat.parent.name)
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            role = "resource tracker" if "resource_tracker" in command else "parse worker" if "spawn_main" in command else "other"
            found[f"{role} {child}"] = peak_rss_mb(child)
        except (OSError, IndexError, ValueError):
            continue
    return found


def show_children(pid: int) -> None:
    children = children_peak_rss_mb(pid)
    if children:
        console.print("retriever's child processes, peak RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in sorted(children.items())))


def rss_by_kind_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now, by kind of mapping (/proc/PID/smaps): the C heap
    (glibc's `[heap]`), other anonymous memory (mmapped blocks, thread stacks), files."""
    kinds = {"heap": 0.0, "other anonymous": 0.0, "files": 0.0}
    kind = "other anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header
            path = fields[5] if len(fields) > 5 else ""
            kind = "heap" if path == "[heap]" else "files" if path.startswith("/") else "other anonymous"
        elif fields and fields[0] == "Rss:":
            kinds[kind] += int(fields[1]) / 1024
    return kinds


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def ingest(folder: Path, collection: str, stack) -> IngestReport:  # type: ignore[no-untyped-def]
    async with SupportbotClient(retriever=stack.address("retriever"), api_key=stack.key("admin")) as client:
        started = time.perf_counter()
        last = [started]

        def progress(report: IngestReport) -> None:
            if time.perf_counter() - last[0] > 30:
                last[0] = time.perf_counter()
                console.print(f"  {report.done}/{report.total} pages, {report.chunks} chunks, "
                              f"{report.done / report.elapsed:.1f} pages/s, {report.chunks / report.elapsed:.1f} chunks/s")

        return await client.ingest_paths([folder], collection=collection, on_document=progress)


async def hit_at_5(collection: str, stack) -> float:  # type: ignore[no-untyped-def]
    async with SupportbotClient(retriever=stack.address("retriever"), api_key=stack.key("admin")) as client:
        hits = 0
        for question, page in QUESTIONS:
            found = await client.search(question, collection=collection, top_k=10)
            ranked = list(dict.fromkeys(r.document_id for r in found.results))[:5]
            hits += page in ranked
    return hits / len(QUESTIONS)


def sample_chunks(folder: Path, sample: int) -> tuple[list[str], int]:
    """Every k-th chunk of the pages as the retriever cuts them (the same parser and chunker,
    MiniLM's tokenizer), and the number of chunks in all."""
    from services.retriever.chunking import chunk_document
    from services.retriever.embedding import DenseEmbedder
    from services.retriever.parsing import DocumentError, parse_document
    from services.retriever.settings import RetrieverSettings

    settings = RetrieverSettings()
    counter = DenseEmbedder().count_tokens
    texts: list[str] = []
    for file in sorted(folder.rglob("*.html")):
        try:
            parsed = parse_document(file.read_bytes(), str(file))
        except DocumentError:
            continue
        texts.extend(c.embedding_text() for c in chunk_document(
            parsed, document_id="x", collection="x", url="", content_hash="", metadata={},
            budget=min(settings.chunk_tokens, 256 - 32), overlap=settings.chunk_overlap_tokens, count=counter,
            procedure_budget=settings.procedure_chunk_tokens,
        ))
    step = max(1, len(texts) // sample) if sample else 1
    return texts[::step], len(texts)


def embedder_rates(texts: list[str]) -> dict[str, float]:
    from services.retriever.embedding import MULTILINGUAL_USE, Embedders

    embedders = Embedders()
    rates = {}
    for name, label in (("", "all-MiniLM-L6-v2"), (MULTILINGUAL_USE, "USE multilingual v3")):
        model = embedders.get(name)
        model.embed_documents(texts[:64])  # warm
        started = time.perf_counter()
        for start in range(0, len(texts), 256):  # the pipeline's group size
            model.embed_documents(texts[start:start + 256])
        rates[label] = len(texts) / (time.perf_counter() - started)
    rates["both, in turn"] = 1 / sum(1 / r for r in rates.values())
    return rates


def per_document_vs_pipeline(folder: Path, pages: int) -> dict[str, float]:
    """Chunks/s of the former per-document loop and of the pipeline, in-process, same pages."""
    from services.retriever.embedding import Embedders, SparseEmbedder
    from services.retriever.knowledge_base import DocumentInput, KnowledgeBase
    from services.retriever.server import build_store
    from services.retriever.settings import RetrieverSettings
    from supportbot.client import iter_documents

    embedders = Embedders()
    documents = [DocumentInput(d.content, d.source_path, d.document_id) for d in iter_documents([folder])][:pages]
    rates = {}
    for label, one_by_one in (("per-document loop (before)", True), ("pipeline (after)", False)):
        settings = RetrieverSettings(data_dir=Path(tempfile.mkdtemp(prefix="ingest-bench-")))
        kb = KnowledgeBase(settings, build_store(settings), embedders.get(""), SparseEmbedder(), embedders)
        started = time.perf_counter()
        if one_by_one:
            outcomes = [kb.ingest("", d) for d in documents]
        else:
            outcomes = list(kb.ingest_many("", documents))
        kb.finish_ingest("")
        elapsed = time.perf_counter() - started
        rates[label] = sum(o.chunks for o in outcomes) / elapsed
        kb.store.close()
    return rates


def synthetic(pages: int, into: Path) -> Path:
    for i in range(pages):
        folder = into / f"section{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"page{i:06d}.html").write_text(
            f"<html><body><h1>Article {i}</h1><p>How to reset device {i}: hold the button for {i % 17 + 3} seconds, "
            f"then pair it again in the app under Settings.</p></body></html>"
        )
    return into


def synthetic_memory(pages: int, work: Path) -> None:
    """The synthetic pages into a retriever of their own, started afresh: its peak memory over a
    folder of that many pages, beside the help center's."""
    from supportbot_cli.stack import Ports, Stack

    folder = synthetic(pages, work / "synthetic")
    stack = Stack(work / "synthetic-data", services=("retriever",), ports=Ports.free())
    stack.start()
    try:
        retriever_pid = stack.process("retriever").popen.pid
        report = asyncio.run(ingest(folder, "synthetic", stack))
        show_run(f"{pages} synthetic pages, a retriever of their own", report)
        console.print(f"peak RSS: retriever {peak_rss_mb(retriever_pid):.0f} MB, client {own_peak_rss_mb():.0f} MB; "
                      "retriever RSS now by kind: " + ", ".join(f"{kind} {mb:.0f} MB" for kind, mb in rss_by_kind_mb(retriever_pid).items()))
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-lohelp")
    parser.add_argument("--pages", type=int, default=0, help="only the first N pages (0: all)")
    parser.add_argument("--embed-sample", type=int, default=1500, help="chunks the embedders are timed on alone")
    parser.add_argument("--per-document", type=int, default=150, help="pages for the loop-vs-pipeline comparison (0: skip)")
    parser.add_argument("--synthetic", type=int, default=0, help="also ingest N synthetic pages for peak memory")
    parser.add_argument("--synthetic-only", action="store_true", help="only the synthetic memory run")
    args = parser.parse_args()

    from supportbot_cli.stack import Ports, Stack

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    if args.synthetic_only:
        synthetic_memory(args.synthetic, work)
        return
    folder = subset(fetch_help(args.cache), args.pages, work / "pages")
    pages = count_documents([folder])
    console.print(f"{pages} pages from {folder}; load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    stack = Stack(work / "data", services=("retriever",), ports=Ports.free())
    stack.start()
    try:
        retriever_pid = stack.process("retriever").popen.pid
        first = asyncio.run(ingest(folder, "lohelp", stack))
        show_run("first", first)
        console.print(f"retriever peak RSS after it: {peak_rss_mb(retriever_pid):.0f} MB; RSS now by kind: " + ", ".join(
            f"{kind} {mb:.0f} MB" for kind, mb in rss_by_kind_mb(retriever_pid).items()))
        show_children(retriever_pid)
        hit_first = asyncio.run(hit_at_5("lohelp", stack))
        again = asyncio.run(ingest(folder, "lohelp", stack))
        show_run("again, nothing changed", again)
        console.print(f"re-run with nothing changed: {again.elapsed / first.elapsed:.1%} of the first run's time")
        hit_again = asyncio.run(hit_at_5("lohelp", stack))
        console.print(f"hit@5 on {len(QUESTIONS)} questions: {hit_first:.2f} after the first run, {hit_again:.2f} after the re-run")
        console.print(f"peak RSS: retriever {peak_rss_mb(retriever_pid):.0f} MB, client {own_peak_rss_mb():.0f} MB "
                      "(before this process loads models)")
        show_children(retriever_pid)
    finally:
        stack.stop()
    if args.synthetic:
        synthetic_memory(args.synthetic, work)
    console.print(f"load average: {os.getloadavg()[0]:.1f} at the end of the end-to-end runs ({os.cpu_count()} cores)")

    texts, all_chunks = sample_chunks(folder, args.embed_sample)
    rates = embedder_rates(texts)
    end_to_end = first.chunks / first.elapsed
    table = Table(title=f"Embedders alone on {len(texts)} of the same {all_chunks} chunks, this process, same run")
    table.add_column("model")
    table.add_column("chunks/s", justify="right")
    table.add_column("end to end as a share", justify="right")
    for name, rate in rates.items():
        table.add_row(name, f"{rate:.1f}", f"{end_to_end / rate:.0%}" if name == "both, in turn" else "")
    console.print(table)
    if args.per_document:
        comparison = per_document_vs_pipeline(folder, args.per_document)
        console.print(f"first {args.per_document} pages, in-process, both vectors: " + ", ".join(
            f"{name} {rate:.1f} chunks/s" for name, rate in comparison.items()))
    console.print(f"load average: {os.getloadavg()[0]:.1f} at the end")


def show_run(name: str, report: IngestReport) -> None:
    console.print(
        f"{name}: {report.done / report.elapsed:.2f} pages/s, {report.chunks / report.elapsed:.1f} chunks/s, "
        f"{report.elapsed:.1f} s; {report.summary()}; {report.retries} retries"
    )
    total = sum(report.stage_seconds.values()) or 1.0
    console.print("  retriever stage seconds (parse runs in parallel workers): " + ", ".join(
        f"{stage} {seconds:.1f} s ({seconds / total:.0%})" for stage, seconds in sorted(report.stage_seconds.items(), key=lambda x: -x[1])))

if __name__ == "__main__":
    main()
