"""Sitemaps (sitemaps.org 0.9): a urlset lists pages, a sitemapindex lists more sitemaps; either
may be gzipped. Parsed with defusedxml (no entity expansion, no external entities)."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

# A sitemap is at most 50,000 URLs and 50 MB uncompressed (sitemaps.org); a little room over.
MAX_SITEMAP_BYTES = 64 * 1024 * 1024


class SitemapError(ValueError):
    pass


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: str = ""


@dataclass
class Sitemap:
    pages: list[SitemapEntry]
    sitemaps: list[str]  # from a sitemapindex


def _inflate(content: bytes) -> bytes:
    if not content.startswith(b"\x1f\x8b"):
        return content
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(content, MAX_SITEMAP_BYTES + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise SitemapError(f"a broken gzip file: {exc}") from None
    if len(out) > MAX_SITEMAP_BYTES or inflater.unconsumed_tail:
        raise SitemapError(f"over {MAX_SITEMAP_BYTES} bytes once decompressed")
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_sitemap(content: bytes) -> Sitemap:
    """The pages (with their lastmod) or the child sitemaps of one sitemap file."""
    try:
        root = ElementTree.fromstring(_inflate(content))
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise SitemapError(f"not a sitemap: {exc}") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap: the root element is <{kind}>, not <urlset> or <sitemapindex>")
    pages, sitemaps = [], []
    for item in root:
        fields = {_local(child.tag): (child.text or "").strip() for child in item}
        loc = fields.get("loc", "")
        if not loc:
            continue
        if kind == "urlset":
            pages.append(SitemapEntry(loc, fields.get("lastmod", "")))
        else:
            sitemaps.append(loc)
    return Sitemap(pages, sitemaps)


def looks_like_sitemap(url: str) -> bool:
    path = url.split("?")[0].lower()
    return path.endswith((".xml", ".xml.gz")) and "sitemap" in path.rsplit("/", 1)[-1] or path.endswith("sitemap.xml")
