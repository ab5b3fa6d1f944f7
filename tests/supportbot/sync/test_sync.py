"""Web sync without a model: sitemaps (index files, gzip), robots.txt, pages' canonical URLs and
links, charsets, the address guard, limits, redirects, conditional requests and pruning, against a
real HTTP server on this machine. The retriever here is a small recording gRPC servicer; the real
one syncs a website through a started stack in tests/stack/test_own_help_center.py."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from supportbot.client import SupportbotClient
from supportbot.sync import zendesk
from supportbot.sync.engine import SyncError, WebSync, source_kind
from supportbot.sync.fetch import Fetcher, SyncSettings, decode_text
from supportbot.sync.guard import BlockedAddress, resolve
from supportbot.sync.pages import page_facts
from supportbot.sync.sitemap import SitemapError, parse_sitemap
from supportbot.sync.state import SyncState
from supportbot.sync.urls import Scope, canonical_url, document_id
from supportbot.v1 import retriever_pb2, retriever_pb2_grpc
from tests.paths import DATA
from tests.websites import Resource, Site, article

FIXTURES = DATA / "sync"
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


@pytest.fixture()
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.close()


def local(**overrides: object) -> SyncSettings:
    return SyncSettings(allow_private=True, rate=0, **overrides)


# -- URLs and ids ----------------------------------------------------------------------------
def test_canonical_urls_and_document_ids_are_stable_and_in_the_retrievers_alphabet() -> None:
    import re

    assert canonical_url("HTTPS://Help.Example.com:443/a/./b/../c?utm_source=x&b=2&a=1#top") == "https://help.example.com/a/c?a=1&b=2"
    assert document_id("https://help.example.com/hc/en-us/articles/123-Reset-your-password") == \
        "help.example.com/hc/en-us/articles/123-Reset-your-password"
    assert document_id("http://127.0.0.1:8123/guide/") == "127.0.0.1-8123/guide"
    long_id = document_id("https://h.example/" + "a%20b/" * 80 + "?q=é")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}", long_id)
    assert document_id("https://h.example/p?x=1") != document_id("https://h.example/p?x=2")
    assert Scope.of("https://h.example/docs/index.html").contains("https://h.example/docs/a/b.html")
    assert not Scope.of("https://h.example/docs/").contains("https://h.example/blog/x")
    assert not Scope.of("https://h.example/docs/").contains("https://other.example/docs/x")
    with pytest.raises(ValueError, match="only http and https"):
        canonical_url("file:///etc/passwd")
    assert source_kind("https://acme.zendesk.com/hc/en-us") == "zendesk"
    assert source_kind("https://h.example/sitemap_index.xml") == "sitemap"
    assert source_kind("https://h.example/docs/") == "crawl"


# -- sitemaps --------------------------------------------------------------------------------
def test_sitemaps_urlsets_indexes_and_gzip() -> None:
    urlset = f'<?xml version="1.0"?><urlset {NS}><url><loc> https://h.example/a </loc><lastmod>2026-01-02</lastmod></url>' \
             f"<url><loc>https://h.example/b</loc></url><url><changefreq>daily</changefreq></url></urlset>"
    parsed = parse_sitemap(urlset.encode())
    assert [(p.loc, p.lastmod) for p in parsed.pages] == [("https://h.example/a", "2026-01-02"), ("https://h.example/b", "")]
    index = f'<sitemapindex {NS}><sitemap><loc>https://h.example/s1.xml.gz</loc></sitemap></sitemapindex>'
    assert parse_sitemap(gzip.compress(index.encode())).sitemaps == ["https://h.example/s1.xml.gz"]
    with pytest.raises(SitemapError, match="root element is <html>"):
        parse_sitemap(b"<html><body>not found</body></html>")
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>'
    with pytest.raises(SitemapError):
        parse_sitemap(bomb)


# -- pages -----------------------------------------------------------------------------------
def test_a_saved_help_center_page_gives_its_canonical_url_and_links_not_its_chrome() -> None:
    html = (FIXTURES / "zendesk-article.html").read_text()
    facts = page_facts(html, "https://support.example.com/hc/en-us/articles/360001-Reset?utm_source=mail")
    assert facts.canonical == "https://support.example.com/hc/en-us/articles/360001-Reset-your-password"
    assert "https://support.example.com/hc/en-us/articles/360002-Change-your-email" in facts.links
    assert not any(link.startswith(("mailto", "javascript")) for link in facts.links)
    assert not facts.noindex
    hidden = page_facts('<meta name="robots" content="noindex, nofollow"><a href="/x">x</a>', "https://h.example/")
    assert hidden.noindex and hidden.nofollow


def test_text_is_decoded_whatever_the_charset_claims() -> None:
    french = ("<p>Pour réinitialiser votre mot de passe, cliquez sur « Mot de passe oublié » : vous recevrez un lien "
              "à usage unique. Où est passé le courriel ? Vérifiez le dossier des indésirables ; la crème de nos "
              "conseillers répond en français, même le week-end. Déjà client ? Connectez-vous d’abord.</p>")
    assert decode_text(french.encode("cp1252"), "utf-8") == french  # the header lies: not UTF-8
    assert decode_text("Café".encode(), "iso-8859-1") == "Café"  # the header lies the other way
    korean = "비밀번호를 잊어버렸어요".encode("euc-kr")
    assert decode_text(b"<html><head><meta charset='euc-kr'></head><body>" + korean + b"</body></html>", "").endswith(
        "비밀번호를 잊어버렸어요</body></html>")
    assert decode_text(b"\xef\xbb\xbfplain", "") == "plain"


# -- the address guard -----------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.10", "169.254.169.254", "[::1]",
                                  "[::ffff:127.0.0.1]", "100.64.0.1", "0.0.0.0"])
async def test_loopback_private_and_metadata_addresses_are_refused(host: str) -> None:
    with pytest.raises(BlockedAddress, match="--allow-private"):
        await resolve(host, 80, allow_private=False)
    assert await resolve(host, 80, allow_private=True)


async def test_a_public_address_is_allowed() -> None:
    assert await resolve("93.184.215.14", 443, allow_private=False) == "93.184.215.14"


async def test_a_local_site_is_refused_without_allow_private(site: Site) -> None:
    site.page("/a", article("A", "text"))
    async with Fetcher(SyncSettings(rate=0)) as fetcher:
        page = await fetcher.fetch(f"{site.base}/a")
    assert "loopback or private" in page.error and not site.hits


# -- fetching --------------------------------------------------------------------------------
async def test_robots_txt_is_obeyed_and_its_crawl_delay_paces_requests(site: Site) -> None:
    site.resources["/robots.txt"] = Resource(b"User-agent: *\nDisallow: /private/\nCrawl-delay: 0.3\n",
                                             headers={"content-type": "text/plain"})
    site.page("/private/a", article("P", "secret"))
    site.page("/public/a", article("A", "a"))
    site.page("/public/b", article("B", "b"))
    async with Fetcher(local()) as fetcher:
        refused = await fetcher.fetch(f"{site.base}/private/a")
        first, second = await fetcher.fetch(f"{site.base}/public/a"), await fetcher.fetch(f"{site.base}/public/b")
        assert fetcher.interval(site.base) == 0.3  # Crawl-delay, over the configured rate (none here)
    assert refused.error == "disallowed by robots.txt" and "/private/a" not in site.hits
    assert first.status == second.status == 200


async def test_a_server_error_on_robots_txt_allows_nothing(site: Site) -> None:
    site.resources["/robots.txt"] = Resource(b"down", status=503, headers={"content-type": "text/plain"})
    site.page("/a", article("A", "a"))
    async with Fetcher(local()) as fetcher:
        page = await fetcher.fetch(f"{site.base}/a")
    assert "robots.txt" in page.error and "/a" not in site.hits


async def test_a_huge_page_is_refused_while_it_streams_and_a_declared_one_before(site: Site) -> None:
    site.resources["/endless"] = Resource(endless=True)
    site.resources["/declared"] = Resource(b"x" * (3 * 1024 * 1024))
    async with Fetcher(local(max_page_bytes=1024 * 1024)) as fetcher:
        endless = await fetcher.fetch(f"{site.base}/endless")
        declared = await fetcher.fetch(f"{site.base}/declared")
    assert "refused while it came in" in endless.error
    assert site.streamed < 50 * 1024 * 1024  # the client hung up long before the server ran out
    assert "over the limit" in declared.error and "3145728 bytes" in declared.error


async def test_redirects_are_followed_within_the_site_and_loops_end(site: Site) -> None:
    site.redirect("/old", "/new")
    site.page("/new", article("New", "moved here"))
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    site.redirect("/away", "https://elsewhere.example/page")
    async with Fetcher(local()) as fetcher:
        moved = await fetcher.fetch(f"{site.base}/old", stay_within=site.base)
        loop = await fetcher.fetch(f"{site.base}/loop-a", stay_within=site.base)
        away = await fetcher.fetch(f"{site.base}/away", stay_within=site.base)
    assert moved.status == 200 and moved.final_url == f"{site.base}/new"
    assert "redirect loop" in loop.error
    assert "off the site" in away.error


# -- the whole sync (a recording retriever) --------------------------------------------------
class RecordingRetriever(retriever_pb2_grpc.RetrieverServiceServicer):
    def __init__(self) -> None:
        self.documents: dict[str, retriever_pb2.Document] = {}
        self.ingested: list[str] = []
        self.deleted: list[str] = []

    async def Ingest(self, request_iterator, context) -> AsyncIterator[retriever_pb2.IngestResponse]:  # type: ignore[no-untyped-def]  # noqa: N802
        async for request in request_iterator:
            document = request.document
            previous = self.documents.get(document.document_id)
            digest = hashlib.sha256(document.content).hexdigest()
            status = (retriever_pb2.INGEST_STATUS_ADDED if previous is None else
                      retriever_pb2.INGEST_STATUS_UNCHANGED if hashlib.sha256(previous.content).hexdigest() == digest else
                      retriever_pb2.INGEST_STATUS_UPDATED)
            self.documents[document.document_id] = document
            self.ingested.append(document.document_id)
            yield retriever_pb2.IngestResponse(document_id=document.document_id, source_path=document.source_path,
                                               status=status, chunks=1, version=1)

    async def DeleteDocuments(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        found = [d for d in request.document_ids if self.documents.pop(d, None) is not None]
        self.deleted += found
        return retriever_pb2.DeleteDocumentsResponse(deleted_documents=len(found))


@pytest.fixture()
async def retriever() -> AsyncIterator[tuple[RecordingRetriever, SupportbotClient]]:
    servicer = RecordingRetriever()
    server = grpc.aio.server()
    retriever_pb2_grpc.add_RetrieverServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with SupportbotClient(retriever=f"127.0.0.1:{port}", api_key="") as client:
        yield servicer, client
    await server.stop(None)


async def _sync(site_url: str, kind: str, client: SupportbotClient, tmp_path: Path, prune: bool | None = None,
                **settings: object) -> tuple:
    state = SyncState.load(tmp_path, "acme")
    options = local(**settings)
    async with Fetcher(options) as fetcher:
        report = await WebSync(fetcher, client, state, options).run(site_url, kind, prune)
    return report, SyncState.load(tmp_path, "acme")


async def test_a_second_sync_of_an_unchanged_site_sends_nothing_and_changes_are_exactly_what_moves(site: Site, retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    servicer, client = retriever
    paths = [f"/docs/{i}.html" for i in range(6)]
    for i, path in enumerate(paths):
        site.page(path, article(f"Page {i}", f"Text of page {i}."))
    site.page("/docs/broken.html", b"")
    site.resources["/docs/broken.html"].status = 500
    site.sitemap([*paths, "/docs/broken.html", "/docs/missing.html"])
    first, state = await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path)
    assert (first.added, len(first.failed)) == (6, 1), first.failed
    assert [reason for url, reason in first.skipped if url.endswith("missing.html")] == ["gone (HTTP 404)"]
    assert state.pages[document_id(f"{site.base}/docs/0.html")].url == f"{site.base}/docs/0.html"
    assert servicer.documents[document_id(f"{site.base}/docs/0.html")].url == f"{site.base}/docs/0.html"

    servicer.ingested.clear()
    before = dict(site.full_answers)
    second, _ = await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path)
    assert servicer.ingested == [] and second.not_modified == 6
    assert {p: n - before.get(p, 0) for p, n in site.full_answers.items() if p in paths} == dict.fromkeys(paths, 0)  # all 304

    site.page(paths[0], article("Page 0", "Rewritten text of page 0."))
    del site.resources[paths[1]]  # gone: 404
    site.sitemap([p for p in paths if p != paths[2]])  # delisted
    third, state = await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path)
    assert servicer.ingested == [document_id(f"{site.base}{paths[0]}")] and third.updated == 1
    gone = sorted(document_id(f"{site.base}{p}") for p in paths[1:3])
    assert third.gone == gone and third.pruned == 0 and "--prune" in third.prune_held  # asked first
    assert servicer.deleted == []
    fourth, state = await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path, prune=True)
    assert sorted(servicer.deleted) == gone and fourth.pruned == 2
    assert not set(gone) & set(state.pages) and state.sources[f"{site.base}/sitemap.xml"].prune_confirmed


async def test_a_crawl_stays_in_its_folder_skips_what_is_not_a_page_and_stops_at_its_limits(site: Site, retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    servicer, client = retriever
    site.page("/help/", article("Home", "Start", ["a.html", "b.html", "/blog/post", "logo.png", "manual.bin", "https://other.example/x"]))
    site.page("/help/a.html", article("A", "a", ["c.html", "a.html#section"]))
    site.page("/help/b.html", article("B", "b", ["/help/"]))
    site.page("/help/c.html", article("C", "c", ["d.html"]))
    site.page("/help/d.html", article("D", "d"))
    site.page("/blog/post", article("Blog", "not help"))
    site.resources["/help/manual.bin"] = Resource(b"\x00\x01", headers={"content-type": "application/zip"})
    report, state = await _sync(f"{site.base}/help/", "crawl", client, tmp_path, max_depth=2)
    ids = {document_id(f"{site.base}/help/{p}") for p in ("", "a.html", "b.html", "c.html")}
    assert set(servicer.documents) == ids  # d.html is three links deep
    assert "/blog/post" not in site.hits and "/help/logo.png" not in site.hits
    assert any("not a document (application/zip)" in reason for _, reason in report.failed)
    assert "--max-depth" in report.limit
    servicer.documents.clear()
    capped, _ = await _sync(f"{site.base}/help/", "crawl", client, tmp_path, max_pages=2, max_depth=5)
    assert "--max-pages" in capped.limit and capped.listed == 2
    assert capped.gone and capped.pruned == 0 and "absence proves nothing" in capped.prune_held


async def test_a_sitemap_pointing_at_another_host_is_refused(site: Site, retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, client = retriever
    site.page("/a", article("A", "a"))
    site.resources["/sitemap.xml"] = Resource(
        f'<urlset {NS}><url><loc>{site.base}/a</loc></url><url><loc>http://169.254.169.254/latest/meta-data/</loc></url>'
        "</urlset>".encode(), headers={"content-type": "application/xml"})
    report, _ = await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path)
    assert report.added == 1
    assert any("another host" in reason for _, reason in report.skipped)
    site.resources["/sitemap.xml"] = Resource(b"<html>oops</html>", headers={"content-type": "text/html"})
    with pytest.raises(SyncError, match="not a sitemap"):
        await _sync(f"{site.base}/sitemap.xml", "sitemap", client, tmp_path)


# -- Zendesk Guide ---------------------------------------------------------------------------
async def test_zendesk_guide_articles_are_imported_page_by_page_without_drafts(site: Site, retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    servicer, client = retriever
    pages = [(FIXTURES / f"zendesk-articles-{n}.json").read_text().replace("https://acme.zendesk.com", site.base) for n in (1, 2)]
    site.resources["/api/v2/help_center/en-us/articles.json?per_page=100&sort_by=updated_at&sort_order=asc"] = Resource(
        pages[0].encode(), headers={"content-type": "application/json; charset=utf-8"})
    site.resources["/api/v2/help_center/en-us/articles.json?page=2&per_page=100&sort_by=updated_at&sort_order=asc"] = Resource(
        pages[1].encode(), headers={"content-type": "application/json; charset=utf-8"})
    report, state = await _sync(f"{site.base}/hc/en-us", "zendesk", client, tmp_path)
    host = site.base.removeprefix("http://").replace(":", "-")
    assert sorted(servicer.documents) == [f"{host}/hc/en-us/articles/{n}" for n in ("360001", "360002", "360004")]
    reset = servicer.documents[f"{host}/hc/en-us/articles/360001"]
    assert reset.url == f"{site.base}/hc/en-us/articles/360001-Reset-your-password" and reset.title == "Reset your password"
    assert b"<h1>Reset your password</h1>" in reset.content and reset.mime_type == "text/html"
    again, _ = await _sync(f"{site.base}/hc/en-us", "zendesk", client, tmp_path)
    assert again.not_modified == 3 and again.ingested == 0
    assert zendesk.listing_url("https://acme.zendesk.com/hc/en-us/articles/1") .startswith(
        "https://acme.zendesk.com/api/v2/help_center/en-us/articles.json")
