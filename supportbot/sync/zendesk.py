"""Zendesk Guide (Help Center) articles through its public REST API.

Why Zendesk: it hosts more companies' help centers than any other helpdesk, its Help Center API
is public and documented (developer.zendesk.com: "List Articles", GET
/api/v2/help_center/{locale}/articles.json), and it answers anonymously for public articles, so
a team can sync without an admin token. Each article comes whole in the listing (title, body
HTML, html_url, updated_at, draft), so one request brings 100 articles and no page is scraped.
Restricted articles need an agent's API token: SUPPORTBOT_ZENDESK_EMAIL and
SUPPORTBOT_ZENDESK_API_TOKEN (Basic auth as "email/token:TOKEN", as Zendesk documents).

An article's id is its host and /hc/LOCALE/articles/ID (without the title slug Zendesk appends
to html_url, which changes with the title)."""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from supportbot.sync.fetch import Fetcher
from supportbot.sync.urls import canonical_url, document_id, origin

_LOCALE = re.compile(r"^/hc/([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)(?:/|$)")
_ARTICLE = re.compile(r"/hc/(?:([^/]+)/)?articles/(\d+)")
MAX_LISTING_PAGES = 1000
MAX_RETRIES = 5


class ZendeskError(RuntimeError):
    pass


@dataclass(frozen=True)
class Article:
    document_id: str
    url: str
    title: str
    body: str
    updated_at: str
    locale: str

    def html(self) -> bytes:
        """The article as a page of its own (title as its heading), for the retriever."""
        title = html.escape(self.title)
        return (f"<!doctype html><html lang=\"{html.escape(self.locale)}\"><head><meta charset=\"utf-8\"><title>{title}</title>"
                f"</head><body><article><h1>{title}</h1>\n{self.body}\n</article></body></html>").encode()


def is_zendesk(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.endswith(".zendesk.com")


def listing_url(help_center: str) -> str:
    """The API listing for a help center URL (https://acme.zendesk.com/hc/en-us: that locale;
    the bare host: every locale)."""
    match = _LOCALE.match(urlsplit(help_center).path)
    locale = f"{match.group(1).lower()}/" if match else ""
    return f"{origin(canonical_url(help_center))}/api/v2/help_center/{locale}articles.json?per_page=100&sort_by=updated_at&sort_order=asc"


def _auth() -> dict[str, str]:
    email, token = os.environ.get("SUPPORTBOT_ZENDESK_EMAIL", ""), os.environ.get("SUPPORTBOT_ZENDESK_API_TOKEN", "")
    if not (email and token):
        return {}
    return {"authorization": "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()}


def article_from(entry: dict[str, Any], site: str) -> Article | None:
    """An article of the API's answer; None for a draft (not public yet)."""
    if entry.get("draft") or not entry.get("id"):
        return None
    locale = str(entry.get("locale") or "")
    link = canonical_url(str(entry.get("html_url") or f"{site}/hc/{locale}/articles/{entry['id']}"))
    match = _ARTICLE.search(urlsplit(link).path)
    stable = f"{origin(link)}/hc/{match.group(1) or locale}/articles/{match.group(2)}" if match else link
    return Article(
        document_id=document_id(stable), url=link, title=str(entry.get("title") or ""), body=str(entry.get("body") or ""),
        updated_at=str(entry.get("updated_at") or ""), locale=locale,
    )


async def articles(fetcher: Fetcher, help_center: str) -> AsyncIterator[Article]:
    """Every published article, page by page (cursor pagination's links.next when the answer has
    it, else next_page); a 429 waits as long as Retry-After says."""
    site = origin(canonical_url(help_center))
    url: str | None = listing_url(help_center)
    headers = {"accept": "application/json", **_auth()}
    for _ in range(MAX_LISTING_PAGES):
        if not url:
            return
        for attempt in range(MAX_RETRIES + 1):
            page = await fetcher.fetch(url, stay_within=site, obey_robots=False, headers=headers, raw=True)
            if page.status != 429 or attempt == MAX_RETRIES:
                break
            await asyncio.sleep(min(page.retry_after or 10.0, 120.0))
        if page.status != 200 or page.error:
            raise ZendeskError(f"{url}: {page.error or f'HTTP {page.status}'}"
                               + (" (restricted articles need SUPPORTBOT_ZENDESK_EMAIL and SUPPORTBOT_ZENDESK_API_TOKEN)"
                                  if page.status in (401, 403) else ""))
        try:
            data = json.loads(page.content)
        except ValueError as exc:
            raise ZendeskError(f"{url}: not the Help Center API's JSON: {exc}") from None
        for entry in data.get("articles", []):
            article = article_from(entry, site)
            if article is not None:
                yield article
        meta, links = data.get("meta") or {}, data.get("links") or {}
        following = links.get("next") if meta.get("has_more") else data.get("next_page")
        url = canonical_url(following) if following else None
        if url and origin(url) != site:
            raise ZendeskError(f"the API's next page is on another host: {url}")
    raise ZendeskError(f"more than {MAX_LISTING_PAGES} pages of articles")
