"""Grounding without a model: which source sentence supports a claim (verification and
attribution), and which source sentences answer a question (extractive composition).

Both work on the passages retrieved for the turn, weigh words by how rare they are among those
passages (a word every passage has, like the product's name, proves little), and require every
figure a claim states to be in its evidence.

    >>> evidence = Evidence([Passage("Reset your password", "Tap Forgot password? on the sign-in "
    ...     "screen. The link is valid for 60 minutes.")])
    >>> evidence.support("The reset link is valid for 60 minutes.").source
    1
    >>> evidence.support("The reset link is valid for 24 hours.").score
    0.0
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from supportbot.answers.text import Unit, numbers, split_units, terms


class PassageLike(Protocol):
    """Anything with a title, heading path and text: a retrieved `Source` message or a Passage."""

    title: str
    text: str

    @property
    def heading_path(self) -> Sequence[str]: ...


@dataclass
class Passage:
    title: str
    text: str
    heading_path: Sequence[str] = ()
    dense_score: float = 0.0


@dataclass(frozen=True)
class Support:
    """How well the best evidence window of one source covers a claim (0..1), and where."""

    score: float
    source: int = 0  # 1-based number of the source, 0 when nothing supports the claim
    unit: int = -1


@dataclass
class _SourceUnits:
    units: list[Unit]
    terms: list[set[str]]
    numbers: list[set[str]]
    heading_terms: set[str]


@dataclass
class Quote:
    """A unit of a source, quoted as it is, and the source's 1-based number."""

    text: str
    source: int
    is_list_item: bool = False


@dataclass
class Composition:
    quotes: list[Quote] = field(default_factory=list)
    relevance: float = 0.0  # share of the question's weight the best unit covers


# A unit needs this many words with letters to be quotable on its own; tables and code are not.
_MIN_QUOTABLE_WORDS = 3
_TABLE_OR_CODE = re.compile(r"^\s*(\||```|~~~|    \S)|\|.*\|")


def quotable(text: str) -> bool:
    if _TABLE_OR_CODE.search(text):
        return False
    return sum(1 for w in text.split() if any(c.isalpha() for c in w)) >= _MIN_QUOTABLE_WORDS


class Evidence:
    """The turn's passages split into units, with rarity weights over all of them."""

    def __init__(self, passages: Sequence[PassageLike]) -> None:
        self.passages = list(passages)
        self.sources: list[_SourceUnits] = []
        document_frequency: Counter[str] = Counter()
        count = 0
        for passage in self.passages:
            units = split_units(passage.text)
            unit_terms = [set(terms(u.text)) for u in units]
            self.sources.append(
                _SourceUnits(units, unit_terms, [numbers(u.text) for u in units],
                             set(terms(" ".join([passage.title, *passage.heading_path]))))
            )
            for unit_term_set in unit_terms:
                document_frequency.update(unit_term_set)
                count += 1
        self._count = max(count, 1)
        self._frequency = document_frequency

    def weight(self, term: str) -> float:
        return math.log(1 + self._count / (1 + self._frequency.get(term, 0))) + 0.1

    def _weighted(self, selected: Iterable[str]) -> float:
        return sum(self.weight(t) for t in selected)

    # -- verification ------------------------------------------------------------------------
    def support(self, claim: str, window: int = 1, *, source: int = 0) -> Support:
        """The best-supporting window (a unit and `window` neighbours each side, one source;
        only source number `source` when given): the weighted share of the claim's words it
        has. Zero when the claim states a figure the window does not, or has no content words."""
        claim_terms = set(terms(claim))
        claim_numbers = numbers(claim)
        total = self._weighted(claim_terms)
        if not total:
            return Support(0.0)
        best = Support(0.0)
        for number, units in enumerate(self.sources, 1):
            if source and number != source:
                continue
            for index in range(len(units.units)):
                low, high = max(0, index - window), min(len(units.units), index + window + 1)
                covered = set().union(*units.terms[low:high], units.heading_terms)
                stated = set().union(*units.numbers[low:high])
                if not claim_numbers <= stated:
                    continue
                score = self._weighted(claim_terms & covered) / total
                if score > best.score:
                    best = Support(score, number, index)
        return best

    # -- extractive composition -------------------------------------------------------------
    def relevance(self, question_terms: dict[str, float], source: int, index: int) -> float:
        """Weighted share of the question a unit covers, its section heading counting half."""
        units = self.sources[source - 1]
        total = sum(self.weight(t) * w for t, w in question_terms.items())
        if not total:
            return 0.0
        own = sum(self.weight(t) * w for t, w in question_terms.items() if t in units.terms[index])
        heading = sum(
            self.weight(t) * w for t, w in question_terms.items()
            if t in units.heading_terms and t not in units.terms[index]
        )
        return (own + 0.5 * heading) / total

    def compose(
        self,
        question: str,
        *,
        context: str = "",
        max_units: int = 6,
        max_chars: int = 500,
        overlap_weight: float = 0.25,
        second_section_min: float = 0.15,
    ) -> Composition:
        """The source units that answer `question`: the section the retriever found most similar
        (plus word overlap), quoted around its most relevant unit with lists whole, then a second
        section of the same article, or of another article that answers at least as well (two
        sources that disagree are both quoted, each with its citation, never merged)."""
        question_terms = {t: 1.0 for t in terms(question)}
        for term in terms(context):
            question_terms.setdefault(term, 0.3)
        best: dict[int, tuple[float, int]] = {}  # source -> (relevance, unit) of its best unit
        for number, source in enumerate(self.sources, 1):
            for index, unit in enumerate(source.units):
                if not quotable(unit.text):
                    continue
                relevance = self.relevance(question_terms, number, index)
                if number not in best or relevance > best[number][0]:
                    best[number] = (relevance, index)
        if not best:
            return Composition()
        # Sections are chosen by the retriever's semantic similarity (a retrieved Source's
        # dense_score), which finds the answer better than word overlap, plus the overlap.
        def section_score(number: int) -> float:
            passage = self.passages[number - 1]
            return float(getattr(passage, "dense_score", 0.0)) + overlap_weight * best[number][0] - 0.01 * number

        ranked = sorted(best, key=section_score, reverse=True)
        number = ranked[0]
        relevance, index = best[number]
        if relevance == 0:
            index = 0
        quotes = self._passage_around(number, index, max_units, max_chars)
        used = sum(len(q.text) for q in quotes)
        anchor = self.passages[number - 1]
        # A second section adds what the first lacks: another part of the same article, or
        # another article that answers as well (both quoted, each with its own citation).
        for other in ranked[1:]:
            if used >= max_chars or len(quotes) >= max_units:
                break
            other_relevance, other_index = best[other]
            same_article = self.passages[other - 1].title == anchor.title
            if same_article:
                wanted = other_relevance >= second_section_min
            else:
                # Another article must answer at least as well (as two that disagree would).
                wanted = other_relevance >= relevance and section_score(other) >= section_score(number) - 0.05
            if other_relevance == 0 or not wanted:
                continue
            extra = [q for q in self._passage_around(other, other_index, max_units - len(quotes), max_chars - used)
                     if not self._covered_by(q.text, quotes)]
            if extra:
                quotes.extend(extra)
                used += sum(len(q.text) for q in extra)
                break
        return Composition(quotes, relevance)

    def _covered_by(self, text: str, quotes: list[Quote]) -> bool:
        """Says nothing the quotes do not: its words mostly there, and every figure."""
        quoted = " ".join(q.text for q in quotes)
        mine, theirs = set(terms(text)), set(terms(quoted))
        return bool(mine) and len(mine & theirs) / len(mine) >= 0.7 and numbers(text) <= numbers(quoted)

    def _passage_around(self, number: int, index: int, max_units: int, max_chars: int) -> list[Quote]:
        """From the start of the anchor's paragraph or list (in a short section, from the top)
        onwards, whole units up to the budget; a list is never cut."""
        units = self.sources[number - 1].units
        anchor = units[index]
        first = next(i for i, u in enumerate(units) if u.block == anchor.block)
        # A section that fits is quoted from its top: help-center sections are short answers.
        if sum(len(u.text) for u in units[: index + 1]) <= max_chars * 0.6:
            first = 0
        quotes: list[Quote] = []
        used = 0
        for position in range(first, len(units)):
            unit = units[position]
            in_list = unit.is_list_item and quotes and (quotes[-1].is_list_item or units[position - 1].introduces_list)
            over = len(quotes) >= max_units or used + len(unit.text) > max_chars
            if quotes and over and not (in_list and used + len(unit.text) <= 2 * max_chars):
                if position <= index:
                    quotes, used = [], 0  # the budget went before the anchor: start at it
                else:
                    break
            quotes.append(Quote(unit.text, number, unit.is_list_item))
            used += len(unit.text)
        # A sentence that announces a list whose items did not fit is no answer on its own.
        while len(quotes) > 1 and quotes[-1].text.rstrip().endswith(":"):
            quotes.pop()
        return quotes
