"""What a sync reads from a page itself: its canonical URL, its links, and whether the site
asks robots not to index it or follow its links. The page's content is the retriever's to
extract; this only walks a few tags, with an HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field

from bs4 import BeautifulSoup
from bs4.filter import SoupStrainer

from supportbot.sync.urls import BadUrl, canonical_url

_TAGS = SoupStrainer(["a", "link", "meta", "base"])


@dataclass
class PageFacts:
    canonical: str = ""
    links: list[str] = field(default_factory=list)
    noindex: bool = False
    nofollow: bool = False


def page_facts(html: str, url: str) -> PageFacts:
    soup = BeautifulSoup(html, "html.parser", parse_only=_TAGS)
    base = url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        try:
            base = canonical_url(str(base_tag["href"]), url)
        except BadUrl:
            pass
    facts = PageFacts()
    for meta in soup.find_all("meta", attrs={"name": True, "content": True}):
        if str(meta["name"]).lower() in ("robots", "supportbot-sync"):
            directives = {d.strip().lower() for d in str(meta["content"]).split(",")}
            facts.noindex |= bool(directives & {"noindex", "none"})
            facts.nofollow |= bool(directives & {"nofollow", "none"})
    for link in soup.find_all("link", href=True):
        rel: str | list[str] = link.get("rel") or []
        if "canonical" in [r.lower() for r in (rel if isinstance(rel, list) else [rel])]:
            try:
                facts.canonical = canonical_url(str(link["href"]), base)
            except BadUrl:
                pass
            break
    seen: set[str] = set()
    for anchor in soup.find_all("a", href=True):
        rel = anchor.get("rel") or []
        if "nofollow" in (rel if isinstance(rel, list) else [rel]):
            continue
        try:
            target = canonical_url(str(anchor["href"]), base)
        except BadUrl:  # mailto:, javascript:, a broken href
            continue
        if target not in seen:
            seen.add(target)
            facts.links.append(target)
    return facts
