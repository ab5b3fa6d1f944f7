"""Citation marks in answer text ("[1]", "[1, 3]") and the citations they stand for. One home
for both services: the generator parses the model's marks, the gateway its own."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from supportbot.answers.sources import Citation


class CitableSource(Protocol):
    """What a citation reads of a source: a `Source`, or a Source message at a service's edge."""

    @property
    def chunk_id(self) -> str: ...

    @property
    def document_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def url(self) -> str: ...


class CitedArticleLike(Protocol):
    number: int
    source: int
    sections: list[str]


CITATION_MARK = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def citation(number: int, source: CitableSource, sections: Sequence[str] = ()) -> Citation:
    return Citation(
        index=number, chunk_id=source.chunk_id, document_id=source.document_id, title=source.title, url=source.url,
        sections=tuple(sections),
    )


def article_citations(articles: Iterable[CitedArticleLike], sources: Sequence[CitableSource]) -> list[Citation]:
    """One citation per cited article, numbered as the answer numbers it, with the sections
    of it the answer quotes."""
    return [
        citation(article.number, sources[article.source - 1], article.sections)
        for article in articles
        if 1 <= article.source <= len(sources)
    ]


def citations_for(numbers: Iterable[int], sources: Sequence[CitableSource]) -> list[Citation]:
    """Each distinct number that names a source (1-based), in order; others are dropped rather
    than shown as broken links."""
    seen: set[int] = set()
    result = []
    for number in numbers:
        if number in seen or not 1 <= number <= len(sources):
            continue
        seen.add(number)
        result.append(citation(number, sources[number - 1]))
    return result


def parse_citations(text: str, sources: Sequence[CitableSource]) -> list[Citation]:
    """Maps each distinct [n] in the text to the n-th source."""
    numbers = (int(part) for match in CITATION_MARK.finditer(text) for part in match.group(1).split(","))
    return citations_for(numbers, sources)
