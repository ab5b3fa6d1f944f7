"""The polite HTTP client of a sync: robots.txt obeyed, one host asked at a bounded rate and
concurrency, redirects followed by hand (each hop checked), conditional requests, a size limit
enforced while the body streams in, and text decoded whatever its charset claims."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import charset_normalizer
import httpx
from bs4.dammit import EncodingDetector
from protego import Protego
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.core.documents import MIME_BY_SUFFIX
from supportbot.sync.guard import BlockedAddress, guarded_transport
from supportbot.sync.urls import BadUrl, canonical_url, origin

USER_AGENT_NAME = "supportbot-sync"
# What each response's Content-Type becomes for the retriever; anything else is not a document.
DOCUMENT_TYPES = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "text/plain": "text/plain",
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "application/pdf": "application/pdf",
}


class SyncSettings(BaseSettings):
    """Politeness and limits of a web sync (SUPPORTBOT_SYNC_*; `supportbot sync` flags override).
    The defaults are a polite crawler's: a few requests a second, a few at once, and robots.txt's
    Crawl-delay wins when it asks for more patience."""

    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_SYNC_")

    rate: float = Field(4.0, ge=0, description="Requests per second to one host (0: no limit).")
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight to one host.")
    max_pages: int = Field(5000, ge=1, description="Pages one source may have; a crawl stops there.")
    max_depth: int = Field(10, ge=0, description="Links followed from a crawl's start URL.")
    max_page_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="A larger page is refused while it streams in.")
    max_redirects: int = Field(5, ge=0)
    timeout_s: float = Field(30.0, gt=0)
    allow_private: bool = Field(False, description="Allow loopback and private addresses (tests, intranet help centers).")
    batch_size: int = Field(32, ge=1, description="Changed pages sent to the retriever per ingest call.")
    user_agent: str = f"{USER_AGENT_NAME}/0.1 (+https://github.com/supportbot/supportbot)"


@dataclass
class Page:
    """One fetched URL. `status` 304 means unchanged (no body); `error` says why there is none."""

    url: str  # the URL asked for
    final_url: str = ""  # after redirects
    status: int = 0
    mime_type: str = ""  # one of DOCUMENT_TYPES' values, "" when not a document
    content: bytes = b""  # text re-encoded as UTF-8; PDF as it came
    text: str = ""  # decoded text (HTML, plain, Markdown)
    etag: str = ""
    last_modified: str = ""
    error: str = ""
    retry_after: float = 0.0

    @property
    def gone(self) -> bool:
        """The site says the page is no more (not a passing failure)."""
        return self.status in (404, 410)


class TooLarge(Exception):
    pass


def decode_text(body: bytes, declared: str = "", is_html: bool = True) -> str:
    """Text whatever the charset claims. Valid UTF-8 is UTF-8 (no other charset in use yields it
    by accident, so a header saying latin-1 about UTF-8 is a lie we can catch); else the declared
    charset (header, then the page's own meta) if the bytes decode with it; else a multi-byte
    charset detection is sure of (Korean, Japanese, Chinese); else windows-1252, what browsers
    assume of undeclared Western pages (detectors guess single-byte code pages poorly)."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = [declared] if declared else []
    if is_html:
        candidates.append(EncodingDetector.find_declared_encoding(body[:4096], is_html=True) or "")
    for name in candidates:
        try:
            return body.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    best = charset_normalizer.from_bytes(body[:65536]).best()
    if best is not None and best.encoding in _MULTI_BYTE:
        try:
            return body.decode(best.encoding)
        except UnicodeDecodeError:
            pass
    return body.decode("cp1252", errors="replace")


_MULTI_BYTE = {"euc_kr", "cp949", "johab", "iso2022_kr", "shift_jis", "cp932", "euc_jp", "iso2022_jp", "gb2312", "gbk",
               "gb18030", "big5", "big5hkscs", "cp950", "utf_16", "utf_16_le", "utf_16_be"}


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


def document_type(content_type: str, url: str) -> str:
    declared = content_type.split(";")[0].strip().lower()
    if declared in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[declared]
    if declared in ("", "application/octet-stream", "binary/octet-stream"):
        suffix = "." + url.split("?")[0].rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
        return MIME_BY_SUFFIX.get(suffix, "")
    return ""


class HostPacer:
    """At most `concurrency` requests in flight and one starting every `interval` seconds."""

    def __init__(self, concurrency: int, interval: float) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Robots:
    rules: Protego | None  # None: everything allowed
    refused: str = ""  # robots.txt could not be read (5xx, unreachable): nothing allowed

    def allows(self, url: str, agent: str) -> bool:
        if self.refused:
            return False
        return self.rules is None or self.rules.can_fetch(url, agent)

    def delay(self, agent: str) -> float:
        if self.rules is None:
            return 0.0
        delay = self.rules.crawl_delay(agent) or 0.0
        rate = self.rules.request_rate(agent)
        if rate is not None and rate.requests:
            delay = max(delay, rate.seconds / rate.requests)
        return float(delay)


@dataclass
class Fetcher:
    settings: SyncSettings
    client: httpx.AsyncClient = field(init=False)
    _robots: dict[str, Robots] = field(default_factory=dict)
    _pacers: dict[str, HostPacer] = field(default_factory=dict)
    requests: int = 0

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(
            transport=guarded_transport(self.settings.allow_private, self.settings.concurrency * 2),
            headers={"user-agent": self.settings.user_agent},
            timeout=self.settings.timeout_s, follow_redirects=False,
            # No proxy from the environment: it would connect for us, past the address guard.
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- robots.txt ------------------------------------------------------------------------
    async def robots(self, url: str) -> Robots:
        """The rules of `url`'s origin (RFC 9309: a missing file allows everything; one that
        cannot be read, a server error, allows nothing)."""
        site = origin(url)
        if site not in self._robots:
            page = await self._get(f"{site}/robots.txt", {}, limit=512 * 1024, pace=False, any_text=True)
            if page.status == 200:
                self._robots[site] = Robots(Protego.parse(page.text))
            elif 400 <= page.status < 500:
                self._robots[site] = Robots(None)
            else:
                self._robots[site] = Robots(None, refused=f"robots.txt of {site} could not be read ({page.error or page.status})")
            self._pacers.pop(site, None)  # paced again with its Crawl-delay
        return self._robots[site]

    def interval(self, url: str) -> float:
        """Seconds between two requests to `url`'s host, as paced now."""
        return self._pacer(origin(url)).interval

    def _pacer(self, site: str) -> HostPacer:
        if site not in self._pacers:
            robots = self._robots.get(site)
            interval = 1.0 / self.settings.rate if self.settings.rate else 0.0
            if robots is not None:
                interval = max(interval, robots.delay(self.settings.user_agent))
            self._pacers[site] = HostPacer(self.settings.concurrency, interval)
        return self._pacers[site]

    # -- fetching --------------------------------------------------------------------------
    async def fetch(self, url: str, *, etag: str = "", last_modified: str = "", stay_within: str = "",
                    obey_robots: bool = True, headers: dict[str, str] | None = None, raw: bool = False) -> Page:
        """GET `url` politely; redirects are followed only within `stay_within` (an origin) when
        given, and never in a loop. A 304 comes back as it is (the caller's copy is current).
        `raw`: the body as it came, whatever its type (sitemaps, API answers)."""
        validators = {**(headers or {})}
        if etag:
            validators["if-none-match"] = etag
        if last_modified:
            validators["if-modified-since"] = last_modified
        seen = [url]
        current = url
        for _ in range(self.settings.max_redirects + 1):
            if obey_robots:
                robots = await self.robots(current)
                if not robots.allows(current, self.settings.user_agent):
                    return Page(url, current, error=robots.refused or "disallowed by robots.txt")
            page = await self._get(current, validators, raw=raw)
            page.url = url
            if page.status not in (301, 302, 303, 307, 308):
                return page
            location = page.final_url
            try:
                target = canonical_url(location, current)
            except BadUrl as exc:
                return Page(url, current, status=page.status, error=f"redirect to a bad URL: {exc}")
            if target in seen:
                return Page(url, current, status=page.status, error=f"redirect loop: {' -> '.join([*seen, target])}")
            if stay_within and origin(target) != stay_within:
                return Page(url, current, status=page.status, error=f"redirected off the site to {target}")
            seen.append(target)
            current = target
        return Page(url, current, error=f"more than {self.settings.max_redirects} redirects")

    async def _get(self, url: str, headers: dict[str, str], *, limit: int = 0, pace: bool = True,
                   any_text: bool = False, raw: bool = False) -> Page:
        limit = limit or self.settings.max_page_bytes
        pacer = self._pacer(origin(url))
        async with pacer.slots:
            if pace:
                await pacer.wait_turn()
            self.requests += 1
            try:
                async with self.client.stream("GET", url, headers=headers) as response:
                    page = Page(url, url, status=response.status_code, etag=response.headers.get("etag", ""),
                                last_modified=response.headers.get("last-modified", ""),
                                retry_after=_retry_after(response.headers.get("retry-after", "")))
                    if response.is_redirect:
                        page.final_url = response.headers.get("location", "")
                        return page
                    if response.status_code != 200:
                        page.error = f"HTTP {response.status_code}" if response.status_code != 304 else ""
                        return page
                    body = await _read_limited(response, limit)
            except TooLarge as exc:
                return Page(url, url, status=200, error=str(exc))
            except BlockedAddress as exc:
                return Page(url, url, error=str(exc))
            except httpx.HTTPError as exc:
                return Page(url, url, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        content_type = response.headers.get("content-type", "")
        page.mime_type = document_type(content_type, url)
        if raw or page.mime_type == "application/pdf":
            page.content = body
        elif page.mime_type or any_text:
            page.text = decode_text(body, _charset(content_type), is_html=page.mime_type == "text/html")
            page.content = page.text.encode("utf-8")
        else:
            page.error = f"not a document ({content_type.split(';')[0] or 'no content type'})"
        return page


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"page of {int(declared)} bytes, over the limit of {limit}: refused")
    body = bytearray()
    async for part in response.aiter_raw():
        body += part
        if len(body) > limit:
            raise TooLarge(f"page over the limit of {limit} bytes: refused while it came in")
    encoding = response.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate", "br", "zstd"):
        return _decompress_limited(bytes(body), encoding, limit)
    return bytes(body)


def _decompress_limited(body: bytes, encoding: str, limit: int) -> bytes:
    """A compressed body, inflated no further than `limit` (a small gzip can hold gigabytes)."""
    import zlib

    if encoding in ("gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"page over the limit of {limit} bytes once decompressed: refused")
        return out
    decoder = httpx._decoders.SUPPORTED_DECODERS[encoding]()  # noqa: SLF001 - httpx's own br/zstd support
    out = decoder.decode(body) + decoder.flush()
    if len(out) > limit:
        raise TooLarge(f"page over the limit of {limit} bytes once decompressed: refused")
    return out


def _retry_after(value: str) -> float:
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 0.0
