"""Web sync on a real documentation site served from this machine: Debian's
libreoffice-help-en-us (about 2,560 HTML pages of LibreOffice's help center), served by Python's
standard HTTP server (Last-Modified, If-Modified-Since, 304) with a sitemap made from its files,
synced into a retriever of its own. Prints (figures, not assertions):

1. first sync: time and pages/s (fetch, send, parse, embed, store);
2. second sync, nothing changed: with the sitemap's lastmod (no page requested) and with
   conditional requests only (a sitemap without lastmod: one 304 a page); time as a share of the
   first (target under 10%) and documents sent to the retriever (target 0: nothing re-embedded);
3. after changing 10 pages and deleting 5: exactly which were sent again and which removed;
4. search hit@5 on 20 questions written for this help center (bench/data/libreoffice_sync_questions.jsonl).

Run: python bench/sync_bench.py [--pages 300] [--rate 0] [--cache DIR]
--pages picks that many pages (the 20 the questions need among them; 0: all). The site is on this
machine, so the default --rate 0 measures the sync rather than the polite wait (4 requests/s to a
real site: 2,560 pages take 11 minutes of waiting on the first sync, and none with lastmod after).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.client import SupportbotClient  # noqa: E402
from supportbot.sync.engine import SyncReport, WebSync  # noqa: E402
from supportbot.sync.fetch import Fetcher, SyncSettings  # noqa: E402
from supportbot.sync.state import SyncState  # noqa: E402
from supportbot.sync.urls import document_id  # noqa: E402
from supportbot_cli.stack import Ports, Stack  # noqa: E402

PACKAGE = "libreoffice-help-en-us"
HELP_ROOT = Path("usr/share/libreoffice/help/en-US")
QUESTIONS = Path(__file__).parent / "data" / "libreoffice_sync_questions.jsonl"
COLLECTION = "libreoffice-web"
console = Console()


def help_center(cache: Path) -> Path:
    """The package's help pages, fetched once (apt-get download + dpkg-deb -x)."""
    root = cache / PACKAGE / HELP_ROOT
    if root.exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=download, check=True, capture_output=True)
        [deb] = Path(download).glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / PACKAGE)], check=True)
    return root


def choose_pages(root: Path, count: int, needed: set[str]) -> list[str]:
    """`count` help pages (0: all), the questions' pages among them, the rest spread evenly."""
    pages = sorted(str(p.relative_to(root)) for p in (root / "text").rglob("*.html"))
    if not count or count >= len(pages):
        return pages
    others = [p for p in pages if p not in needed]
    step = len(others) / max(count - len(needed), 1)
    return sorted(needed | {others[int(i * step)] for i in range(count - len(needed))})


def write_sitemap(site: Path, pages: list[str], base: str, lastmod: bool) -> None:
    entries = []
    for page in pages:
        stamp = datetime.fromtimestamp((site / page).stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(f"<url><loc>{base}/{page}</loc>{f'<lastmod>{stamp}</lastmod>' if lastmod else ''}</url>")
    (site / "sitemap.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/'
                                      'sitemap/0.9">\n' + "\n".join(entries) + "\n</urlset>\n")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


async def sync_once(client: SupportbotClient, data_dir: Path, url: str, settings: SyncSettings) -> SyncReport:
    state = SyncState.load(data_dir, COLLECTION)
    async with Fetcher(settings) as fetcher:
        return await WebSync(fetcher, client, state, settings).run(url, "sitemap", prune=True)


async def hit_rate(client: SupportbotClient, questions: list[dict], base_id: str) -> tuple[float, list[str]]:
    missed = []
    for question in questions:
        response = await client.search(question["question"], collection=COLLECTION, top_k=5)
        found = {r.document_id for r in response.results}
        if not found & {f"{base_id}/{page}" for page in question["pages"]}:
            missed.append(question["question"])
    return 1 - len(missed) / len(questions), missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="pages to serve (0: all of the help center)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second (0: no limit; the site is local)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "supportbot-bench")
    args = parser.parse_args()
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    source = help_center(args.cache)
    work = Path(tempfile.mkdtemp(prefix="supportbot-sync-bench-"))
    site = work / "site"
    shutil.copytree(source, site)
    pages = choose_pages(site, args.pages, {p for q in questions for p in q["pages"]})
    server, base = serve(site)
    settings = SyncSettings(allow_private=True, rate=args.rate)
    stack = Stack(work / "stack", services=("retriever",), ports=Ports.free())
    console.print(f"{len(pages)} pages of {PACKAGE} served at {base}; retriever starting…")
    rows: list[tuple[str, str]] = []
    try:
        stack.start()
        os.environ["SUPPORTBOT_DATA_DIR"] = str(stack.data_dir)

        async def run() -> None:
            async with SupportbotClient(retriever=stack.address("retriever"), api_key=stack.key("admin")) as client:
                write_sitemap(site, pages, base, lastmod=True)
                first = await sync_once(client, work, f"{base}/sitemap.xml", settings)
                rows.append(("first sync", f"{first.elapsed_s:.1f} s, {len(pages) / first.elapsed_s:.1f} pages/s; "
                                           f"{first.added} added, {len(first.failed)} failed, {first.chunks} chunks, {first.requests} requests"))
                second = await sync_once(client, work, f"{base}/sitemap.xml", settings)
                rows.append(("second sync, nothing changed (sitemap lastmod)",
                             f"{second.elapsed_s:.2f} s = {second.elapsed_s / first.elapsed_s:.2%} of the first; "
                             f"{second.ingested} documents sent (re-embedded), {second.requests} requests"))
                write_sitemap(site, pages, base, lastmod=False)
                conditional = await sync_once(client, work, f"{base}/sitemap.xml", settings)
                rows.append(("second sync, nothing changed (conditional requests only)",
                             f"{conditional.elapsed_s:.2f} s = {conditional.elapsed_s / first.elapsed_s:.2%} of the first; "
                             f"{conditional.ingested} documents sent, {conditional.not_modified} answered 304, {conditional.requests} requests"))
                plain = [p for p in pages if p not in {q for question in questions for q in question["pages"]}]
                changed, deleted = plain[:10], plain[10:15]
                time.sleep(1.1)  # a new Last-Modified second
                for page in changed:
                    path = site / page
                    path.write_text(path.read_text().replace("</body>", "<p>Changed by the sync benchmark.</p></body>"))
                for page in deleted:
                    (site / page).unlink()
                kept = [p for p in pages if p not in deleted]
                write_sitemap(site, kept, base, lastmod=True)
                third = await sync_once(client, work, f"{base}/sitemap.xml", settings)
                base_id = document_id(base)
                expected_changed = sorted(document_id(f"{base}/{p}") for p in changed)
                expected_gone = sorted(document_id(f"{base}/{p}") for p in deleted)
                rows.append(("after 10 pages changed and 5 deleted",
                             f"{third.elapsed_s:.2f} s; sent {third.ingested} ({third.updated} updated), removed {third.pruned}; "
                             f"exactly those: {sorted(third.updated_ids) == expected_changed and third.gone == expected_gone}"))
                rate, missed = await hit_rate(client, questions, base_id)
                rows.append((f"search hit@5, {len(questions)} questions", f"{rate:.2f}" + (f" (missed: {'; '.join(missed)})" if missed else "")))

        asyncio.run(run())
    finally:
        stack.stop()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title=f"sync_bench: {len(pages)} pages of {PACKAGE}, rate {args.rate or 'unlimited'}")
    table.add_column("measure")
    table.add_column("result")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
