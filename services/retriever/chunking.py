"""Structure-aware, token-aware chunking: sections stay whole when they fit; longer ones are
packed from paragraphs, then sentences, with an overlap carried between neighbouring chunks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from services.retriever.parsing import ParsedDocument
from supportbot.answers.text import STEP

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")

TokenCounter = Callable[[str], int]


@dataclass
class Chunk:
    chunk_id: str
    document_id: str
    ordinal: int
    title: str
    heading_path: list[str]
    text: str
    url: str
    collection: str
    content_hash: str
    metadata: dict[str, str] = field(default_factory=dict)
    # How much of the passage is a procedure (see procedure_share), stored in the payload so
    # search can put steps first for a "how do I" question.
    procedure: float = 0.0

    def embedding_text(self) -> str:
        """The title and headings give a short passage the context it needs to be found."""
        context = " > ".join([self.title, *self.heading_path])
        return f"{context}\n{self.text}"


# -- tables of contents and heading-only lists ---------------------------------------------------
# "9.3. Must I keep all .deb archives? 9.4. ..." or a list of the page's own headings is
# navigation, whatever the format it came in: never a passage to quote.
_MULTILEVEL_NUMBER = re.compile(r"^(?:[-*+•]\s+)?\d+(?:\.\d+)+\.?\s+\S")
_SINGLE_NUMBER = re.compile(r"^(?:[-*+•]\s+)?(?:\d+|[IVXLC]+|[A-Z])[.)]?\s+\S")
_LINK_ONLY = re.compile(r"^(?:[-*+•]\s+|\d+[.)]\s+)?\[[^\]]+\]\([^)]*\)$")
_BEFORE_INLINE_NUMBER = re.compile(r"(?<=\S)\s+(?=\d+(?:\.\d+)+\.?\s)")
_LIST_MARK = re.compile(r"^(?:[-*+•]\s+|(?:\d+(?:\.\d+)*|[IVXLC]+|[A-Z])[.)]?\s+)")
_TOC_MIN_ENTRIES = 3


def _heading_key(text: str) -> str:
    return re.sub(r"\s+", " ", _LIST_MARK.sub("", text.strip())).strip(" .:").casefold()


def _entry_kind(entry: str, headings: frozenset[str]) -> str:
    """'toc': a numbered section reference, a bare link or one of the document's headings;
    'neutral': a short single-numbered line (a chapter line, or a step: it takes more to be a
    table of contents); 'text': anything else."""
    entry = entry.strip()
    if _LINK_ONLY.match(entry) or _MULTILEVEL_NUMBER.match(entry) or _heading_key(entry) in headings:
        return "toc"
    if _SINGLE_NUMBER.match(entry) and len(entry.split()) <= 10 and not entry.rstrip().endswith((".", ":")):
        return "neutral"
    return "text"


def _is_toc(entries: list[str], headings: frozenset[str]) -> bool:
    kinds = [_entry_kind(e, headings) for e in entries]
    toc = kinds.count("toc")
    return toc >= _TOC_MIN_ENTRIES and "text" not in kinds and toc * 2 >= len(kinds)


def strip_navigation(text: str, headings: frozenset[str] = frozenset()) -> str:
    """The text without its table-of-contents blocks: runs of lines that are section numbers,
    bare links or the document's own headings, and single lines that list three or more
    numbered sections in a row."""
    lines = text.splitlines()
    keep = [True] * len(lines)
    start = 0
    while start < len(lines):
        end = start
        while end < len(lines) and lines[end].strip() and _entry_kind(lines[end], headings) != "text":
            end += 1
        if end > start and _is_toc(lines[start:end], headings):
            keep[start:end] = [False] * (end - start)
        start = max(end, start + 1)
    for index, line in enumerate(lines):
        if keep[index]:
            entries = _BEFORE_INLINE_NUMBER.split(line.strip())
            if len(entries) >= _TOC_MIN_ENTRIES and _is_toc(entries, headings):
                keep[index] = False
    kept = "\n".join(line for line, k in zip(lines, keep, strict=True) if k)
    return re.sub(r"\n{3,}", "\n\n", kept).strip()


# -- procedures ------------------------------------------------------------------------------------
# A how-to passage tells the reader what to do: numbered steps, a menu path ("Format - Page -
# Sheet", "File → Open"), or an instruction line ("Click OK.", "확인을 클릭하십시오.").
_MENU_ITEM = r"[^\s\-–→>»|][^\-–→>»|\n.;:]{0,40}?"
_MENU_PATH = re.compile(rf"{_MENU_ITEM}\s[→>»]\s{_MENU_ITEM}|{_MENU_ITEM}\s[-–]\s{_MENU_ITEM}\s[-–]\s{_MENU_ITEM}")
# Instruction lines start with the verbs of user-interface help (any product's) or, in Korean,
# end in an instruction ending.
_INSTRUCTION = re.compile(
    r"^(?:[-*+•]\s+)?(?:choose|click|double-click|right-click|select|press|open|go to|type|enter|drag|mark|"
    r"clear|check|uncheck|tap|use|set|switch|pull down|navigate)\b"
    r"|(?:하십시오|하세요|합니다|누릅니다|선택합니다|클릭합니다|입력합니다|엽니다)\.?$",
    re.IGNORECASE,
)


def procedure_share(text: str) -> float:
    """The share of a passage's lines that are steps, menu paths or instructions (0..1)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return 0.0
    doing = sum(1 for line in lines if STEP.match(line) or _MENU_PATH.search(line) or _INSTRUCTION.search(line.strip()))
    return round(doing / len(lines), 3)


def _split_units(text: str) -> list[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs


def _split_long(unit: str, budget: int, count: TokenCounter) -> list[str]:
    """Splits one over-budget paragraph into its lines (list items, table rows, the blocks of a
    web page), lines into sentences, and sentences into word windows. Linear in its length: a
    long page section without a full stop (a table of shortcuts) used to be re-tokenized once
    per word."""
    pieces: list[str] = []
    for line in unit.splitlines():
        if not line.strip():
            continue
        if count(line) <= budget:
            pieces.append(line)
            continue
        for sentence in _SENTENCE_END.split(line):
            if count(sentence) <= budget:
                pieces.append(sentence)
                continue
            window: list[str] = []
            size = 0
            for word in sentence.split():
                tokens = max(count(word), 1)
                if window and size + tokens > budget:
                    pieces.append(" ".join(window))
                    window, size = [], 0
                window.append(word)
                size += tokens
            if window:
                pieces.append(" ".join(window))
    return pieces


def is_procedure(paragraph: str) -> bool:
    """Whether a paragraph is mostly numbered steps (three or more; notes between them allowed)."""
    lines = [line for line in paragraph.splitlines() if line.strip()]
    steps = sum(1 for line in lines if STEP.match(line))
    return steps >= 3 and steps * 2 >= len(lines)


def split_text(text: str, budget: int, overlap: int, count: TokenCounter, procedure_budget: int = 0) -> list[str]:
    """Chunks of about `budget` tokens, `overlap` carried over; a numbered procedure of up to
    `procedure_budget` tokens stays whole in a chunk of its own."""
    # (text, tokens, separator before it when it follows another unit in the same chunk): the
    # pieces of one paragraph stay on consecutive lines, paragraphs are separated by a blank line.
    units: list[tuple[str, int, str]] = []
    for paragraph in _split_units(text):
        tokens = count(paragraph)
        if tokens <= budget or (tokens <= procedure_budget and is_procedure(paragraph)):
            units.append((paragraph, tokens, "\n\n"))
            continue
        for index, piece in enumerate(_split_long(paragraph, budget, count)):
            units.append((piece, count(piece), "\n\n" if index == 0 else "\n"))

    def joined(parts: list[tuple[str, int, str]]) -> str:
        return "".join((sep if i else "") + part for i, (part, _, sep) in enumerate(parts))

    chunks: list[str] = []
    current: list[tuple[str, int, str]] = []
    size = 0
    for unit in units:
        if current and size + unit[1] > budget:
            chunks.append(joined(current))
            carried: list[tuple[str, int, str]] = []
            carried_size = 0
            for previous in reversed(current):
                if carried_size + previous[1] > overlap:
                    break
                carried.insert(0, previous)
                carried_size += previous[1]
            current, size = carried, carried_size
        current.append(unit)
        size += unit[1]
    if current:
        chunks.append(joined(current))
    return chunks


def document_hash(content: bytes, title: str, url: str, metadata: dict[str, str]) -> str:
    digest = hashlib.sha256(content)
    digest.update(f"\0{title}\0{url}\0{sorted(metadata.items())}".encode())
    return digest.hexdigest()


def chunk_document(
    parsed: ParsedDocument,
    *,
    document_id: str,
    collection: str,
    url: str,
    content_hash: str,
    metadata: dict[str, str],
    budget: int,
    overlap: int,
    count: TokenCounter,
    procedure_budget: int = 0,
) -> list[Chunk]:
    chunks: list[Chunk] = []
    headings = frozenset(_heading_key(h) for section in parsed.sections for h in section.heading_path)
    for section in parsed.sections:
        body = strip_navigation(section.text, headings)
        if not body:
            continue
        for text in split_text(body, budget, overlap, count, procedure_budget):
            ordinal = len(chunks)
            chunks.append(
                Chunk(
                    chunk_id=f"{collection}/{document_id}#{ordinal}",
                    document_id=document_id,
                    ordinal=ordinal,
                    title=parsed.title,
                    heading_path=list(section.heading_path),
                    text=text,
                    url=url,
                    collection=collection,
                    content_hash=content_hash,
                    metadata=dict(metadata),
                    procedure=procedure_share(text),
                )
            )
    return chunks
