"""Citation marks in answer text ("[1]", "[1, 3]") and the Citation messages they stand for.
One home for both services: the generator parses the model's marks, the gateway its own."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from supportbot.v1 import common_pb2

CITATION_MARK = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def citation(number: int, source: common_pb2.Source) -> common_pb2.Citation:
    return common_pb2.Citation(
        index=number, chunk_id=source.chunk_id, document_id=source.document_id, title=source.title, url=source.url
    )


def citations_for(numbers: Iterable[int], sources: Sequence[common_pb2.Source]) -> list[common_pb2.Citation]:
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


def parse_citations(text: str, sources: Sequence[common_pb2.Source]) -> list[common_pb2.Citation]:
    """Maps each distinct [n] in the text to the n-th source."""
    numbers = (int(part) for match in CITATION_MARK.finditer(text) for part in match.group(1).split(","))
    return citations_for(numbers, sources)
