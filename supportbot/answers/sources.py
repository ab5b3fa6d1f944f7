"""What an answer rests on and how it points there, as the answer machinery's own types: a
retrieved `Source` (a chunk of a help-center article, with its scores and sentence highlights)
and a `Citation` (the number an answer uses for an article, and which of its sections it quotes).

The services convert protobuf messages to these where a message enters and back where one
leaves (`supportbot.answers.wire`); the logic in between reads these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from supportbot.answers.grounding import Highlight


@dataclass(frozen=True)
class Source:
    chunk_id: str = ""  # "<collection>/<document_id>#<ordinal>"
    document_id: str = ""
    title: str = ""
    heading_path: tuple[str, ...] = ()  # outermost heading first
    url: str = ""
    collection: str = ""
    text: str = ""
    score: float = 0.0  # the fused ranking score
    dense_score: float = 0.0  # cosine similarity to the question; 0 when not computed
    sparse_score: float = 0.0
    metadata: Mapping[str, str] = field(default_factory=dict)
    content_hash: str = ""  # the stored version of the document
    document_version: int = 0
    language: str = ""  # "en", "ko", ...; "und" when it could not be told
    highlights: tuple[Highlight, ...] = ()  # the chunk's sentences scored against the question


@dataclass(frozen=True)
class Citation:
    index: int  # the number the answer text uses, 1-based
    chunk_id: str = ""
    document_id: str = ""
    title: str = ""
    url: str = ""
    sections: tuple[str, ...] = ()  # the article's quoted sections, in the article's order

    def as_record(self) -> dict[str, object]:
        """As session turns and the interaction log store it."""
        return {"index": self.index, "chunk_id": self.chunk_id, "document_id": self.document_id,
                "title": self.title, "url": self.url}
