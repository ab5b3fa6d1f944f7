"""Whether an answer reads as an answer, counted on the text the customer sees (not with the
composer's own detectors):

- a list that opens the answer, or follows a sentence of another source (no lead-in);
- an opening sentence that depends on one not shown, from a hand-annotated list of such
  sentences (bench/data/dependent_openers.jsonl);
- one article cited under two numbers;
- citation numbers that do not run 1, 2, 3 in reading order.

    >>> list_without_lead_in("- Cards: 5-10 days [1]")
    True
    >>> list_without_lead_in("How long it takes:\\n\\n- Cards: 5-10 days [1]")
    False
    >>> citations_in_reading_order("Refunds take a week. [2] Cards take longer. [1]")
    False
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_FIRST_SENTENCE = re.compile(r"^(.+?(?:[.!?。](?=\s|$)|:(?=\s*$)|$))", re.S)


def list_without_lead_in(answer: str) -> bool:
    """A list that opens the answer, or that follows a sentence of another source: a run of
    one source's sentences is cited once, at its end, so a line that ends in a citation mark
    closes what came before and cannot be the list's lead-in."""
    previous = ""
    for line in answer.splitlines():
        if not line.strip():
            continue
        starts_list = _LIST_ITEM.match(line) and not _LIST_ITEM.match(previous)
        if starts_list and (not previous or re.search(r"\]\s*$", previous)):
            return True
        previous = line
    return False


def citations_in_reading_order(answer: str) -> bool:
    """Whether the citation numbers first appear as 1, 2, 3, ... reading the answer."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        for part in match.group(1).split(","):
            number = int(part)
            if number not in seen:
                seen.append(number)
    return seen == list(range(1, len(seen) + 1))


def articles_under_two_numbers(document_ids: Iterable[str]) -> bool:
    """Whether one document is cited under more than one number (one citation per number)."""
    ids = [d for d in document_ids if d]
    return len(ids) != len(set(ids))


def normalized(sentence: str) -> str:
    return re.sub(r"\s+", " ", _CITATION.sub("", sentence)).strip().strip("*_").lower()


def first_sentence(answer: str) -> str:
    first_line = next((line for line in answer.splitlines() if line.strip()), "")
    match = _FIRST_SENTENCE.match(_LIST_ITEM.sub("", first_line).strip())
    return normalized(match.group(1) if match else first_line)


def load_dependent_openers(path: Path) -> tuple[set[str], set[str]]:
    """(sentences that depend on one before them, sentences that stand on their own), as
    annotated by hand: {"sentence": ..., "depends": true|false} per line."""
    dependent: set[str] = set()
    standalone: set[str] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                (dependent if row["depends"] else standalone).add(normalized(row["sentence"]))
    return dependent, standalone
