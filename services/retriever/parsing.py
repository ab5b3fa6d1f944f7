"""Turns Markdown, HTML, plain text and PDF bytes into a title and a list of sections, each with
its heading path, so chunks follow the document's structure."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from supportbot.core.documents import MIME_BY_SUFFIX

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag


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


# The WHATWG Encoding Standard, which browsers follow, reads these labels as their supersets.
_BROWSER_ENCODINGS = {"euc-kr": "cp949", "ks_c_5601-1987": "cp949", "iso-8859-1": "cp1252", "ascii": "cp1252",
                      "us-ascii": "cp1252", "gb2312": "gbk", "shift_jis": "cp932"}


def _decode_html(content: bytes) -> str:
    """UTF-8, or the encoding the page declares (<meta charset>), as a browser would read it:
    older Korean pages are often EUC-KR."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from bs4.dammit import EncodingDetector

        declared = EncodingDetector.find_declared_encoding(content, is_html=True, search_entire_document=False)
        if not declared:
            raise DocumentError(f"not valid UTF-8 text (byte {exc.start}) and the page declares no other encoding") from exc
        encoding = _BROWSER_ENCODINGS.get(declared.lower(), declared)
        try:
            return content.decode(encoding)
        except (LookupError, UnicodeDecodeError) as declared_exc:
            raise DocumentError(f"the page declares encoding {declared!r} but is not valid {declared} text") from declared_exc


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


# Main-content extraction for HTML help-center pages. Compared on real pages (Debian's
# libreoffice-help-en-us, gimp-help-ko and debian-handbook; bench/extraction_quality.py prints
# the figures): trafilatura (an article extractor) drops headings, definition terms and DocBook
# lists, so option names and steps vanish; readability-lxml keeps one fragment per page and drops
# the hidden <span>s that carry LibreOffice's menu paths; jusText's stop-word density marks every
# paragraph of a short how-to page as boilerplate and returns nothing. What help pages need is the
# other way round: keep every text block with its heading path, remove what is navigation. So the
# page is walked with BeautifulSoup and navigation goes by the three signals boilerplate
# detectors share (boilerpipe, jusText): the element says it is navigation (HTML5 landmarks and
# ARIA roles), its class or id names it the way site generators do (DocBook's navheader, toc,
# breadcrumbs, "related" lists), or it is a list or box that is mostly link text (link density).
_DROPPED_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
                 "button", "select", "input", "textarea", "svg", "iframe", "object", "link", "meta")
_NAVIGATION_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar", "toolbar"})
_NAVIGATION_NAME = re.compile(
    r"^(?:toc|table-?of-?contents|breadcrumbs?|navheader|navfooter|docnav|nav|navbar|navigation|"
    r"related(?:topics|-?articles|-?links)?|see-?also-?links|pagination|pager|skip-?link|site-?(?:header|footer|menu))$",
    re.IGNORECASE,
)
# A list, table or box with at least this many links whose text is mostly link text is a menu,
# a table of contents or a "related articles" list (jusText's max_link_density is 0.2 for a
# paragraph; a block of links runs 0.8-1.0 on the pages above, a content list under 0.3).
_LINK_DENSITY = 0.6
_MIN_LINKS = 3
# A box of links with fewer characters of its own than this has no sentence of its own.
_OWN_TEXT = 40
_BLOCK_TAGS = frozenset(
    "p div section article main li dt dd pre blockquote table tr thead tbody tfoot ul ol dl figure figcaption "
    "address center details summary caption br hr".split()
)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def _names(tag: Tag) -> list[str]:
    classes: str | list[str] = tag.get("class") or []
    return [*(classes if isinstance(classes, list) else str(classes).split()), str(tag.get("id") or "")]


def _is_navigation(tag: Tag) -> bool:
    if str(tag.get("role") or "").lower() in _NAVIGATION_ROLES:
        return True
    if any(_NAVIGATION_NAME.match(name) for name in _names(tag) if name):
        return True
    if tag.name in ("ul", "ol", "dl", "table", "div", "p", "menu"):
        links = tag.find_all("a", href=True)
        if not links:
            return False
        total = len(tag.get_text(" ", strip=True))
        linked = sum(len(a.get_text(" ", strip=True)) for a in links)
        density = linked / total if total else 0.0
        if len(links) < _MIN_LINKS:
            # A paragraph that is nothing but a link ("Download the ebook", "Next: Installing")
            # points elsewhere: it says nothing itself.
            return tag.name in ("p", "div") and density >= 0.99
        if tag.name == "div":
            # A box of links, but not a page's body that lists its subpages after a sentence of
            # its own ("There are several ways to insert a graphic:"): that sentence stays.
            return density >= _LINK_DENSITY and total - linked < _OWN_TEXT
        return density >= _LINK_DENSITY
    return False


def _drop_navigation(node: Tag) -> None:
    """Menus, tables of contents and link lists removed, outermost first, so a menu inside a menu
    is judged once, with its whole text, and nothing inside a removed one is looked at again."""
    from bs4 import Tag

    # An explicit stack, not recursion: pages nest deeper than Python's recursion limit.
    waiting = [node]
    while waiting:
        for child in list(waiting.pop().children):
            if isinstance(child, Tag):
                if _is_navigation(child):
                    child.decompose()
                else:
                    waiting.append(child)


def _hidden_alternative(tag: Tag) -> bool:
    """Pages that show one of several hidden variants by script (LibreOffice's help names the
    menu "LibreOffice - Preferences" on macOS and "Tools - Options" elsewhere, both hidden)
    would otherwise read "LibreOffice - PreferencesTools - Options": of a run of hidden
    siblings, only the last, the one shown by default, is kept."""
    if not tag.has_attr("hidden"):
        return False
    following = tag.find_next_sibling()
    return following is not None and following.has_attr("hidden")


def _main_content(soup: BeautifulSoup) -> Tag:
    for candidates in (soup.find_all("main"), soup.find_all(None, {"role": "main"}), soup.find_all("article")):
        if len(candidates) == 1:
            return candidates[0]
    return soup.body or soup


class _BlockWriter:
    """Walks the page's main content and writes one line per text block: headings open
    sections, list items keep their markers ("- ", or "1. " in an ordered list, so steps stay
    steps), a table row becomes one line with its cells separated by " | "."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.prefix = ""

    def flush_line(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self.inline)).strip()
        self.inline.clear()
        if text:
            self.lines.append(self.prefix + text)
            self.prefix = ""

    def flush_section(self) -> None:
        self.flush_line()
        content = "\n".join(self.lines).strip()
        if content:
            self.sections.append(Section([h for _, h in self.path], content))
        self.lines.clear()

    def heading(self, tag: Tag) -> None:
        text = re.sub(r"\s+", " ", tag.get_text(" ", strip=True))
        if not text:
            return
        self.flush_section()
        level = int(tag.name[1])
        if level == 1:
            self.path = []
            return
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, text))

    def walk(self, node: Tag) -> None:
        from bs4 import Tag
        from bs4.element import Comment, Doctype, NavigableString, ProcessingInstruction

        for child in node.children:
            if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
                continue
            if not isinstance(child, Tag) or _hidden_alternative(child):
                continue
            if child.name in _HEADINGS:
                self.heading(child)
            elif child.name == "pre":
                self.flush_line()
                text = child.get_text().strip("\n")
                if text.strip():
                    self.lines.append(text)
            elif child.name == "tr":
                self.flush_line()
                cells = [re.sub(r"\s+", " ", cell.get_text(" ", strip=True)) for cell in child.find_all(["td", "th"], recursive=False)]
                cells = [c for c in cells if c]
                if cells:
                    self.lines.append(" | ".join(cells))
            elif child.name == "li":
                self.flush_line()
                parent = child.find_parent(["ol", "ul"])
                if parent is not None and parent.name == "ol":
                    number = 1 + sum(1 for s in child.find_previous_siblings("li"))
                    self.prefix = f"{number}. "
                else:
                    self.prefix = "- "
                self.walk(child)
                self.flush_line()
            elif child.name in _BLOCK_TAGS:
                self.flush_line()
                self.walk(child)
                self.flush_line()
            else:
                self.walk(child)


def parse_html(text: str, source_path: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    metadata = {
        str(meta.get("name")).lower(): str(meta.get("content"))
        for meta in soup.find_all("meta")
        if meta.get("name") and meta.get("content") is not None
    }
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(list(_DROPPED_TAGS)):
        tag.decompose()
    has_text = bool((soup.body or soup).get_text(strip=True))
    _drop_navigation(soup)
    root = _main_content(soup)
    h1 = root.find("h1")
    title = re.sub(r"\s+", " ", h1.get_text(" ", strip=True)) if h1 else page_title
    writer = _BlockWriter()
    writer.walk(root)
    writer.flush_section()
    if not writer.sections and has_text:
        raise DocumentError("no content to index: the page holds only navigation (menus, a table of contents, link lists)")
    return ParsedDocument(title or _fallback_title(source_path), writer.sections, metadata)


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
        parsed = parse_html(_decode_html(content), source_path)
    elif kind == "text/markdown":
        parsed = parse_markdown(_decode(content), source_path)
    else:
        parsed = parse_text(_decode(content), source_path)
    if not parsed.sections:
        raise DocumentError("no text found in the document")
    return parsed
