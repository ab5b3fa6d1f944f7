"""Canonical URLs, the document ids derived from them, and what a crawl may follow."""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# services/retriever/knowledge_base.py _DOCUMENT_ID: ^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]+")
_MAX_ID = 200
# Query parameters that track a visit rather than name a page.
_TRACKING = re.compile(r"^(utm_[a-z]+|gclid|fbclid|mc_cid|mc_eid|_ga|ref)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadUrl(ValueError):
    pass


def canonical_url(url: str, base: str = "") -> str:
    """`url` (resolved against `base`) in one spelling: scheme and host in lower case, no default
    port, no fragment, dot segments resolved, tracking parameters dropped, the rest sorted."""
    parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadUrl(f"{url!r}: only http and https URLs can be synced")
    if not parts.hostname:
        raise BadUrl(f"{url!r} has no host")
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise BadUrl(f"{url!r} has an invalid port") from None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    normalized = posixpath.normpath(path)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    normalized = "/" + normalized.lstrip("/")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)))
    return urlunsplit((scheme, netloc, normalized, query, ""))


def document_id(url: str) -> str:
    """A stable document id from a canonical URL: host and path, in the retriever's id
    alphabet (a port joins the host with "-"; a query becomes a short hash)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port:
        host += f"-{parts.port}"
    text = f"{host}/{parts.path.strip('/')}".rstrip("/")
    text = _ID_UNSAFE.sub("-", text)
    text = re.sub(r"/{2,}", "/", text).strip("-/.")
    if parts.query:
        text += "-q" + hashlib.sha256(parts.query.encode()).hexdigest()[:10]
    if len(text) > _MAX_ID:
        text = text[: _MAX_ID - 17].rstrip("-/.") + "-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    return text or "document"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@dataclass(frozen=True)
class Scope:
    """What a source may reach: one origin (scheme, host, port) and a path prefix."""

    origin: str
    prefix: str = "/"

    @classmethod
    def of(cls, start: str) -> Scope:
        """The start URL's origin and folder (…/docs/ for …/docs/index.html or …/docs/)."""
        path = urlsplit(start).path or "/"
        folder = path if path.endswith("/") else posixpath.dirname(path) + "/"
        return cls(origin(start), folder.replace("//", "/"))

    def contains(self, url: str) -> bool:
        return origin(url) == self.origin and (urlsplit(url).path or "/").startswith(self.prefix)

    def same_site(self, url: str) -> bool:
        return origin(url) == self.origin
