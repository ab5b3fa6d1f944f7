"""Structure-aware, token-aware chunking: sections stay whole when they fit; longer ones are
packed from paragraphs, then sentences, with an overlap carried between neighbouring chunks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from services.retriever.parsing import ParsedDocument

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

    def embedding_text(self) -> str:
        """The title and headings give a short passage the context it needs to be found."""
        context = " > ".join([self.title, *self.heading_path])
        return f"{context}\n{self.text}"


def _split_units(text: str) -> list[str]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs


def _split_long(unit: str, budget: int, count: TokenCounter) -> list[str]:
    """Splits one over-budget unit into sentences, and sentences into word windows."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(unit):
        if count(sentence) <= budget:
            pieces.append(sentence)
            continue
        words = sentence.split()
        window: list[str] = []
        for word in words:
            window.append(word)
            if count(" ".join(window)) > budget and len(window) > 1:
                window.pop()
                pieces.append(" ".join(window))
                window = [word]
        if window:
            pieces.append(" ".join(window))
    return pieces


def split_text(text: str, budget: int, overlap: int, count: TokenCounter) -> list[str]:
    units: list[str] = []
    for paragraph in _split_units(text):
        units.extend([paragraph] if count(paragraph) <= budget else _split_long(paragraph, budget, count))
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    for unit in units:
        tokens = count(unit)
        if current and size + tokens > budget:
            chunks.append("\n\n".join(u for u, _ in current))
            carried: list[tuple[str, int]] = []
            carried_size = 0
            for previous in reversed(current):
                if carried_size + previous[1] > overlap:
                    break
                carried.insert(0, previous)
                carried_size += previous[1]
            current, size = carried, carried_size
        current.append((unit, tokens))
        size += tokens
    if current:
        chunks.append("\n\n".join(u for u, _ in current))
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
) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in parsed.sections:
        for text in split_text(section.text, budget, overlap, count):
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
                )
            )
    return chunks
