"""A real HTTP server on this machine playing a help center's website for sync tests: pages with
ETags (and 304s), redirects, failures, a page that never ends, a sitemap made from its pages."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Resource:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/html; charset=utf-8"})
    # Bytes streamed without a length until the client goes (a page of "infinite" size).
    endless: bool = False


def article(title: str, text: str, links: list[str] = (), extra_head: str = "") -> bytes:  # type: ignore[assignment]
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{extra_head}</head><body>"
            f"<nav><ul>{anchors}</ul></nav><main><h1>{title}</h1><p>{text}</p></main>"
            "<footer>© Example Inc.</footer></body></html>").encode()


class Site:
    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.hits: Counter[str] = Counter()
        self.full_answers: Counter[str] = Counter()  # 200s with a body
        self.streamed = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path
                site.hits[path] += 1
                resource = site.resources.get(path)
                if resource is None:
                    self._send(404, b"not found", {"content-type": "text/plain"})
                    return
                if resource.endless:
                    self.send_response(200)
                    self.send_header("content-type", "text/html")
                    self.send_header("connection", "close")
                    self.end_headers()
                    chunk = b"<p>" + b"x" * 65536 + b"</p>"
                    try:
                        while site.streamed < 200 * 1024 * 1024:
                            self.wfile.write(chunk)
                            site.streamed += len(chunk)
                    except OSError:
                        pass
                    return
                etag = '"' + hashlib.sha256(resource.body).hexdigest()[:16] + '"'
                if resource.status == 200 and self.headers.get("if-none-match") == etag:
                    self._send(304, b"", {"etag": etag})
                    return
                if resource.status == 200:
                    site.full_answers[path] += 1
                self._send(resource.status, resource.body, {**resource.headers, **({"etag": etag} if resource.status == 200 else {})})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str, body: bytes, **headers: str) -> None:
        self.resources[path] = Resource(body, headers={"content-type": "text/html; charset=utf-8", **headers})

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        self.resources[path] = Resource(status=status, headers={"location": to})

    def sitemap(self, paths: list[str], at: str = "/sitemap.xml", gzipped: bool = False) -> None:
        entries = "".join(f"<url><loc>{self.base}{p}</loc></url>" for p in paths)
        body = (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}'
                "</urlset>").encode()
        self.resources[at] = Resource(gzip.compress(body) if gzipped else body,
                                      headers={"content-type": "application/gzip" if gzipped else "application/xml"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
