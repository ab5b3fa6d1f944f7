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

from supportbot.answers.cohesion import leans_on_previous
from supportbot.answers.text import STEP, Unit, numbers, split_units, terms
from supportbot.core.language import is_how_to


class PassageLike(Protocol):
    """Anything with a title, heading path and text: a retrieved `Source` message, a Passage, a
    frozen dataclass (read-only members: grounding only reads them)."""

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def heading_path(self) -> Sequence[str]: ...


@dataclass
class Passage:
    title: str
    text: str
    heading_path: Sequence[str] = ()
    dense_score: float = 0.0
    document_id: str = ""
    chunk_id: str = ""
    highlights: Sequence[Highlight] = ()


@dataclass(frozen=True)
class Highlight:
    """A sentence of a passage scored against the question (Source.highlights' shape)."""

    text: str
    score: float
    start: int
    end: int


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
    # Each unit's similarity to the question from the retriever's highlights (None without).
    semantic: list[float | None] = field(default_factory=list)
    # The article it belongs to, its section heading and its place among the article's chunks.
    article: str = ""
    section: str = ""
    ordinal: int = 0


@dataclass
class Quote:
    """A unit of a source, quoted as it is, and the source's 1-based number. A section heading
    quoted as the lead-in of its list, or as what the first sentence refers to, is `context`."""

    text: str
    source: int
    is_list_item: bool = False
    context: bool = False
    position: int = -1


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
            headings = [h for h in passage.heading_path if h and h != passage.title]
            self.sources.append(
                _SourceUnits(units, unit_terms, [numbers(u.text) for u in units],
                             set(terms(" ".join([passage.title, *passage.heading_path]))),
                             _unit_similarity(passage, units),
                             str(getattr(passage, "document_id", "") or passage.title),
                             headings[-1] if headings else "", _ordinal(getattr(passage, "chunk_id", "")))
            )
            for unit_term_set in unit_terms:
                document_frequency.update(unit_term_set)
                count += 1
        self._count = max(count, 1)
        self._frequency = document_frequency

    def article(self, number: int) -> str:
        """What identifies the article a source (1-based) is a section of."""
        return self.sources[number - 1].article

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

    def unit_score(self, question_terms: dict[str, float], source: int, index: int) -> float:
        """How well a unit answers the question: its similarity in meaning (the retriever's
        highlight for it) plus its word overlap; word overlap alone without highlights."""
        lexical = self.relevance(question_terms, source, index)
        semantic = self.sources[source - 1].semantic[index]
        return lexical if semantic is None else semantic + SEMANTIC_LEXICAL_WEIGHT * lexical

    def question_terms(self, question: str, context: str = "") -> dict[str, float]:
        weighted = {t: 1.0 for t in terms(question)}
        for term in terms(context):
            weighted.setdefault(term, 0.3)
        return weighted

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
        (plus word overlap), quoted around its most relevant units with what they lean on (a
        list's lead-in, a sentence's antecedent) and lists whole; then a second section of the
        same article, or of another article when it adds a fact the first lacks (two sources
        that disagree are both quoted, each with its citation, never merged). Quotes come
        article by article, the most relevant first, each article's sections in its order."""
        question_terms = self.question_terms(question, context)
        best: dict[int, tuple[float, int]] = {}  # source -> (score, unit) of its best unit
        lexical: dict[int, float] = {}
        for number, source in enumerate(self.sources, 1):
            for index, unit in enumerate(source.units):
                if not quotable(unit.text):
                    continue
                score = self.unit_score(question_terms, number, index)
                if number not in best or score > best[number][0]:
                    best[number] = (score, index)
                # A section is chosen by its best word overlap, whichever unit the highlights
                # favour within it: with highlights, the overlap of the semantically best unit
                # let a neighbouring article's passing mention ("...or reset your password")
                # outrank the article that answers "How do I reset my password?".
                lexical[number] = max(lexical.get(number, 0.0), self.relevance(question_terms, number, index))
        if not best:
            return Composition()

        # Sections are chosen by the retriever's semantic similarity (a retrieved Source's
        # dense_score), which finds the answer better than word overlap, plus the overlap.
        def section_score(number: int) -> float:
            passage = self.passages[number - 1]
            return float(getattr(passage, "dense_score", 0.0)) + overlap_weight * lexical[number] - 0.01 * number

        how_to = is_how_to(question)

        def rank_score(number: int) -> float:
            return section_score(number) + (PROCEDURE_PREFERENCE if how_to and self._has_steps(number) else 0.0)

        ranked = sorted(best, key=rank_score, reverse=True)
        number = ranked[0]
        relevance = lexical[number]
        if (how_to and self._has_steps(number)) or self._in_procedure(number, best[number][1]):
            # The customer asked how, or what answers is a step or what leads into the steps: the
            # procedure whole, not the step that shares most words.
            max_units, max_chars = max(max_units, PROCEDURE_MAX_UNITS), max(max_chars, PROCEDURE_MAX_CHARS)
        scores = [self.unit_score(question_terms, number, i) for i in range(len(self.sources[number - 1].units))]
        quotes = self._select(number, scores, best[number][1] if best[number][0] > 0 else 0, max_units, max_chars)
        used = sum(len(q.text) for q in quotes)
        anchor_article = self.article(number)
        # A second section adds what the first lacks: another part of the same article, or
        # another article that answers as well (both quoted, each with its own citation).
        for other in ranked[1:]:
            if used >= max_chars or len(quotes) >= max_units:
                break
            other_relevance = lexical[other]
            same_article = self.article(other) == anchor_article
            if same_article:
                wanted = other_relevance >= second_section_min
            else:
                # Another article must answer at least as well (as two that disagree would).
                wanted = other_relevance >= relevance and section_score(other) >= section_score(number) - 0.05
            if other_relevance == 0 or not wanted:
                continue
            other_scores = [self.unit_score(question_terms, other, i) for i in range(len(self.sources[other - 1].units))]
            extra = self._select(other, other_scores, best[other][1], max_units - len(quotes), max_chars - used)
            # A step of a procedure stays unless it is quoted already: "1. Choose Format - Page
            # Style." shares its words with the steps of another procedure, yet without it the
            # steps after it do not work (libreoffice dev set, lo11).
            said = {tuple(terms(q.text)) for q in quotes}
            extra = [q for q in extra if q.context or not (
                tuple(terms(q.text)) in said if q.is_list_item else self._covered_by(q.text, quotes))]
            if not any(not q.context for q in extra):
                continue
            if not same_article and not self._adds_fact(extra, quotes, question_terms):
                continue
            quotes.extend(extra)
            used += sum(len(q.text) for q in extra)
            break
        return Composition(self._reading_order(quotes), relevance)

    def _steps(self, number: int) -> list[tuple[int, int]]:
        """A source's lists of numbered steps ("1. Choose Format - Cells."), each as the first
        and last unit of the list, its lead-in included (see _list_spans)."""
        units = self.sources[number - 1].units
        return [
            (first, last) for first, last in sorted(set(_list_spans(units).values()))
            if any(units[i].is_list_item and STEP.match(units[i].text) for i in range(first, last + 1))
        ]

    def _has_steps(self, number: int) -> bool:
        return bool(self._steps(number))

    def _in_procedure(self, number: int, index: int) -> bool:
        """Whether a unit belongs to numbered steps: a step, or the paragraph leading into them
        ("If you want the slide to follow the file, link it instead: ..." before "1. Choose ...")."""
        units = self.sources[number - 1].units
        for first, last in self._steps(number):
            lead_in = units[first]
            if first <= index <= last or (not lead_in.is_list_item and units[index].block == lead_in.block):
                return True
        return False

    def _reading_order(self, quotes: list[Quote]) -> list[Quote]:
        """Article by article in the order they were chosen (the most relevant first); within
        an article, its sections in the article's own order."""
        articles = list(dict.fromkeys(self.article(q.source) for q in quotes))
        ordered: list[Quote] = []
        for article in articles:
            sections = list(dict.fromkeys(q.source for q in quotes if self.article(q.source) == article))
            sections.sort(key=lambda n: self.sources[n - 1].ordinal)
            for section in sections:
                ordered.extend(q for q in quotes if q.source == section)
        return ordered

    def _adds_fact(self, extra: list[Quote], quotes: list[Quote], question_terms: dict[str, float]) -> bool:
        """Another article is quoted only for a fact the first lacks: a word of the question
        the quotes so far do not have, or a figure they do not state (a disagreement)."""
        quoted = " ".join(q.text for q in quotes)
        added = " ".join(q.text for q in extra if not q.context)
        new_question_terms = (set(terms(added)) - set(terms(quoted))) & set(question_terms)
        return bool(new_question_terms) or bool(numbers(added) - numbers(quoted))

    def _covered_by(self, text: str, quotes: list[Quote]) -> bool:
        """Says nothing the quotes do not: its words mostly there, and every figure."""
        quoted = " ".join(q.text for q in quotes)
        mine, theirs = set(terms(text)), set(terms(quoted))
        return bool(mine) and len(mine & theirs) / len(mine) >= 0.7 and numbers(text) <= numbers(quoted)

    def _select(self, number: int, scores: list[float], anchor: int, max_units: int, max_chars: int) -> list[Quote]:
        """The most relevant stretch of a section that fits the budget, in the section's order
        (see _Section.best_window), as quotes; what its first unit needs and no sentence of the
        source gives (a list's heading) comes first, as context."""
        units = self.sources[number - 1].units
        if not units:
            return []
        section = _Section(units)
        first, last = section.best_window(scores, anchor, max_units, max_chars)
        chosen = list(range(first, last + 1))
        if section.size(first, last) > 2 * max_chars:
            # A list too long to quote whole: its lead-in and the item that answers.
            lead = section.list_span.get(anchor, (anchor, anchor))[0]
            chosen = sorted({lead, anchor} if lead != anchor and not units[lead].is_list_item else {anchor})
        # A sentence that announces what follows, cut off from it, is no answer on its own: one
        # that names it ("In the following example, b and c are shown in red.") brings the
        # example after it, past the budget if need be; a bare lead-in ("Do this:") goes.
        last = chosen[-1]
        following = units[last + 1] if last + 1 < len(units) else None
        if (following is not None and following.heading == units[last].heading and announces(units[last].text)
                and len(following.text) <= ANNOUNCED_MAX_CHARS):
            chosen.append(last + 1)
        while len(chosen) > 1 and units[chosen[-1]].introduces_list:
            chosen.pop()
        quotes = []
        for i in chosen:
            lead_in = self._context_for(number, i)
            if lead_in and (i == chosen[0] or units[i].heading != units[i - 1].heading):
                quotes.append(Quote(lead_in, number, context=True))
            quotes.append(Quote(units[i].text, number, units[i].is_list_item, position=i))
        return quotes

    def _context_for(self, number: int, first: int) -> str:
        """The section heading, where the first quoted unit needs it and no sentence of the
        source gives it: a list with no sentence to introduce it ("Check these first"), or a
        sentence that refers back at the top of its section ("이런 계정에는 ...")."""
        source = self.sources[number - 1]
        unit = source.units[first]
        before = source.units[first - 1] if first > 0 else None
        same_section_before = before is not None and before.heading == unit.heading
        needs = (unit.is_list_item and not (before is not None and same_section_before and not before.is_list_item)) or (
            leans_on_previous(unit.text) and not same_section_before
        )
        # The heading it sits under; at the top of an article, the article's title.
        heading = unit.heading or source.section or (self.passages[number - 1].title if before is None else "")
        if not needs or not heading:
            return ""
        return heading if heading.rstrip().endswith((":", "?", "：", "？")) else f"{heading}:"


# A how-to question whose best section holds numbered steps is answered with the procedure whole,
# within this budget instead of compose's usual one (500 characters, 6 units), which cut a
# procedure to the step sharing most words with the question ("7. Check Copy results ..." for
# "how do I get rid of duplicate entries?"). Chosen on bench/answer_quality.py --in-process
# --sets libreoffice (a dev set): LibreOffice's longest guide procedures run 8-12 steps.
PROCEDURE_MAX_CHARS = 1200
PROCEDURE_MAX_UNITS = 14

# A how-to question takes a section with numbered steps before one less than this much closer in
# meaning (dense score): a description of layers went before the page with the steps for "how do
# I add another layer to my drawing?" (libreoffice-id id20). Key facts by preference, dev sets
# (bench/answer_quality.py --in-process --modes extractive): libreoffice 0.750 at 0 and 0.02,
# 0.800 at 0.03 and 0.05; libreoffice-wc-ko 0.167 up to 0.03, 0.125 at 0.05 (a neighbouring
# procedure put first); libreoffice-id the same at all four.
PROCEDURE_PREFERENCE = 0.03

# A sentence that says an example or a form follows ("In the following example, ...", "다음과 같이
# 입력하세요.") without ending in a colon: quoted with the unit after it when that unit is at most
# this long (an example line, a formula), even past the budget. An answer ended on "In the
# following example, b and c are shown in red." without the example the customer asked for
# (libreoffice-dm-ko dm16, bench/answer_quality.py --in-process: the formula line is 70 characters).
ANNOUNCED_MAX_CHARS = 160
_ANNOUNCES = re.compile(
    r"\b(?:the following|as follows|(?:example|examples|command|formula|line)s? below)\b|다음과 같이|아래와 같이|다음 예|아래 예",
    re.IGNORECASE,
)


def announces(text: str) -> bool:
    """Whether a sentence says that what it is about comes next ("In the following example,
    ...", "Type the formula below.", "다음과 같이 입력하세요."), without a colon to say so."""
    return not text.rstrip().endswith(":") and bool(_ANNOUNCES.search(text))


# Weight of word overlap next to the similarity in meaning when a unit's highlight is known
# (bench/answer_quality.py --in-process, sample and python-faq sets).
SEMANTIC_LEXICAL_WEIGHT = 0.5


class _Section:
    """The units of one source, with the lists they form and what each unit leans on."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = units
        self.list_span = _list_spans(units)

    def size(self, first: int, last: int) -> int:
        return sum(len(u.text) for u in self.units[first : last + 1])

    def leans_back(self, index: int) -> bool:
        """Whether the unit needs the one before it (a list item its lead-in, a sentence its
        antecedent), and that one is there, under the same heading, to quote."""
        units = self.units
        if index == 0 or units[index - 1].heading != units[index].heading:
            return False
        span = self.list_span.get(index)
        return (span is not None and span[0] < index) or leans_on_previous(units[index].text)

    def extend(self, first: int, last: int) -> tuple[int, int]:
        """Widened to hold any list it touches whole, and what its first unit leans on."""
        while True:
            low, high = first, last
            for i in range(first, last + 1):
                if i in self.list_span:
                    low, high = min(low, self.list_span[i][0]), max(high, self.list_span[i][1])
            if self.leans_back(low):
                low -= 1
            if (low, high) == (first, last):
                return first, last
            first, last = low, high

    def best_window(self, scores: list[float], anchor: int, max_units: int, max_chars: int) -> tuple[int, int]:
        """Of the windows of whole units that hold the anchor and fit the budget, the one whose
        units are the most relevant together (the earliest of equals, so a short section is
        quoted from its top); a list is never cut, and a window brings what its first unit
        leans on."""

        def fits(window: tuple[int, int]) -> bool:
            return self.size(*window) <= max_chars and window[1] - window[0] < max_units

        best, best_value = self.extend(anchor, anchor), -1.0
        for first in range(anchor + 1):
            window = self.extend(first, anchor)
            if first != anchor and not fits(window):
                continue
            while window[1] + 1 < len(self.units) and fits(wider := self.extend(window[0], window[1] + 1)):
                window = wider
            value = sum(max(scores[i], 0.0) for i in range(window[0], window[1] + 1) if quotable(self.units[i].text))
            if value > best_value + 1e-9:
                best, best_value = window, value
        return best


def _list_spans(units: list[Unit]) -> dict[int, tuple[int, int]]:
    """For each list item, the first and last unit of its list (its lead-in included)."""
    spans: dict[int, tuple[int, int]] = {}
    index = 0
    while index < len(units):
        if not units[index].is_list_item:
            index += 1
            continue
        end = index
        while end + 1 < len(units) and units[end + 1].is_list_item and units[end + 1].block == units[index].block:
            end += 1
        # Its lead-in: the sentence just before it under the same heading ("Check these first:",
        # or one without a colon that the list goes on from).
        previous = units[index - 1] if index > 0 else None
        start = index - 1 if previous is not None and not previous.is_list_item and previous.heading == units[index].heading else index
        for i in range(index, end + 1):
            spans[i] = (start, end)
        index = end + 1
    return spans


def _ordinal(chunk_id: str) -> int:
    """A chunk's place in its document ("helpcenter/refund-timing#2" is 2)."""
    tail = chunk_id.rpartition("#")[2]
    return int(tail) if tail.isdigit() else 0


def _unit_similarity(passage: PassageLike, units: list[Unit]) -> list[float | None]:
    """Each unit's similarity to the question: the best highlight that overlaps it (highlights
    carry offsets into the passage's text; units are found there in order)."""
    highlights = list(getattr(passage, "highlights", ()) or ())
    if not highlights:
        return [None] * len(units)
    text = passage.text
    floor = min(h.score for h in highlights)  # a unit no highlight covers: the least similar
    similarity: list[float | None] = []
    cursor = 0
    for unit in units:
        probe = unit.text[: min(len(unit.text), 24)]
        start = text.find(probe, cursor)
        if start < 0:
            similarity.append(floor)
            continue
        end = start + len(unit.text)
        cursor = start + len(probe)
        overlapping = [h.score for h in highlights if h.start < end and h.end > start]
        similarity.append(max(overlapping) if overlapping else floor)
    return similarity
