"""Turns Markdown, HTML, plain text and PDF bytes into a title and a list of sections, each with
its heading path, so chunks follow the document's structure."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from supportbot.core.documents import MIME_BY_SUFFIX


class DocumentError(ValueError):
    """A document that cannot be ingested; the message says why, for people."""


@dataclass
class Section:
    heading_path: list[str]
    text: str


@dataclass
class ParsedDocument:
    title: str
    sections: list[Section]
    metadata: dict[str, str] = field(default_factory=dict)



_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def mime_type_for(source_path: str, declared: str = "") -> str:
    if declared:
        if declared not in MIME_BY_SUFFIX.values():
            raise DocumentError(
                f"unsupported type {declared!r}; use one of {sorted(set(MIME_BY_SUFFIX.values()))}"
            )
        return declared
    suffix = PurePosixPath(source_path.split("?")[0]).suffix.lower()
    if suffix not in MIME_BY_SUFFIX:
        raise DocumentError(
            f"cannot tell the type of {source_path!r}: supported extensions are "
            f"{', '.join(sorted(MIME_BY_SUFFIX))}"
        )
    return MIME_BY_SUFFIX[suffix]


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 text (byte {exc.start})") from exc


def _fallback_title(source_path: str) -> str:
    stem = PurePosixPath(source_path).stem if source_path else "Untitled"
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or "Untitled"


def _parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return fields, text[match.end() :]


def parse_markdown(text: str, source_path: str) -> ParsedDocument:
    metadata, body = _parse_front_matter(text)
    title = metadata.pop("title", "")
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_code = False

    def flush() -> None:
        content = "\n".join(lines).strip()
        if content:
            sections.append(Section([h for _, h in path], content))
        lines.clear()

    for line in body.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        flush()
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1:
            # The document's own title (front matter may have named it already), not a section.
            title = title or name
            path = []
            continue
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, name))
    flush()
    return ParsedDocument(title or _fallback_title(source_path), sections, metadata)


def parse_html(text: str, source_path: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript"]):
        tag.decompose()
    metadata = {
        str(meta.get("name")).lower(): str(meta.get("content"))
        for meta in soup.find_all("meta")
        if meta.get("name") and meta.get("content") is not None
    }
    h1 = soup.find("h1")
    title = (
        h1.get_text(" ", strip=True)
        if h1
        else (soup.title.get_text(strip=True) if soup.title else "")
    )
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        content = "\n".join(lines).strip()
        if content:
            sections.append(Section([h for _, h in path], content))
        lines.clear()

    root = soup.body or soup
    for element in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "dt", "dd"]):
        if element.name in {"p", "li", "td", "dt", "dd"} and element.find_parent(["li", "td", "pre"]) is not None:
            continue
        textual = element.get_text(" ", strip=True)
        if not textual:
            continue
        if element.name.startswith("h"):
            flush()
            level = int(element.name[1])
            if level == 1:
                path = []
                continue
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, textual))
        else:
            lines.append(("- " if element.name == "li" else "") + textual)
    flush()
    return ParsedDocument(title or _fallback_title(source_path), sections, metadata)


def parse_text(text: str, source_path: str) -> ParsedDocument:
    stripped = text.strip()
    first_line, _, rest = stripped.partition("\n")
    if rest and len(first_line) <= 120:
        return ParsedDocument(first_line.strip(), [Section([], rest.strip())] if rest.strip() else [])
    return ParsedDocument(_fallback_title(source_path), [Section([], stripped)] if stripped else [])


_PDF_HEADING = re.compile(r"^\d+(?:\.\d+)*\.?\s+[A-Z][^.!?]{0,70}$")


def _pdf_page_sections(text: str, page: int, title: str) -> list[Section]:
    """PDFs carry no heading markup: short numbered lines ("2. Warranty periods") start
    sections, and lines wrapped mid-sentence are joined again."""
    sections: list[Section] = []
    heading = f"Page {page}"
    lines: list[str] = []

    def flush() -> None:
        body = re.sub(r"\s*\n\s*", " ", "\n".join(lines)).strip()
        if body:
            sections.append(Section([heading], body))
        lines.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == title:
            continue
        if _PDF_HEADING.match(stripped):
            flush()
            heading = stripped
            continue
        lines.append(stripped)
    flush()
    return sections


def parse_pdf(content: bytes, source_path: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentError(f"not a readable PDF ({exc})") from exc
    info_title = ""
    if reader.metadata and reader.metadata.title:
        info_title = str(reader.metadata.title)
    sections: list[Section] = []
    for number, page_text in enumerate(pages, start=1):
        sections.extend(_pdf_page_sections(page_text, number, info_title))
    return ParsedDocument(info_title or _fallback_title(source_path), sections)


def parse_document(content: bytes, source_path: str, mime_type: str = "") -> ParsedDocument:
    kind = mime_type_for(source_path, mime_type)
    if kind == "application/pdf":
        parsed = parse_pdf(content, source_path)
    elif kind == "text/html":
        parsed = parse_html(_decode(content), source_path)
    elif kind == "text/markdown":
        parsed = parse_markdown(_decode(content), source_path)
    else:
        parsed = parse_text(_decode(content), source_path)
    if not parsed.sections:
        raise DocumentError("no text found in the document")
    return parsed
