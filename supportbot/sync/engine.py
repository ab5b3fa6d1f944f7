"""One sync of one web source into a collection: enumerate (sitemap, crawl or Zendesk API),
fetch what may have changed, send what did change to the retriever in batches, and remove what
the site no longer has."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from supportbot.client import SupportbotClient
from supportbot.sync import zendesk
from supportbot.sync.fetch import Fetcher, SyncSettings
from supportbot.sync.pages import page_facts
from supportbot.sync.sink import WebDocument, delete_documents, ingest_documents
from supportbot.sync.sitemap import SitemapError, looks_like_sitemap, parse_sitemap
from supportbot.sync.state import PageRecord, SourceRecord, SyncState
from supportbot.sync.urls import BadUrl, Scope, canonical_url, document_id, origin

KINDS = ("sitemap", "crawl", "zendesk")
# Links a crawl does not fetch: they are never documents.
_NOT_DOCUMENTS = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz", ".tar",
                  ".mp4", ".mp3", ".woff", ".woff2", ".ttf", ".exe", ".dmg", ".json", ".xml")
MAX_SITEMAP_FILES = 200


class SyncError(RuntimeError):
    """The source itself cannot be read (its sitemap, its API): nothing was changed."""


def source_kind(url: str, declared: str = "auto") -> str:
    if declared != "auto":
        if declared not in KINDS:
            raise ValueError(f"source {declared!r}: choose auto, {', '.join(KINDS)}")
        return declared
    if zendesk.is_zendesk(url):
        return "zendesk"
    return "sitemap" if looks_like_sitemap(url) else "crawl"


@dataclass
class SyncReport:
    source: str
    kind: str
    listed: int = 0  # pages the source named (sitemap entries, crawled pages, articles)
    fetched: int = 0  # full answers (200)
    not_modified: int = 0  # 304, or the sitemap's lastmod unchanged (no request)
    unchanged: int = 0  # fetched again, same bytes: not sent
    added: int = 0
    updated: int = 0
    chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # document ids the site no longer has
    pruned: int = 0
    prune_held: str = ""  # why the gone pages were kept
    limit: str = ""  # a limit that stopped enumeration (then nothing is pruned)
    requests: int = 0
    elapsed_s: float = 0.0
    # The source itself could not be read (SyncError): nothing was synced.
    unreadable: bool = False

    @property
    def ingested(self) -> int:
        return self.added + self.updated


# (report, number gone) -> whether to prune now; None: do not ask (non-interactive).
Confirm = Callable[[SyncReport, int], Awaitable[bool]]


class WebSync:
    def __init__(self, fetcher: Fetcher, client: SupportbotClient, state: SyncState, settings: SyncSettings,
                 on_progress: Callable[[SyncReport], None] = lambda _: None, full: bool = False) -> None:
        self.fetcher = fetcher
        self.full = full  # fetch and send everything again, as if nothing had been synced
        self.client = client
        self.state = state
        self.settings = settings
        self.on_progress = on_progress
        self._flush_lock = asyncio.Lock()

    async def run(self, url: str, kind: str, prune: bool | None, confirm: Confirm | None = None,
                  options: dict[str, Any] | None = None) -> SyncReport:
        try:
            url = canonical_url(url)
        except BadUrl as exc:
            raise SyncError(str(exc)) from None
        record = self.state.sources.get(url) or SourceRecord(url, kind)
        record.kind, record.options = kind, options if options is not None else record.options
        self.state.sources[url] = record
        report = SyncReport(url, kind)
        self._report = report
        self._source = url
        self._seen: set[str] = set()
        self._pending: list[tuple[WebDocument, PageRecord]] = []
        self._by_fetched = {} if self.full else {p.fetched_url: (doc, p) for doc, p in self.state.pages_of(url).items()}
        started = time.perf_counter()
        requests_before = self.fetcher.requests
        if kind == "zendesk":
            await self._zendesk(url)
        elif kind == "sitemap":
            await self._sitemap(url)
        else:
            await self._crawl(url)
        await self._flush()
        await self._prune(record, prune, confirm)
        record.last_sync = _now()
        self.state.save()
        report.requests = self.fetcher.requests - requests_before
        report.elapsed_s = time.perf_counter() - started
        return report

    # -- enumeration -----------------------------------------------------------------------
    async def _sitemap(self, url: str) -> None:
        report, site = self._report, origin(url)
        entries: dict[str, str] = {}
        queue, read = [url], 0
        while queue:
            sitemap_url = queue.pop(0)
            read += 1
            if read > MAX_SITEMAP_FILES:
                raise SyncError(f"{url}: more than {MAX_SITEMAP_FILES} sitemap files")
            page = await self.fetcher.fetch(sitemap_url, stay_within=site, raw=True)
            if page.status != 200 or page.error:
                raise SyncError(f"sitemap {sitemap_url}: {page.error or f'HTTP {page.status}'}")
            try:
                parsed = parse_sitemap(page.content)
            except SitemapError as exc:
                raise SyncError(f"sitemap {sitemap_url}: {exc}") from None
            for child in parsed.sitemaps:
                if self._on_site(child, site, "a sitemap on another host"):
                    queue.append(canonical_url(child))
            for entry in parsed.pages:
                if not self._on_site(entry.loc, site, "the sitemap points at another host"):
                    continue
                if len(entries) >= self.settings.max_pages:
                    report.limit = f"the sitemap lists more than {self.settings.max_pages} pages (--max-pages)"
                    break
                entries.setdefault(canonical_url(entry.loc), entry.lastmod)
        report.listed = len(entries)
        await asyncio.gather(*(self._visit(loc, site, lastmod) for loc, lastmod in entries.items()))

    def _on_site(self, url: str, site: str, why: str) -> bool:
        try:
            target = canonical_url(url)
        except BadUrl as exc:
            self._report.skipped.append((url, str(exc)))
            return False
        if origin(target) != site:
            self._report.skipped.append((url, f"{why} ({origin(target)}, not {site}): refused"))
            return False
        return True

    async def _crawl(self, start: str) -> None:
        """Breadth first within the start URL's host and folder, to `max_depth` links and
        `max_pages` pages."""
        scope = Scope.of(start)
        report = self._report
        visited = {start}
        level = [start]
        for depth in range(self.settings.max_depth + 1):
            if not level:
                break
            found = await asyncio.gather(*(self._visit(url, scope.origin) for url in level))
            following: list[str] = []
            for links in found:
                for link in links:
                    if link in visited or not scope.contains(link) or urlsplit(link).path.lower().endswith(_NOT_DOCUMENTS):
                        continue
                    if len(visited) >= self.settings.max_pages:
                        report.limit = f"the crawl reached {self.settings.max_pages} pages (--max-pages)"
                        break
                    visited.add(link)
                    following.append(link)
            if following and depth == self.settings.max_depth:
                report.limit = f"links deeper than {self.settings.max_depth} were not followed (--max-depth)"
            level = following if depth < self.settings.max_depth else []
        report.listed = len(visited)

    async def _zendesk(self, url: str) -> None:
        report = self._report
        try:
            async for article in zendesk.articles(self.fetcher, url):
                report.listed += 1
                if report.listed > self.settings.max_pages:
                    report.limit = f"the help center has more than {self.settings.max_pages} articles (--max-pages)"
                    break
                self._seen.add(article.document_id)
                content = article.html()
                record = PageRecord(url=article.url, fetched_url=article.url, source=self._source,
                                    sha256=hashlib.sha256(content).hexdigest(), lastmod=article.updated_at, synced=_now())
                previous = None if self.full else self.state.pages.get(article.document_id)
                if previous is not None and previous.sha256 == record.sha256:
                    report.not_modified += 1
                    continue
                report.fetched += 1
                await self._queue(WebDocument(article.document_id, article.url, content, "text/html", article.title,
                                              {"locale": article.locale} if article.locale else {}), record)
        except zendesk.ZendeskError as exc:
            raise SyncError(str(exc)) from None

    # -- one page --------------------------------------------------------------------------
    async def _visit(self, url: str, site: str, lastmod: str = "") -> list[str]:
        """Fetches one URL if it may have changed; returns its links (a crawl goes on with them)."""
        report = self._report
        doc, known = self._by_fetched.get(url, ("", None))
        if known is not None and lastmod and known.lastmod == lastmod and doc in self.state.pages:
            self._seen.add(doc)
            report.not_modified += 1
            self.on_progress(report)
            return known.links
        page = await self.fetcher.fetch(url, etag=known.etag if known else "", last_modified=known.last_modified if known else "",
                                        stay_within=site)
        self.on_progress(report)
        if page.status == 304 and known is not None:
            self._seen.add(doc)
            report.not_modified += 1
            known.lastmod = lastmod or known.lastmod
            return known.links
        if page.gone:
            report.skipped.append((url, f"gone (HTTP {page.status})"))
            return []
        if page.error or page.status != 200:
            report.failed.append((url, page.error or f"HTTP {page.status}"))
            if known is not None:  # a passing failure: keep the page, and go on with its links
                self._seen.add(doc)
                return known.links
            return []
        report.fetched += 1
        facts = page_facts(page.text, page.final_url) if page.mime_type == "text/html" else None
        links = facts.links if facts is not None and not facts.nofollow else []
        if facts is not None and facts.noindex:
            report.skipped.append((url, "the page asks not to be indexed (noindex)"))
            return links
        canonical = canonical_url(page.final_url)
        if facts is not None and facts.canonical and origin(facts.canonical) == origin(canonical):
            canonical = facts.canonical
        doc = document_id(canonical)
        if doc in self._seen:
            return links  # another URL of a page already synced
        self._seen.add(doc)
        record = PageRecord(url=canonical, fetched_url=url, source=self._source, sha256=hashlib.sha256(page.content).hexdigest(),
                            etag=page.etag, last_modified=page.last_modified, lastmod=lastmod,
                            links=links if self._report.kind == "crawl" else [], synced=_now())
        previous = None if self.full else self.state.pages.get(doc)
        if previous is not None and previous.sha256 == record.sha256:
            report.unchanged += 1
            self.state.pages[doc] = record
            return links
        await self._queue(WebDocument(doc, canonical, page.content, page.mime_type), record)
        return links

    async def _queue(self, document: WebDocument, record: PageRecord) -> None:
        self._pending.append((document, record))
        if len(self._pending) >= self.settings.batch_size:
            await self._flush()

    async def _flush(self) -> None:
        async with self._flush_lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            records = {document.document_id: record for document, record in batch}
            outcome = await ingest_documents(self.client, [document for document, _ in batch], self.state.collection)
            report = self._report
            report.added += outcome.added
            report.updated += outcome.updated
            report.chunks += outcome.chunks
            report.updated_ids += [doc for doc, _ in outcome.updates]
            failed = {source for source, _ in outcome.failures}
            report.failed += outcome.failures
            for doc, record in records.items():
                if record.url not in failed:
                    self.state.pages[doc] = record
            self.state.save()
            self.on_progress(report)

    # -- pruning ---------------------------------------------------------------------------
    async def _prune(self, record: SourceRecord, prune: bool | None, confirm: Confirm | None) -> None:
        report = self._report
        report.gone = sorted(doc for doc in self.state.pages_of(record.url) if doc not in self._seen)
        if not report.gone:
            return
        if report.limit:
            report.prune_held = f"not removed: {report.limit}, so absence proves nothing"
            return
        if prune is False:
            report.prune_held = "not removed (--no-prune)"
            return
        if prune is None and not record.prune_confirmed:
            if confirm is None or not await confirm(report, len(report.gone)):
                report.prune_held = "not removed: confirm once with --prune (later syncs then remove gone pages themselves)"
                return
        record.prune_confirmed = True
        await delete_documents(self.client, report.gone, self.state.collection)
        for doc in report.gone:
            self.state.pages.pop(doc, None)
        report.pruned = len(report.gone)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
