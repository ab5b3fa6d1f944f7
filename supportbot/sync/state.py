"""What a sync remembers between runs, per collection: its web sources (with their options)
and, per page, where it came from, its validators (ETag, Last-Modified, sitemap lastmod) and a
hash of what was sent, so an unchanged page costs one conditional request or none."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PageRecord:
    url: str  # canonical URL: the citation link
    fetched_url: str  # the URL asked for (the sitemap's or the crawl's)
    source: str  # the source (start URL) that brought it
    sha256: str = ""
    etag: str = ""
    last_modified: str = ""
    lastmod: str = ""  # the sitemap's, or the article's updated_at
    links: list[str] = field(default_factory=list)  # a crawled page's links, to go on past a 304
    synced: str = ""


@dataclass
class SourceRecord:
    url: str
    kind: str  # sitemap, crawl or zendesk
    options: dict[str, Any] = field(default_factory=dict)
    # Pruning has been confirmed once for this source: later syncs prune without asking.
    prune_confirmed: bool = False
    last_sync: str = ""


@dataclass
class SyncState:
    path: Path
    collection: str
    sources: dict[str, SourceRecord] = field(default_factory=dict)
    pages: dict[str, PageRecord] = field(default_factory=dict)  # by document id

    @classmethod
    def load(cls, data_dir: Path, collection: str) -> SyncState:
        path = state_path(data_dir, collection)
        if not path.exists():
            return cls(path, collection)
        data = json.loads(path.read_text())
        return cls(
            path, collection,
            {url: SourceRecord(**record) for url, record in data.get("sources", {}).items()},
            {doc: PageRecord(**record) for doc, record in data.get("pages", {}).items()},
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        written.write_text(json.dumps({
            "collection": self.collection,
            "sources": {url: asdict(s) for url, s in self.sources.items()},
            "pages": {doc: asdict(p) for doc, p in sorted(self.pages.items())},
        }, indent=1))
        written.replace(self.path)

    def pages_of(self, source: str) -> dict[str, PageRecord]:
        return {doc: page for doc, page in self.pages.items() if page.source == source}


def state_path(data_dir: Path, collection: str) -> Path:
    return data_dir / "sync" / f"{collection or 'default'}.json"


def synced_collections(data_dir: Path) -> list[str]:
    folder = data_dir / "sync"
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []
    return ["" if name == "default" else name for name in names]
